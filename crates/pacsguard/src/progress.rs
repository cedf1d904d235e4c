//! A progress bar on stderr, only when stderr is a terminal (never in pipes, cron or CI).

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pacsguard_engine::{NoProgress, Progress};

pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar {
            bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            files_done: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
        })
    } else {
        Box::new(NoProgress)
    }
}

struct Bar {
    bar: ProgressBar,
    files_done: AtomicU64,
    files_total: AtomicU64,
}

/// The file count is redrawn every this many files: often enough to move, rarely enough
/// that 200,000 small files do not spend their time formatting it.
const FILE_COUNT_STEP: u64 = 256;

impl Progress for Bar {
    fn phase(&self, message: &str) {
        self.bar.reset();
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(message.to_string());
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    fn start(&self, root: &Path, files: u64, bytes: u64) {
        self.bar.reset();
        self.bar.set_position(0);
        // No totals (a streamed `profile` learns them only at the walk's end): count up,
        // without a bar full from the start, an ETA of 0 or "N/0 files".
        let unknown = files == 0 && bytes == 0;
        let template = if unknown {
            self.bar.unset_length();
            "{msg} {prefix} {bytes} {binary_bytes_per_sec} ({elapsed})"
        } else {
            self.bar.set_length(bytes);
            "{msg} {prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        };
        self.bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.files_done.store(0, Ordering::Relaxed);
        self.files_total.store(files, Ordering::Relaxed);
        self.bar.set_prefix(if unknown {
            "0 files".to_string()
        } else {
            format!("0/{files} files")
        });
        self.bar
            .set_message(format!("hashing {}", pacsguard_events::escape_path(root)));
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
        let done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.files_total.load(Ordering::Relaxed);
        if total == 0 {
            if done.is_multiple_of(FILE_COUNT_STEP) {
                self.bar.set_prefix(format!("{done} files"));
            }
        } else if done.is_multiple_of(FILE_COUNT_STEP) || done == total {
            self.bar.set_prefix(format!("{done}/{total} files"));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden() -> Bar {
        Bar {
            bar: ProgressBar::hidden(),
            files_done: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
        }
    }

    #[test]
    fn totals_not_known_count_up_instead_of_claiming_zero() {
        // A streamed `profile` knows its totals only once the walk ends (issue 15): the
        // bar counts what was hashed, never "300/0 files" over a full bar.
        let bar = hidden();
        bar.start(Path::new("/srv/pacs"), 0, 0);
        for _ in 0..FILE_COUNT_STEP {
            bar.advance(10);
        }
        assert_eq!(bar.bar.prefix(), format!("{FILE_COUNT_STEP} files"));
        assert_eq!(bar.bar.length(), None);
        // Known totals are still said.
        bar.start(Path::new("/srv/pacs"), 2, 20);
        bar.advance(10);
        bar.advance(10);
        assert_eq!(bar.bar.prefix(), "2/2 files");
        assert_eq!(bar.bar.length(), Some(20));
    }
}
