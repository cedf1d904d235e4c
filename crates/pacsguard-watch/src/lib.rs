//! Kernel change notification for guarded trees, and the debounce between an event and
//! its verification.
//!
//! [`TreeWatcher`] keeps one inotify watch per directory of the guarded trees. The kernel
//! tells which directory an event came from and the name inside it; this crate turns that
//! into a [`Notice`] about an absolute path. It never opens, reads or changes a guarded
//! file: watching is done by the kernel, verifying is the caller's job.
//!
//! What the kernel can lose is said, never hidden:
//! * a queue overflow is a [`Notice::Overflow`] (the caller rescans what it guards);
//! * a directory that could not get a watch (the kernel's or our [`TreeWatcher`]'s limit)
//!   is a [`Notice::Unwatched`] (the caller polls it).
//!
//! [`WriteWatcher`] adds fanotify where the process may use it (root): every write on the
//! mounts of the guarded trees, whatever directory it lands in, with the writer's process.
//!
//! [`AttribWatcher`] adds a second fanotify group (file handles, Linux 5.1) for attribute
//! changes: a new hard link made to a guarded file from outside the trees raises its link
//! count, which no directory watch hears.
//!
//! [`Debounce`] holds the paths waiting to be verified: a path whose writer closed it is
//! due at once, a path still being written is due when it has been quiet for a while.

mod debounce;
mod fanotify;
mod inotify;
mod links;

pub use debounce::{Debounce, Due};
pub use fanotify::{WriteBatch, WriteNotice, WriteWatcher};
pub use inotify::{Notice, RawBatch, TreeWatcher, WatchError, WatchOutcome, kernel_watch_limit};
pub use links::{AttribNotice, AttribWatcher};
