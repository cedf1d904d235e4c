//! YARA rules through yara-x: compiled once per run, applied to whole files and to the
//! documents taken out of them.

use std::time::Duration;

use pacsguard_events::Severity;

/// Rule files read from a `--rules` directory.
pub const MAX_RULE_FILES: usize = 10_000;
/// Total rule source accepted from the user (`--rules`), across files; the built-in rules
/// do not count. At the limit the rules compile; one byte more is refused (exit 2).
pub const MAX_RULE_SOURCE_BYTES: usize = 64 * 1024 * 1024;
/// One scan of one buffer may take this long; a rule that backtracks without end must
/// not stall a whole run. A timeout is reported on the file, never silent.
pub const SCAN_TIMEOUT: Duration = Duration::from_secs(30);
/// The step of yara-x's clock: a heartbeat thread counts whole seconds, and a scan given
/// `n` seconds stops at the `n`th beat after it began, anywhere from `n - 1` to `n`
/// seconds later. A caller's deadline is rounded down to it ([`yara_timeout`]).
pub const YARA_CLOCK_STEP: Duration = Duration::from_secs(1);

/// The timeout to give yara-x so that a scan stops by `left` from now: `left` (at most
/// [`SCAN_TIMEOUT`]) rounded down to whole [`YARA_CLOCK_STEP`]s; `None` when less than
/// one is left (yara-x could then stop a scan only a second late). Rounded up, as yara-x
/// itself does, a scan overran a deadline by up to a second (issue 16, session 24).
pub fn yara_timeout(left: Duration) -> Option<Duration> {
    let steps = left.min(SCAN_TIMEOUT).as_secs() / YARA_CLOCK_STEP.as_secs();
    (steps > 0).then(|| YARA_CLOCK_STEP * u32::try_from(steps).unwrap_or(u32::MAX))
}

/// Matches recorded per pattern: the rule is decided long before, and a file full of one
/// short pattern must not cost memory per match.
pub const MAX_MATCHES_PER_PATTERN: usize = 1_000;

/// PacsGuard's own rule set, shipped in `rules/pacsguard.yar` and loaded by default.
pub const BUILTIN_RULES: &str = include_str!("../rules/pacsguard.yar");
pub const BUILTIN_ORIGIN: &str = "pacsguard.yar (built in)";

/// One rule file's text and where it came from.
#[derive(Clone, Debug)]
pub struct RuleSource {
    pub origin: String,
    pub text: String,
}

impl RuleSource {
    pub fn builtin() -> RuleSource {
        RuleSource {
            origin: BUILTIN_ORIGIN.to_owned(),
            text: BUILTIN_RULES.to_owned(),
        }
    }

    /// Whether this is PacsGuard's own rule set (not counted in
    /// [`MAX_RULE_SOURCE_BYTES`]).
    pub fn is_builtin(&self) -> bool {
        self.origin == BUILTIN_ORIGIN && self.text == BUILTIN_RULES
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{origin}: {message}")]
    Compile { origin: String, message: String },
    #[error("more than {MAX_RULE_FILES} rule files")]
    TooManyFiles,
    #[error("more than {MAX_RULE_SOURCE_BYTES} bytes of rule source")]
    TooLarge,
    #[error("this build of pacsguard has no YARA support (built without the `yara` feature)")]
    NotBuilt,
}

/// What a matching rule said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    /// `namespace:identifier` (namespace `default` unless the rules set one).
    pub rule: String,
    pub severity: Severity,
    pub format: Option<String>,
    pub description: Option<String>,
}

/// The outcome of applying the rules to one buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleScan {
    /// The rules that matched, and the rules that did not whose patterns reached
    /// [`MAX_MATCHES_PER_PATTERN`] (`namespace:identifier $pattern`): a condition on
    /// further matches (`#a > 1000`, `@a[1001]`) was not evaluated on them.
    Matches {
        matches: Vec<RuleMatch>,
        capped: Vec<String>,
    },
    TimedOut,
    Failed(String),
}

#[cfg(feature = "yara")]
pub use compiled::{RuleScanner, Rules};

#[cfg(feature = "yara")]
mod compiled {
    use super::*;

    /// Compiled rules, shared by every worker.
    pub struct Rules {
        compiled: yara_x::Rules,
        sources: usize,
    }

    impl std::fmt::Debug for Rules {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Rules")
                .field("rules", &self.compiled.iter().len())
                .finish()
        }
    }

    impl Rules {
        /// Compiles every source; the first error names its file and line.
        pub fn compile(sources: &[RuleSource]) -> Result<Rules, RulesError> {
            if sources.len() > MAX_RULE_FILES {
                return Err(RulesError::TooManyFiles);
            }
            let given: usize = sources
                .iter()
                .filter(|s| !s.is_builtin())
                .map(|s| s.text.len())
                .sum();
            if given > MAX_RULE_SOURCE_BYTES {
                return Err(RulesError::TooLarge);
            }
            let mut compiler = yara_x::Compiler::new();
            for source in sources {
                let code = yara_x::SourceCode::from(source.text.as_str())
                    .with_origin(source.origin.clone());
                compiler.add_source(code).map_err(|e| RulesError::Compile {
                    origin: source.origin.clone(),
                    message: e.to_string(),
                })?;
            }
            Ok(Rules {
                compiled: compiler.build(),
                sources: sources.len(),
            })
        }

        /// How many rules were compiled.
        pub fn len(&self) -> usize {
            self.compiled.iter().len()
        }

        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// How many rule files went in.
        pub fn sources(&self) -> usize {
            self.sources
        }

        /// A scanner for one worker thread (a scanner scans one buffer at a time).
        pub fn scanner(&self) -> RuleScanner<'_> {
            let mut scanner = yara_x::Scanner::new(&self.compiled);
            scanner
                .set_timeout(SCAN_TIMEOUT)
                .max_matches_per_pattern(MAX_MATCHES_PER_PATTERN);
            RuleScanner { scanner }
        }
    }

    pub struct RuleScanner<'r> {
        scanner: yara_x::Scanner<'r>,
    }

    impl std::fmt::Debug for RuleScanner<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("RuleScanner")
        }
    }

    impl RuleScanner<'_> {
        pub fn scan(&mut self, data: &[u8]) -> RuleScan {
            self.scan_within(data, SCAN_TIMEOUT)
        }

        /// [`RuleScanner::scan`] within `timeout` (a caller's deadline sooner than
        /// [`SCAN_TIMEOUT`]): rounded down to yara-x's whole seconds
        /// ([`yara_timeout`]), so the scan stops by `timeout`; `TimedOut` at once when
        /// less than a second is left.
        pub fn scan_within(&mut self, data: &[u8], timeout: Duration) -> RuleScan {
            let Some(timeout) = yara_timeout(timeout) else {
                return RuleScan::TimedOut;
            };
            self.scanner.set_timeout(timeout);
            match self.scanner.scan(data) {
                Ok(results) => RuleScan::Matches {
                    matches: results.matching_rules().map(describe).collect(),
                    capped: results
                        .non_matching_rules()
                        .flat_map(|rule| {
                            let name = format!("{}:{}", rule.namespace(), rule.identifier());
                            rule.patterns()
                                .filter(|p| p.matches().len() >= MAX_MATCHES_PER_PATTERN)
                                .map(move |p| format!("{name} {}", p.identifier()))
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                },
                Err(yara_x::errors::ScanError::Timeout) => RuleScan::TimedOut,
                Err(e) => RuleScan::Failed(e.to_string()),
            }
        }
    }

    fn describe(rule: yara_x::Rule<'_, '_>) -> RuleMatch {
        let mut found = RuleMatch {
            rule: format!("{}:{}", rule.namespace(), rule.identifier()),
            severity: Severity::Alert,
            format: None,
            description: None,
        };
        for (key, value) in rule.metadata() {
            let yara_x::MetaValue::String(text) = value else {
                continue;
            };
            match key {
                "severity" => {
                    found.severity = match text {
                        "info" => Severity::Info,
                        "warning" => Severity::Warning,
                        _ => Severity::Alert,
                    }
                }
                "format" => found.format = Some(text.to_owned()),
                "description" => found.description = Some(text.to_owned()),
                _ => {}
            }
        }
        found
    }
}

/// Without the `yara` feature: rules cannot be compiled, and `--rules` says so.
#[cfg(not(feature = "yara"))]
pub use absent::{RuleScanner, Rules};

#[cfg(not(feature = "yara"))]
mod absent {
    use super::*;

    #[derive(Debug)]
    pub struct Rules;

    impl Rules {
        pub fn compile(_sources: &[RuleSource]) -> Result<Rules, RulesError> {
            Err(RulesError::NotBuilt)
        }
        pub fn len(&self) -> usize {
            0
        }
        pub fn is_empty(&self) -> bool {
            true
        }
        pub fn sources(&self) -> usize {
            0
        }
        pub fn scanner(&self) -> RuleScanner<'_> {
            RuleScanner(std::marker::PhantomData)
        }
    }

    #[derive(Debug)]
    pub struct RuleScanner<'r>(std::marker::PhantomData<&'r ()>);

    impl RuleScanner<'_> {
        pub fn scan(&mut self, data: &[u8]) -> RuleScan {
            self.scan_within(data, SCAN_TIMEOUT)
        }
        pub fn scan_within(&mut self, _data: &[u8], _timeout: Duration) -> RuleScan {
            RuleScan::Matches {
                matches: Vec::new(),
                capped: Vec::new(),
            }
        }
    }
}

#[cfg(all(test, feature = "yara"))]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_rules_compile_and_find_the_eicar_string() {
        let rules = Rules::compile(&[RuleSource::builtin()]).expect("compiles");
        assert!(rules.len() >= 4);
        let mut scanner = rules.scanner();
        let eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
        let RuleScan::Matches { matches, .. } = scanner.scan(eicar) else {
            panic!("scan failed");
        };
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].rule, "default:pacsguard_eicar_test_file");
        assert_eq!(matches[0].severity, Severity::Alert);
        assert_eq!(matches[0].format.as_deref(), Some("eicar"));
    }

    /// MAX_RULE_SOURCE_BYTES at its edge, across two files: rule source adding up to the
    /// limit compiles (the built-in rules beside it do not count), one byte more is
    /// refused.
    #[test]
    fn rule_source_at_the_limit_compiles_and_one_byte_more_is_refused() {
        let source = |name: &str, len: usize| {
            let mut text = format!("rule {name} {{ condition: true }}\n//");
            text.push_str(&"x".repeat(len - text.len() - 1));
            text.push('\n');
            assert_eq!(text.len(), len);
            RuleSource {
                origin: format!("site/{name}.yar"),
                text,
            }
        };
        let half = MAX_RULE_SOURCE_BYTES / 2;
        let at = [
            RuleSource::builtin(),
            source("first", half),
            source("second", MAX_RULE_SOURCE_BYTES - half),
        ];
        let rules = Rules::compile(&at).expect("at the limit");
        assert_eq!(rules.sources(), 3);
        let over = [
            RuleSource::builtin(),
            source("first", half),
            source("second", MAX_RULE_SOURCE_BYTES - half + 1),
        ];
        let err = Rules::compile(&over).expect_err("one byte over");
        assert!(matches!(err, RulesError::TooLarge), "{err}");
    }

    /// Issue 16, session 24: yara-x counts whole seconds and rounds a timeout up, so a
    /// scan given 1.5 s ran for 2 and overran the gateway's screening deadline. A rule
    /// whose condition loops for minutes, scanned right after a beat of yara-x's clock
    /// (the first scan, given a whole second, ends on one), stops by its timeout now,
    /// and one given less than a second is not begun.
    #[test]
    fn a_scan_stops_by_its_timeout_not_on_the_next_whole_second() {
        let endless = RuleSource {
            origin: "site/endless.yar".to_owned(),
            text: "rule endless { condition: for any i in (0..filesize) : ( for any j in (0..filesize) : ( i + j == filesize * 3 ) ) }"
                .to_owned(),
        };
        let rules = Rules::compile(&[endless]).expect("compiles");
        let mut scanner = rules.scanner();
        let data = vec![0u8; 1 << 20];
        // Ends on a beat of the clock: the next scan begins just after one.
        assert_eq!(
            scanner.scan_within(&data, YARA_CLOCK_STEP),
            RuleScan::TimedOut
        );
        for timeout in [Duration::from_millis(1500), Duration::from_millis(900)] {
            let began = std::time::Instant::now();
            assert_eq!(scanner.scan_within(&data, timeout), RuleScan::TimedOut);
            let took = began.elapsed();
            assert!(took <= timeout, "given {timeout:?}, the scan took {took:?}");
        }
        assert_eq!(yara_timeout(Duration::from_millis(999)), None);
        assert_eq!(
            yara_timeout(Duration::from_millis(2999)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(yara_timeout(Duration::from_secs(3600)), Some(SCAN_TIMEOUT));
    }

    #[test]
    fn a_compile_error_names_the_file() {
        let broken = RuleSource {
            origin: "site/broken.yar".to_owned(),
            text: "rule x { condition: $missing }".to_owned(),
        };
        let err = Rules::compile(&[broken]).expect_err("does not compile");
        assert!(err.to_string().starts_with("site/broken.yar: "), "{err}");
    }
}
