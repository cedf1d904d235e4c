//! The threads that screen data sets: a pool of their own, apart from the runtime's
//! blocking pool (passcode checks, name lookups of upstreams), so that data sets made
//! slow to screen can take only these threads, never the rest of the gateway's blocking
//! work; its queue is bounded and a full queue is said to the caller at once (who answers
//! it: a refusal or an alert), never waited on. And the [`Ticket`] that decides, for a
//! data set held until screened, whether its screening or its deadline answers it.
//!
//! No I/O here beyond the threads; the relay owns what is screened and what is recorded.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

/// Data sets waiting for a screening thread, beyond those being screened. A data set
/// waiting holds its share of the screening memory budget (`limits.inspection_memory_bytes`)
/// too, so this bounds the count, the budget the bytes; past it a data set is not
/// screened: refused (0xA700) on a refusing route, forwarded with a `not-inspected` alert
/// and a quarantine copy elsewhere.
pub const SCREENING_QUEUE: usize = 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The queue held [`SCREENING_QUEUE`] data sets (or the threads are gone): this one was
/// not taken.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// A fixed set of threads taking screening jobs from a bounded queue.
pub struct Pool {
    queue: mpsc::SyncSender<Job>,
    /// Jobs queued or running.
    busy: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} busy)", self.busy())
    }
}

/// Counts a job out when it ends, or when it is dropped unrun (a full queue, a pool gone).
struct Done(Arc<AtomicUsize>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    /// `threads` threads (named `gateway-screen-N`), at most `queued` jobs waiting. The
    /// threads end when the pool is dropped and its queue is empty.
    pub fn new(threads: usize, queued: usize) -> std::io::Result<Pool> {
        let (queue, jobs) = mpsc::sync_channel::<Job>(queued);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("gateway-screen-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits on the queue at a time, the others on the lock.
                        let job = match jobs.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A job catches its own panics (`screen_caught`); one that escapes
                        // must not take a screening thread with it.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Pool {
            queue,
            busy: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Queues `job`, or says at once that the queue is full.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Full> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let done = Done(Arc::clone(&self.busy));
        let job: Job = Box::new(move || {
            let _done = done;
            job();
        });
        // A job refused is dropped here, which counts it out.
        self.queue.try_send(job).map_err(|_| Full)
    }

    /// Jobs queued or running.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Acquire)
    }
}

/// Which came first for one data set: its screening's verdict or its deadline. Exactly
/// one of them wins; the other learns it lost and says so in its record (a late verdict
/// is recorded as screened after the sender was answered).
#[derive(Debug, Default)]
pub struct Ticket(AtomicU8);

const OPEN: u8 = 0;
const SCREENED: u8 = 1;
const LATE: u8 = 2;

impl Ticket {
    pub fn new() -> Arc<Ticket> {
        Arc::new(Ticket::default())
    }

    /// The screening finished: true when it was in time (its verdict answers).
    pub fn screened(&self) -> bool {
        match self
            .0
            .compare_exchange(OPEN, SCREENED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == SCREENED,
        }
    }

    /// The deadline passed: true when the screening had not finished (the deadline answers).
    pub fn expire(&self) -> bool {
        match self
            .0
            .compare_exchange(OPEN, LATE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == LATE,
        }
    }

    /// Whether the deadline answered.
    pub fn is_late(&self) -> bool {
        self.0.load(Ordering::Acquire) == LATE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_said_at_once_and_counted_out() {
        let pool = Pool::new(1, 1).expect("pool");
        let (hold, held) = mpsc::channel::<()>();
        let (started, start) = mpsc::channel::<()>();
        // The one thread is held inside its job; one job waits; the next is refused.
        pool.submit(move || {
            let _ = started.send(());
            let _ = held.recv();
        })
        .expect("first");
        start.recv().expect("started");
        pool.submit(|| {}).expect("queued");
        assert_eq!(pool.submit(|| {}), Err(Full));
        assert_eq!(pool.busy(), 2, "the refused job is not counted");
        drop(hold);
        // Bounded poll: both end.
        for _ in 0..1000 {
            if pool.busy() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(pool.busy(), 0);
        pool.submit(|| {}).expect("room again");
    }

    #[test]
    fn a_panicking_job_does_not_take_its_thread() {
        let pool = Pool::new(1, 4).expect("pool");
        pool.submit(|| panic!("a test panic")).expect("queued");
        let (tx, rx) = mpsc::channel();
        pool.submit(move || {
            let _ = tx.send(7);
        })
        .expect("queued");
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(30)), Ok(7));
    }

    #[test]
    fn the_screening_or_the_deadline_wins_never_both() {
        let t = Ticket::new();
        assert!(t.screened());
        assert!(!t.expire());
        assert!(!t.is_late());
        let t = Ticket::new();
        assert!(t.expire());
        assert!(!t.screened());
        assert!(t.is_late());
    }
}
