//! Four eyes (`[console] four_eyes`) seen from the process that runs the guard: which
//! acceptances need a second approver. The console asks it for acceptances made in the
//! browser; the control socket asks it for `pacsguard accept` relayed to the running
//! guard, which is refused for such roots (root's CLI must not walk around the second
//! approver the console asks for).

use std::path::PathBuf;

use anyhow::Result;
use pacsguard_engine::{Config, Home};
use pacsguard_profile::Policy;

/// Whether accepting under `root` (every root when empty) needs two approvers: four
/// eyes is configured and a `static` root is covered. Read from the configuration and
/// the signed profile at each acceptance (a root profiled since the start counts); what
/// cannot be read asks for two approvers (fail closed).
pub fn needed(home: &Home, root: &str) -> bool {
    match Config::load(&home.config_path()) {
        Ok(config) => config.console.four_eyes && covers_static(home, root),
        Err(_) => true,
    }
}

/// Whether accepting under `root` covers a profiled `static` root (a profile that cannot
/// be read covers: fail closed).
pub fn covers_static(home: &Home, root: &str) -> bool {
    match static_roots(home) {
        Ok(roots) => touches_any(root, &roots),
        Err(_) => true,
    }
}

/// The profiled `static` roots (their paths as profiled: resolved).
fn static_roots(home: &Home) -> Result<Vec<PathBuf>> {
    // Read only: this never judges the store, the commands that use it do.
    let Some(store) = pacsguard_store::Store::open_read_only(&home.store_path())? else {
        return Ok(Vec::new());
    };
    let key = home.load_key()?;
    Ok(store
        .load(&home.profile_public_key(&key)?)?
        .map(|(baseline, _)| {
            baseline
                .roots
                .iter()
                .filter(|r| r.spec.policy == Policy::Static)
                .map(|r| r.spec.path.clone())
                .collect()
        })
        .unwrap_or_default())
}

/// Whether an acceptance of `root` (every root when empty) covers any of `roots`: the
/// path is resolved as the acceptance resolves it (a symlink, `..` or a subdirectory
/// must not slip past four eyes), and one that cannot be resolved counts as covering
/// (fail closed).
fn touches_any(root: &str, roots: &[PathBuf]) -> bool {
    if roots.is_empty() {
        return false;
    }
    if root.is_empty() {
        return true;
    }
    let Ok(path) = std::fs::canonicalize(root) else {
        return true;
    };
    roots
        .iter()
        .any(|r| path.starts_with(r) || r.starts_with(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Four eyes cannot be walked around by naming a static root another way.
    #[test]
    fn an_acceptance_covers_a_static_root_however_it_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let guarded = base.join("static");
        std::fs::create_dir_all(guarded.join("sub")).expect("mkdir");
        std::fs::create_dir_all(base.join("other")).expect("mkdir");
        std::os::unix::fs::symlink(&guarded, base.join("link")).expect("symlink");
        let roots = vec![guarded.clone()];
        let name = |p: &Path| p.to_str().expect("utf-8").to_string();
        assert!(touches_any("", &roots), "every root");
        assert!(touches_any(&name(&guarded), &roots));
        assert!(
            touches_any(&name(&guarded.join("sub")), &roots),
            "a subdirectory"
        );
        assert!(touches_any(&name(&base.join("link")), &roots), "a symlink");
        assert!(
            touches_any(&name(&base.join("other/../static/sub")), &roots),
            "a detour through .."
        );
        assert!(touches_any(&name(&base), &roots), "a parent");
        assert!(
            touches_any(&name(&base.join("gone")), &roots),
            "unresolvable"
        );
        assert!(!touches_any(&name(&base.join("other")), &roots));
        assert!(!touches_any("", &[]), "no static root");
    }
}
