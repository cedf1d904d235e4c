//! What the guard running an acceptance has seen, so that the acceptance signs only
//! that: the content a person was shown, never a change made after their page was drawn.
//!
//! An acceptance walks and hashes the trees again, and takes in what it finds. Checked
//! by paths alone, a file rewritten between the page and the walk (or between the
//! console's last look and the watcher's turn) was signed in under a shown path with
//! content nobody reviewed. The watcher that runs the acceptance holds its view of each
//! root (the signed baseline and every change it verified and reported) and the console's
//! open findings (fed by its own output): under its turn, the acceptance is refused when
//! the findings open now are not those shown ([`GuardSight::still_shown`]) or a walked
//! entry is not as the view holds it ([`GuardSight::as_seen`]).

use pacsguard_events::{Finding, FindingKind, escape_path};
use pacsguard_fs::{Content, Entry, EntryType};
use pacsguard_profile::{RootProfile, RootSpec};

use crate::error::EngineError;

/// What a person deciding in the console was shown, handed with the acceptance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    /// The root their page was for, as shown (escaped); empty: every root.
    pub root: String,
    /// The digest of the open findings their page showed (the console's `seen`).
    pub digest: String,
}

/// The guard's checks of an acceptance it runs ([`super::Session::accept`]).
pub(crate) trait GuardSight: Send {
    /// Refuses when the findings the guard has open now are not those shown.
    fn still_shown(&self) -> Result<(), EngineError>;
    /// The entry the guard last saw at `rel` in the root `spec` (`None`: none, or none
    /// it can vouch for, such as a row of a view on disk that fails its MAC).
    fn seen(&self, spec: &RootSpec, rel: &[u8]) -> Option<Entry>;
}

/// Refuses entries of `walked` (in `spec`) whose content is not as the guard last saw
/// it: a file written (or added) since, not yet verified and reported by the guard.
pub(crate) fn as_seen(
    sight: &dyn GuardSight,
    spec: &RootSpec,
    walked: &[Entry],
) -> Result<(), EngineError> {
    let Some(entry) = walked.iter().find(|e| {
        sight
            .seen(spec, &e.rel)
            .is_none_or(|seen| !same_signed_fields(&seen, e))
    }) else {
        return Ok(());
    };
    Err(EngineError::Usage(format!(
        "{}: its content or metadata now was not among those shown to the person accepting (it changed since the running guard last verified and reported it): nothing was accepted; review the differences again once the guard reports it, and decide again",
        escape_path(&RootProfile::absolute_of(&spec.path, &entry.rel))
    )))
}

/// Refuses the removals among `found` (differences in `spec` an acceptance would take
/// in) that the guard has not seen: an entry deleted or moved away after the guard last
/// reported it is still in its view, and would be signed out of the profile unseen
/// ([`as_seen`] checks only what the walk found, so a deletion passed it).
pub(crate) fn removals_as_seen(
    sight: &dyn GuardSight,
    spec: &RootSpec,
    found: &[Finding],
) -> Result<(), EngineError> {
    use std::os::unix::ffi::OsStrExt as _;
    for finding in found {
        let gone = match finding.kind {
            FindingKind::Removed => Some(&finding.path),
            FindingKind::Moved => finding.from.as_ref(),
            _ => None,
        };
        let Some(gone) = gone else {
            continue;
        };
        // Outside the root (never so from a comparison): nothing vouches for it.
        let still_there = gone.strip_prefix(&spec.path).map_or(true, |rel| {
            sight.seen(spec, rel.as_os_str().as_bytes()).is_some()
        });
        if still_there {
            return Err(EngineError::Usage(format!(
                "{}: removed since the running guard last verified and reported it (the guard has not reported its removal): nothing was accepted; review the differences again once the guard reports it, and decide again",
                escape_path(gone)
            )));
        }
    }
    Ok(())
}

/// Whether two entries at one path are the same in every field the profile signs
/// except times: type, link target, content (its digest when hashed), mode, owner,
/// inode flags, device number, extended attributes and, for non-directories, size and
/// link count. Pinning the content alone let a `chmod 4755` (or a `security.capability`
/// xattr) made after the page was drawn be signed in unseen with the shown change.
/// Times are left out: reading or touching a shown file must not refuse the acceptance,
/// and a time alone grants nothing. A directory's size and link count follow from its
/// children, which are checked on their own.
fn same_signed_fields(seen: &Entry, now: &Entry) -> bool {
    seen.kind == now.kind
        && seen.link_target == now.link_target
        && seen.xattrs == now.xattrs
        && same_meta(seen, now)
        && same_content(seen, now)
}

/// The metadata part of [`same_signed_fields`].
fn same_meta(seen: &Entry, now: &Entry) -> bool {
    let (a, b) = (&seen.meta, &now.meta);
    let sized = seen.kind != EntryType::Directory;
    // Flags are compared only where both are known, as the profile's comparison does.
    let flags_agree = match (a.flags, b.flags) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    a.mode == b.mode
        && a.uid == b.uid
        && a.gid == b.gid
        && a.rdev == b.rdev
        && flags_agree
        && (!sized || (a.size == b.size && a.nlink == b.nlink))
}

/// The content part of [`same_signed_fields`]: the digest when both were hashed.
fn same_content(seen: &Entry, now: &Entry) -> bool {
    match (&seen.content, &now.content) {
        (Content::Hashed { digest: a, .. }, Content::Hashed { digest: b, .. }) => a == b,
        (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// The refusal when the findings open now are not those shown.
pub(crate) fn changed_since_shown() -> EngineError {
    EngineError::Usage(
        "the differences changed since this page was shown (the guard reported another before it ran the acceptance): nothing was accepted; review them and decide again".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_fs::{Digest, Meta};

    fn file(rel: &str, digest: u8) -> Entry {
        Entry {
            rel: rel.as_bytes().to_vec(),
            kind: EntryType::File,
            meta: Meta::default(),
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Hashed {
                digest: Digest([digest; 32]),
                prefix: None,
                dicom: None,
            },
        }
    }

    struct Seen(Vec<Entry>, bool);

    impl GuardSight for Seen {
        fn still_shown(&self) -> Result<(), EngineError> {
            if self.1 {
                Ok(())
            } else {
                Err(changed_since_shown())
            }
        }
        fn seen(&self, _spec: &RootSpec, rel: &[u8]) -> Option<Entry> {
            self.0.iter().find(|e| e.rel == rel).cloned()
        }
    }

    /// A walked file whose digest is not the one the guard saw, or which it never saw,
    /// refuses the acceptance and names the file; the same content passes.
    #[test]
    fn only_what_the_guard_saw_is_accepted() {
        let spec = RootSpec {
            path: "/srv/root".into(),
            policy: pacsguard_profile::Policy::Static,
            hash: pacsguard_fs::HashAlgorithm::Blake3,
            exclude: Vec::new(),
            cross_mounts: false,
        };
        let sight = Seen(vec![file("a", 1), file("b", 2)], true);
        assert!(as_seen(&sight, &spec, &[file("a", 1), file("b", 2)]).is_ok());
        let e = as_seen(&sight, &spec, &[file("a", 1), file("b", 9)]).expect_err("rewritten");
        assert!(e.to_string().contains("/srv/root/b"), "{e}");
        let e = as_seen(&sight, &spec, &[file("c", 3)]).expect_err("never seen");
        assert!(e.to_string().contains("/srv/root/c"), "{e}");
        // Same content, another signed field: refused (review s34c); a time alone is not.
        let mut setuid = file("a", 1);
        setuid.meta.mode = 0o4755;
        let e = as_seen(&sight, &spec, &[setuid]).expect_err("mode changed");
        assert!(e.to_string().contains("/srv/root/a"), "{e}");
        let mut owned = file("a", 1);
        owned.meta.uid = 1000;
        assert!(as_seen(&sight, &spec, &[owned]).is_err(), "owner changed");
        let mut capable = file("a", 1);
        capable.xattrs.push(pacsguard_fs::Xattr {
            name: b"security.capability".to_vec(),
            value: pacsguard_fs::XattrValue::Digest(Digest([7; 32])),
        });
        assert!(as_seen(&sight, &spec, &[capable]).is_err(), "xattr added");
        // A removal the guard has not seen (still in its view) is refused; one it
        // reported (gone from its view) passes; a move away from a seen path too.
        let removed = |rel: &str| {
            Finding::new(
                spec.path.join(rel),
                FindingKind::Removed,
                pacsguard_events::Severity::Alert,
                "gone",
            )
        };
        let e = removals_as_seen(&sight, &spec, &[removed("a")]).expect_err("unseen removal");
        assert!(e.to_string().contains("/srv/root/a"), "{e}");
        assert!(removals_as_seen(&sight, &spec, &[removed("c")]).is_ok());
        let mut moved = removed("c");
        moved.kind = FindingKind::Moved;
        moved.from = Some(spec.path.join("b"));
        assert!(
            removals_as_seen(&sight, &spec, &[moved]).is_err(),
            "moved away unseen"
        );
        let mut touched = file("a", 1);
        touched.meta.mtime = pacsguard_fs::Timestamp { sec: 9, nsec: 0 };
        assert!(
            as_seen(&sight, &spec, &[touched]).is_ok(),
            "times are not pinned"
        );
    }
}
