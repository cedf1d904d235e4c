//! Policies: what a change means for a root, as a severity (or nothing at all).

use std::fmt;

use pacsguard_events::Severity;
use serde::{Deserialize, Serialize};

/// How a root is expected to change (PRODUCT.md, "Policies per root").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Binaries, configuration: any change alerts.
    Static,
    /// Image stores: new files are expected; change, deletion or rename alerts.
    AppendOnly,
    /// Logs: files may only grow; the old prefix must not change.
    Growing,
    /// Existence only: content and metadata are not compared.
    Volatile,
}

/// A kind of difference between baseline and tree, before the policy weighs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Moved,
    /// A log renamed or copied to a rotation name of itself (growing roots): expected.
    Rotated,
    /// Different content, or the entry became another type.
    Content,
    /// A growing file that kept its old prefix and only grew.
    Grew,
    /// Metadata other than ctime differs.
    Metadata,
    /// Only the ctime differs: moves on benign events too (a backup restoring atime).
    CtimeOnly,
}

impl Policy {
    pub const ALL: [Policy; 4] = [
        Policy::Static,
        Policy::AppendOnly,
        Policy::Growing,
        Policy::Volatile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Static => "static",
            Policy::AppendOnly => "append-only",
            Policy::Growing => "growing",
            Policy::Volatile => "volatile",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The severity of `change` under this policy; `None` means expected and not reported.
    pub fn severity(self, change: Change) -> Option<Severity> {
        use Change::*;
        use Severity::*;
        match (self, change) {
            (Policy::Static, Added) => Some(Alert),
            (Policy::AppendOnly | Policy::Growing | Policy::Volatile, Added) => Some(Info),
            (Policy::Static | Policy::AppendOnly, Removed | Moved) => Some(Alert),
            // Log rotation removes and renames old logs.
            (Policy::Growing, Removed | Moved) => Some(Warning),
            (Policy::Growing, Rotated) => Some(Info),
            (Policy::Static | Policy::AppendOnly, Rotated) => Some(Alert),
            (Policy::Volatile, Rotated) => Some(Info),
            (Policy::Volatile, Removed) => Some(Warning),
            (Policy::Volatile, Moved) => Some(Info),
            (Policy::Static | Policy::AppendOnly | Policy::Growing, Content | Metadata) => {
                Some(Alert)
            }
            (Policy::Volatile, Content) => Some(Warning), // only reached for a type change
            (Policy::Volatile, Metadata | CtimeOnly | Grew) => None,
            (Policy::Static | Policy::AppendOnly, Grew) => Some(Alert),
            (Policy::Growing, Grew) => None,
            (_, CtimeOnly) => Some(Warning),
        }
    }

    /// Whether file content is hashed at all under this policy.
    pub fn hashes_content(self) -> bool {
        self != Policy::Volatile
    }

    /// Whether DICOM instances are hashed as header and Pixel Data apart (and their SOP
    /// Instance UID recorded): in image stores and static trees, not in logs.
    pub fn is_dicom_aware(self) -> bool {
        matches!(self, Policy::Static | Policy::AppendOnly)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_new_file_alerts_under_static_and_is_expected_under_append_only() {
        assert_eq!(
            Policy::Static.severity(Change::Added),
            Some(Severity::Alert)
        );
        assert_eq!(
            Policy::AppendOnly.severity(Change::Added),
            Some(Severity::Info)
        );
    }

    #[test]
    fn rewriting_an_image_store_always_alerts() {
        for change in [
            Change::Removed,
            Change::Moved,
            Change::Content,
            Change::Metadata,
            Change::Grew,
        ] {
            assert_eq!(
                Policy::AppendOnly.severity(change),
                Some(Severity::Alert),
                "{change:?}"
            );
        }
    }

    #[test]
    fn growing_allows_growth_only() {
        assert_eq!(Policy::Growing.severity(Change::Grew), None);
        assert_eq!(
            Policy::Growing.severity(Change::Content),
            Some(Severity::Alert)
        );
    }

    #[test]
    fn names_round_trip() {
        for policy in Policy::ALL {
            assert_eq!(Policy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(Policy::parse("append_only"), None);
    }
}
