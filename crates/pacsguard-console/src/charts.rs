//! Charts where a person would rather look than read, drawn on the server as inline SVG
//! (no script: the CSP allows none): findings per hour by severity, and arrivals (new
//! files) per hour, over the last [`CHART_HOURS`] hours since the guard started.
//!
//! The counts are kept per hour in memory by [`crate::guard::GuardState`] as findings
//! arrive ([`Hourly::record`]); at most [`CHART_HOURS`] buckets, the oldest dropped.

use std::collections::VecDeque;
use std::fmt::Write as _;

use pacsguard_events::{Finding, FindingKind, Severity};

/// Hours a chart shows (and buckets kept).
pub const CHART_HOURS: usize = 48;

/// The counts of one hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Hours since the epoch.
    pub hour: i64,
    pub alerts: u64,
    pub warnings: u64,
    pub info: u64,
    /// Files that appeared (`added` findings).
    pub arrivals: u64,
}

/// Per-hour counts, the newest last.
#[derive(Clone, Debug, Default)]
pub struct Hourly {
    buckets: VecDeque<Bucket>,
}

impl Hourly {
    /// Counts `finding` in the hour of `now` (seconds since the epoch).
    pub fn record(&mut self, now: i64, finding: &Finding) {
        let hour = now.div_euclid(3600);
        if self.buckets.back().is_none_or(|b| b.hour < hour) {
            self.buckets.push_back(Bucket {
                hour,
                ..Bucket::default()
            });
            while self.buckets.len() > CHART_HOURS {
                self.buckets.pop_front();
            }
        }
        // A clock stepped back counts in the newest hour.
        let Some(bucket) = self.buckets.back_mut() else {
            return;
        };
        match finding.severity {
            Severity::Alert => bucket.alerts += 1,
            Severity::Warning => bucket.warnings += 1,
            Severity::Info => bucket.info += 1,
        }
        if finding.kind == FindingKind::Added {
            bucket.arrivals += 1;
        }
    }

    /// The last [`CHART_HOURS`] hours up to the hour of `now`, empty hours included.
    pub fn series(&self, now: i64) -> Vec<Bucket> {
        let last = now.div_euclid(3600);
        let span = i64::try_from(CHART_HOURS).unwrap_or(48);
        (last - span + 1..=last)
            .map(|hour| {
                self.buckets
                    .iter()
                    .find(|b| b.hour == hour)
                    .copied()
                    .unwrap_or(Bucket {
                        hour,
                        ..Bucket::default()
                    })
            })
            .collect()
    }
}

/// One stacked series of a chart: its name, colour and value per hour.
type Series = (&'static str, &'static str, fn(&Bucket) -> u64);

const WIDTH: u64 = 720;
const HEIGHT: u64 = 160;
const BAR: u64 = WIDTH / CHART_HOURS as u64;

/// A bar chart of stacked series (each `(name, colour, values)`), one bar per hour, with
/// its numbers in a `<title>` per bar for people and tests.
fn bars(id: &str, title: &str, hours: &[Bucket], series: &[Series]) -> String {
    let top = hours
        .iter()
        .map(|b| series.iter().map(|(_, _, v)| v(b)).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = format!(
        "<figure id=\"{id}\"><figcaption>{title} (per hour, last {CHART_HOURS} hours; highest: {top})</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {WIDTH} {}\" width=\"{WIDTH}\" height=\"{}\">\
         <line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"#888\"/>",
        HEIGHT + 16,
        HEIGHT + 16
    );
    for (i, bucket) in hours.iter().enumerate() {
        let x = i as u64 * BAR;
        let mut y = HEIGHT;
        let mut label = format!("hour {}:", hour_label(bucket.hour));
        for (name, colour, value) in series {
            let v = value(bucket);
            let _ = write!(label, " {v} {name}");
            if v == 0 {
                continue;
            }
            let h = (v * HEIGHT).div_ceil(top).min(y);
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{h}\" fill=\"{colour}\"/>",
                BAR - 2
            );
        }
        let _ = write!(
            svg,
            "<rect class=\"hit\" x=\"{x}\" y=\"0\" width=\"{BAR}\" height=\"{HEIGHT}\" fill=\"transparent\"><title>{label}</title></rect>"
        );
        if i % 6 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x}\" y=\"{}\" font-size=\"10\" fill=\"#444\">{}</text>",
                HEIGHT + 13,
                hour_label(bucket.hour)
            );
        }
    }
    svg.push_str("</svg>");
    let legend: Vec<String> = series
        .iter()
        .map(|(name, colour, _)| {
            format!("<span><svg width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\" fill=\"{colour}\"/></svg> {name}</span>")
        })
        .collect();
    let _ = write!(svg, "<p class=\"legend\">{}</p></figure>", legend.join(" "));
    svg
}

/// `HH:00` (UTC) of an hour since the epoch.
fn hour_label(hour: i64) -> String {
    format!("{:02}:00", hour.rem_euclid(24))
}

/// Findings per hour, stacked by severity.
pub fn findings_chart(hours: &[Bucket]) -> String {
    bars(
        "chart-findings",
        "Findings",
        hours,
        &[
            ("alert", "#b00020", |b| b.alerts),
            ("warning", "#c77700", |b| b.warnings),
            ("info", "#5b7fa6", |b| b.info),
        ],
    )
}

/// Arrivals (new files) per hour.
pub fn arrivals_chart(hours: &[Bucket]) -> String {
    bars(
        "chart-arrivals",
        "Arrivals (new files)",
        hours,
        &[("arrivals", "#2e7d32", |b| b.arrivals)],
    )
}

/// Width of the scrub's progress bar.
const SCRUB_WIDTH: u64 = 720;
const SCRUB_HEIGHT: u64 = 24;

/// The scrub's progress as a bar: the part of this cycle re-verified, with its numbers
/// in the caption and in a `<title>` (for people and tests), and the start and estimated
/// end of the cycle. `None`: the scrub has published nothing (off, or not started).
pub fn scrub_chart(position: Option<&crate::guard::ScrubPosition>) -> String {
    let esc = crate::pages::esc;
    let Some(p) = position else {
        return "<figure id=\"chart-scrub\" data-percent=\"none\"><figcaption>Scrub (background re-verification of every file): \
                no progress reported yet (off, or not started)</figcaption></figure>"
            .to_string();
    };
    let fraction = if p.fraction.is_finite() {
        p.fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // Whole tenths of a percent, so a test sees it move on a large tree.
    let permille = (fraction * 1000.0).round() as u64;
    let percent = format!("{}.{}", permille / 10, permille % 10);
    let done = (permille * SCRUB_WIDTH) / 1000;
    let state = if p.complete {
        "cycle complete; the next starts after the minimum cycle time".to_string()
    } else {
        match &p.estimated_end {
            Some(end) => format!("estimated end {}", esc(end)),
            None => "no estimate yet".to_string(),
        }
    };
    let numbers = format!(
        "{percent} %: {} of {} files, {} of {} bytes",
        p.files_done, p.files_total, p.bytes_done, p.bytes_total
    );
    format!(
        "<figure id=\"chart-scrub\" data-percent=\"{percent}\"><figcaption>Scrub (background re-verification of every file): \
         <span id=\"scrub-numbers\">{numbers}</span>; cycle started {}, {state} (reported {})</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {SCRUB_WIDTH} {SCRUB_HEIGHT}\" width=\"{SCRUB_WIDTH}\" height=\"{SCRUB_HEIGHT}\">\
         <title>scrub {numbers}</title>\
         <rect x=\"0\" y=\"0\" width=\"{SCRUB_WIDTH}\" height=\"{SCRUB_HEIGHT}\" fill=\"#e4e8ee\"/>\
         <rect id=\"scrub-done\" x=\"0\" y=\"0\" width=\"{done}\" height=\"{SCRUB_HEIGHT}\" fill=\"#5b7fa6\"/>\
         </svg></figure>",
        esc(&p.started),
        esc(&p.seen),
    )
}

/// The charts page.
pub(crate) async fn charts_page(
    axum::extract::State(state): axum::extract::State<crate::http::AppState>,
    axum::extract::Extension(auth): axum::extract::Extension<crate::auth::Authenticated>,
) -> axum::response::Response {
    // The guard counts findings on the wall clock as they arrive: the same clock here.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let hours = state.console.guard.hourly(now);
    crate::http::html(crate::pages::page(
        "Charts",
        Some(&auth),
        &format!(
            "<section><h2>Charts</h2><p class=\"hint\">Since the guard started; hours in UTC. Hover a bar for its numbers.</p>{}{}{}</section>",
            scrub_chart(state.console.guard.snapshot().scrub.as_ref()),
            findings_chart(&hours),
            arrivals_chart(&hours)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn finding(kind: FindingKind, severity: Severity) -> Finding {
        Finding::new(PathBuf::from("/srv/x"), kind, severity, "x")
    }

    #[test]
    fn the_scrub_bar_shows_the_part_done_and_survives_nonsense() {
        let position = crate::guard::ScrubPosition {
            files_done: 3,
            files_total: 12,
            bytes_done: 250,
            bytes_total: 1000,
            fraction: 0.25,
            started: "2026-01-01T00:00:00Z".into(),
            estimated_end: Some("2026-01-01T00:00:30Z".into()),
            complete: false,
            seen: "2026-01-01T00:00:10Z".into(),
        };
        let svg = scrub_chart(Some(&position));
        assert!(svg.contains("data-percent=\"25.0\""), "{svg}");
        assert!(svg.contains("width=\"180\""), "a quarter of the bar: {svg}");
        assert!(svg.contains("3 of 12 files, 250 of 1000 bytes"), "{svg}");
        assert!(svg.contains("estimated end 2026-01-01T00:00:30Z"), "{svg}");
        assert!(!svg.contains("<script") && !svg.contains("style="));
        for nonsense in [f64::NAN, -1.0, 7.0, f64::INFINITY] {
            let svg = scrub_chart(Some(&crate::guard::ScrubPosition {
                fraction: nonsense,
                ..position.clone()
            }));
            assert!(
                svg.contains("data-percent=\"0.0\"") || svg.contains("data-percent=\"100.0\""),
                "{nonsense}: {svg}"
            );
        }
        assert!(scrub_chart(None).contains("no progress reported yet"));
    }

    #[test]
    fn hours_are_counted_kept_up_to_their_limit_and_drawn_as_bars() {
        let mut hourly = Hourly::default();
        let start: i64 = 500_000 * 3600;
        hourly.record(start, &finding(FindingKind::Added, Severity::Info));
        hourly.record(
            start + 10,
            &finding(FindingKind::ContentChanged, Severity::Alert),
        );
        hourly.record(start + 3600, &finding(FindingKind::Added, Severity::Info));
        let series = hourly.series(start + 3600);
        assert_eq!(series.len(), CHART_HOURS);
        assert_eq!(series[CHART_HOURS - 2].alerts, 1);
        assert_eq!(series[CHART_HOURS - 2].arrivals, 1);
        assert_eq!(series[CHART_HOURS - 1].arrivals, 1);
        let svg = findings_chart(&series);
        assert!(svg.contains("1 alert 0 warning 1 info"), "{svg}");
        assert!(
            !svg.contains("<script") && !svg.contains("style="),
            "no script, no inline style"
        );
        // At the limit: the oldest hour goes.
        for h in 2..=CHART_HOURS as i64 {
            hourly.record(
                start + h * 3600,
                &finding(FindingKind::Added, Severity::Info),
            );
        }
        assert_eq!(hourly.buckets.len(), CHART_HOURS);
        assert_eq!(
            hourly.buckets.front().map(|b| b.hour),
            Some(start / 3600 + 1)
        );
    }
}
