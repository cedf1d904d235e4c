//! The digest of the settings that are not signed into the baseline (`[audit]` and
//! `[watch]`): signed into every checkpoint of the audit trail instead, so a change made
//! behind PacsGuard's back (a witness removed, the scrub switched off) is put on the
//! record by the next command.

use sha2::{Digest as _, Sha256};

/// SHA-256 of the `[audit]` and `[watch]` tables of `config.toml`'s text, re-serialized
/// (keys sorted, comments and layout ignored). Text that does not parse gives the digest
/// of nothing: `Config::load` has refused it already.
pub(crate) fn settings_digest(config_text: &str) -> [u8; 32] {
    let mut signed = toml::Table::new();
    if let Ok(table) = toml::from_str::<toml::Table>(config_text) {
        for name in ["audit", "watch"] {
            if let Some(value) = table.get(name) {
                signed.insert(name.to_string(), value.clone());
            }
        }
    }
    let text = toml::to_string(&signed).unwrap_or_default();
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_audit_and_watch_settings_count_and_layout_does_not() {
        let a = settings_digest(
            "[audit]\nwitness = \"/w\"\n[[root]]\npath = \"/a\"\npolicy = \"static\"\n",
        );
        let b = settings_digest(
            "# comment\n[[root]]\npath = \"/b\"\npolicy = \"growing\"\n\n[audit]\nwitness   =   \"/w\"\n",
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            settings_digest("[[root]]\npath = \"/a\"\npolicy = \"static\"\n")
        );
        assert_ne!(
            settings_digest("[watch]\nscrub_hours = 24\n"),
            settings_digest("[watch]\nscrub_hours = 0\n")
        );
    }
}
