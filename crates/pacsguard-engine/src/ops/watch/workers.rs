//! The slow part of a verification, off the event loop: hashing a big file (a 2 GiB
//! multi-frame series takes seconds) and screening an arrival (the rules may read the
//! whole file). A few worker threads take these jobs from a bounded queue and hand the
//! results back to the loop as messages, so the loop keeps reading events and reporting
//! every other path within milliseconds while a big file is hashed.
//!
//! Memory is bounded per worker: hashing streams the file in fixed chunks, and screening
//! holds at most `MAX_WHOLE_FILE_BYTES` of one file (larger files are screened in
//! windows), so a new 2 GiB file is never held whole. A job that has not come back
//! within [`JOB_DEADLINE`] is reported by the loop (`not-inspected`); one that cannot be
//! queued ([`MAX_QUEUED_JOBS`]) is reported and tried again later.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pacsguard_events::Finding;
use pacsguard_fs::Tree;
use pacsguard_profile::{RootProfile, hash_tree};
use pacsguard_screen::Screener;

use super::Msg;

/// Files that need hashing and are larger than this are hashed by a worker, not by the
/// event loop: at about 1 GB/s this is the longest the loop stops for one file (~60 ms).
pub const BIG_FILE_BYTES: u64 = 64 << 20;

/// Worker threads: each holds at most one file's screening window in memory, and the
/// machine's cores are shared with the archive the watcher guards.
pub const WORKERS: usize = 2;

/// Jobs waiting for a worker (a big file's hash, or up to [`SCREEN_BATCH`] arrivals to
/// screen: at most a few KiB of paths each): a fast ingest of small images queues one
/// screening job per batch. Past this, a job is not queued: the loop reports it (and
/// tries a big file again later), so memory stays bounded however many files arrive.
pub const MAX_QUEUED_JOBS: usize = 100_000;

/// Arrivals screened by one job. One job per file cost more in hand-overs (two channel
/// messages, a screening worker's set-up) than screening a small image itself: at 100,000
/// arrivals in 8 s, half were still queued at the stop. Small enough that a batch
/// comes back within milliseconds, and that the first alert of a batch is not held up.
pub const SCREEN_BATCH: usize = 64;

/// Jobs handed to the workers' channel at once; the rest wait in the pool's backlog.
const CHANNEL_JOBS: usize = 16;

/// A job that has not come back this long after it was queued is reported
/// (`not-inspected`): a file on storage that stalls, or one grown without end, must not
/// stay unverified in silence. Long enough for the queue of a large ingest to drain.
pub const JOB_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// What a worker does.
#[derive(Debug)]
pub enum Job {
    /// Hash the entries of `tree` (each `Pending`), with `base` for what they were.
    Hash {
        index: usize,
        /// Part of the start-up catch-up.
        catch_up: bool,
        /// The paths (relative to the root) this job concludes, for the view.
        rels: Vec<Vec<u8>>,
        base: RootProfile,
        tree: Tree,
    },
    /// Screen arrivals of an `append-only` root (at most [`SCREEN_BATCH`]).
    Screen { root: PathBuf, paths: Vec<PathBuf> },
    /// Screen a new file of an `append-only` root as it stands while a writer still
    /// holds it open and writes it (see [`super::writers::ARRIVAL_PEEK_AFTER`]).
    Peek {
        root: PathBuf,
        path: PathBuf,
        peek: Peek,
    },
}

/// What is said about a file screened while still being written.
#[derive(Clone, Debug)]
pub struct Peek {
    /// Its size when the screening was asked for.
    pub bytes: u64,
    /// The process still holding it open for writing ("name (pid N)").
    pub holder: String,
}

impl Job {
    /// The absolute path the job is about (for deadlines and reports).
    pub fn path(&self) -> PathBuf {
        match self {
            Job::Hash { base, rels, .. } => {
                super::absolute(&base.spec.path, rels.first().map_or(&[][..], Vec::as_slice))
            }
            Job::Screen { paths, .. } => paths.first().cloned().unwrap_or_default(),
            Job::Peek { path, .. } => path.clone(),
        }
    }
}

/// What came back.
#[derive(Debug)]
pub enum Done {
    Hashed {
        index: usize,
        catch_up: bool,
        rels: Vec<Vec<u8>>,
        tree: Tree,
    },
    Screened {
        root: PathBuf,
        paths: Vec<PathBuf>,
        findings: Vec<Finding>,
    },
    Peeked {
        root: PathBuf,
        path: PathBuf,
        peek: Peek,
        findings: Vec<Finding>,
    },
}

/// The pool: a bounded queue and its threads. Dropping it closes the queue: each worker
/// ends after its current job (it is not waited for: a hash of a big file must not hold
/// up the watcher's stop).
pub struct Pool {
    jobs: SyncSender<Job>,
    /// Jobs the channel had no room for, oldest first (at most [`MAX_QUEUED_JOBS`]).
    backlog: VecDeque<Job>,
    /// The queue's end the workers share, kept while the pool lives.
    _queue: Arc<Mutex<Receiver<Job>>>,
    _threads: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn start(screener: Arc<Screener>, results: SyncSender<Msg>) -> std::io::Result<Pool> {
        Pool::start_with(WORKERS, screener, results)
    }

    fn start_with(
        workers: usize,
        screener: Arc<Screener>,
        results: SyncSender<Msg>,
    ) -> std::io::Result<Pool> {
        let (jobs, queue) = sync_channel::<Job>(CHANNEL_JOBS);
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::new();
        for n in 0..workers {
            let (queue, screener, results) =
                (Arc::clone(&queue), Arc::clone(&screener), results.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("verify-{n}"))
                    .spawn(move || work(&queue, &screener, &results))?,
            );
        }
        Ok(Pool {
            jobs,
            backlog: VecDeque::new(),
            _queue: queue,
            _threads: threads,
        })
    }

    /// Queues `job`; false (and the job dropped) when [`MAX_QUEUED_JOBS`] wait already.
    pub fn submit(&mut self, job: Job) -> bool {
        self.feed();
        if self.backlog.is_empty() {
            match self.jobs.try_send(job) {
                Ok(()) => return true,
                Err(TrySendError::Full(job)) => {
                    self.backlog.push_back(job);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        if self.backlog.len() >= MAX_QUEUED_JOBS {
            return false;
        }
        self.backlog.push_back(job);
        true
    }

    /// Moves waiting jobs to the workers' channel while it has room (called as results
    /// come back, and at every tick).
    pub fn feed(&mut self) {
        while let Some(job) = self.backlog.pop_front() {
            match self.jobs.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                    self.backlog.push_front(job);
                    return;
                }
            }
        }
    }
}

fn work(queue: &Mutex<Receiver<Job>>, screener: &Screener, results: &SyncSender<Msg>) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let done = match job {
            Job::Hash {
                index,
                catch_up,
                rels,
                base,
                mut tree,
            } => {
                hash_tree(&base.spec, Some(&base), &mut tree, &|_| {});
                Done::Hashed {
                    index,
                    catch_up,
                    rels,
                    tree,
                }
            }
            Job::Screen { root, paths } => {
                let findings = super::super::scan::screen_arrivals(screener, &paths);
                Done::Screened {
                    root,
                    paths,
                    findings,
                }
            }
            Job::Peek { root, path, peek } => {
                let findings =
                    super::super::scan::screen_arrivals(screener, std::slice::from_ref(&path));
                Done::Peeked {
                    root,
                    path,
                    peek,
                    findings,
                }
            }
        };
        // The loop gone (the watcher stops): nothing left to tell.
        if results.send(Msg::Done(done)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(n: usize) -> Job {
        Job::Screen {
            root: PathBuf::from("/srv/pacs"),
            paths: vec![PathBuf::from(format!("/srv/pacs/{n}.dcm"))],
        }
    }

    /// The queue holds `MAX_QUEUED_JOBS` and refuses the next (the loop then reports it
    /// and tries again), however many files arrive.
    #[test]
    fn the_queue_is_bounded_at_its_limit() {
        let screener = Arc::new(super::super::super::scan::arrival_screener().expect("rules"));
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        // No worker takes anything: the queue alone decides.
        let mut pool = Pool::start_with(0, screener, tx).expect("pool");
        let room = CHANNEL_JOBS + MAX_QUEUED_JOBS;
        for n in 0..room {
            assert!(pool.submit(screen(n)), "job {n} fits");
        }
        assert!(!pool.submit(screen(room)), "one over the limit");
    }

    /// A batch of arrivals is one job: every path comes back with it, and what one file
    /// of the batch carries is reported about that file (a real ELF, /bin/true, in the
    /// preamble of one of three).
    #[test]
    fn a_batch_of_arrivals_is_screened_as_one_job_and_each_finding_names_its_file() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let mut dicom = vec![0u8; 132];
        dicom[128..132].copy_from_slice(b"DICM");
        let elf = std::fs::read("/bin/true").expect("/bin/true");
        let mut hostile = elf[..128].to_vec();
        hostile.extend_from_slice(b"DICM");
        let paths: Vec<PathBuf> = (0..3)
            .map(|i| tmp.path().join(format!("{i}.dcm")))
            .collect();
        for (i, path) in paths.iter().enumerate() {
            std::fs::write(path, if i == 1 { &hostile } else { &dicom }).expect("test fixture");
        }
        let screener = Arc::new(super::super::super::scan::arrival_screener().expect("rules"));
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let mut pool = Pool::start(screener, tx).expect("pool");
        assert!(pool.submit(Job::Screen {
            root: tmp.path().to_path_buf(),
            paths: paths.clone(),
        }));
        let done = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a result");
        let Msg::Done(Done::Screened {
            paths: back,
            findings,
            ..
        }) = done
        else {
            panic!("{done:?}");
        };
        assert_eq!(back, paths);
        assert!(!findings.is_empty());
        assert!(findings.iter().all(|f| f.path == paths[1]), "{findings:#?}");
    }

    /// A worker screens an arrival and hands the result back to the loop.
    #[test]
    fn a_worker_screens_and_reports_back() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let path = tmp.path().join("x.dcm");
        let mut bytes = vec![0u8; 132];
        bytes[128..132].copy_from_slice(b"DICM");
        std::fs::write(&path, &bytes).expect("test fixture");
        let screener = Arc::new(super::super::super::scan::arrival_screener().expect("rules"));
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let mut pool = Pool::start(screener, tx).expect("pool");
        assert!(pool.submit(Job::Screen {
            root: tmp.path().to_path_buf(),
            paths: vec![path.clone()],
        }));
        let done = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a result");
        assert!(
            matches!(&done, Msg::Done(Done::Screened { paths: p, .. }) if *p == [path.clone()]),
            "{done:?}"
        );
    }
}
