//! A progress bar on stderr, only when stderr is a terminal (never in pipes, cron or CI).

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pacsguard_engine::{NoProgress, Progress};

pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar(ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::stderr(),
        )))
    } else {
        Box::new(NoProgress)
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn phase(&self, message: &str) {
        self.0.reset();
        self.0.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.0.set_message(message.to_string());
        self.0.enable_steady_tick(Duration::from_millis(120));
    }

    fn start(&self, root: &Path, files: u64, bytes: u64) {
        self.0.reset();
        self.0.set_length(bytes);
        self.0.set_position(0);
        self.0.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.0.set_message(format!(
            "hashing {} files in {}",
            files,
            pacsguard_events::escape_path(root)
        ));
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
