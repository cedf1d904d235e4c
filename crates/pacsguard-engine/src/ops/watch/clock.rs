//! Two clocks. The wall clock dates every record, and can be stepped (an administrator,
//! a first NTP sync, an attacker covering tracks). The clock since boot (`CLOCK_BOOTTIME`,
//! counting suspend too) cannot be set: heartbeats carry it with the kernel's boot id, so
//! `audit verify` measures the time between two of them truly, and the watcher compares
//! the two clocks to put every step of the wall clock on the trail.

use std::io::Read as _;
use std::time::{Duration, SystemTime};

/// A disagreement between the clocks smaller than this is scheduling noise, not a step.
pub const CLOCK_STEP_TOLERANCE: Duration = Duration::from_secs(2);

/// Bytes read of the boot id (a UUID, 36 characters).
const MAX_BOOT_ID_BYTES: u64 = 64;

/// The kernel's id of this boot.
pub fn boot_id() -> Option<String> {
    let file = std::fs::File::open("/proc/sys/kernel/random/boot_id").ok()?;
    let mut text = String::new();
    file.take(MAX_BOOT_ID_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Time since boot, suspend included. Read with a system call (rustix), not through
/// libc, so that a process whose libc clock is faked still measures true intervals.
pub fn since_boot() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// Notices steps of the wall clock between two looks.
#[derive(Debug)]
pub struct StepDetector {
    wall: SystemTime,
    boot: Duration,
}

impl Default for StepDetector {
    fn default() -> Self {
        StepDetector {
            wall: SystemTime::now(),
            boot: since_boot(),
        }
    }
}

impl StepDetector {
    /// How far the wall clock moved beyond (positive) or short of (negative) the true time
    /// since the last look, with the wall-clock times before and after, when that is more
    /// than [`CLOCK_STEP_TOLERANCE`].
    pub fn check(&mut self) -> Option<(f64, SystemTime, SystemTime)> {
        let (wall, boot) = (SystemTime::now(), since_boot());
        let step = step(self.wall, wall, boot.saturating_sub(self.boot));
        let before = self.wall;
        self.wall = wall;
        self.boot = boot;
        step.map(|s| (s, before, wall))
    }
}

/// The step between two wall-clock readings `truly` apart, if beyond the tolerance.
fn step(before: SystemTime, after: SystemTime, truly: Duration) -> Option<f64> {
    let moved = match after.duration_since(before) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let step = moved - truly.as_secs_f64();
    (step.abs() > CLOCK_STEP_TOLERANCE.as_secs_f64()).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_beyond_the_tolerance_are_measured_both_ways() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let second = Duration::from_secs(1);
        assert_eq!(step(t0, t0 + second, second), None);
        // At the tolerance: noise. Just past it: a step.
        assert_eq!(step(t0, t0 + second + CLOCK_STEP_TOLERANCE, second), None);
        let past = CLOCK_STEP_TOLERANCE + Duration::from_millis(1);
        assert!(step(t0, t0 + second + past, second).is_some_and(|s| s > 2.0));
        // A day forward, an hour back.
        assert_eq!(
            step(t0, t0 + Duration::from_secs(86_401), second),
            Some(86_400.0)
        );
        assert_eq!(
            step(t0, t0 - Duration::from_secs(3599), second),
            Some(-3600.0)
        );
    }

    #[test]
    fn the_clock_since_boot_advances_and_the_boot_has_an_id() {
        let a = since_boot();
        std::thread::sleep(Duration::from_millis(10));
        assert!(since_boot() > a);
        assert!(boot_id().is_some_and(|id| id.len() == 36));
        assert_eq!(StepDetector::default().check(), None);
    }
}
