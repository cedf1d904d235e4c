use std::path::PathBuf;

/// Everything that stops an operation. The CLI shows the message and exits with status 2.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{}: {reason}", .path.display())]
    Io { path: PathBuf, reason: String },
    #[error("home {} is already initialized (signing.key exists); nothing was changed", .0.display())]
    AlreadyInitialized(PathBuf),
    #[error("home {} is not initialized: run `pacsguard --home {} init` first", .0.display(), .0.display())]
    NotInitialized(PathBuf),
    #[error("{}: {reason}", .path.display())]
    Config { path: PathBuf, reason: String },
    #[error("signing key {}: {reason}", .path.display())]
    Key { path: PathBuf, reason: String },
    #[error("home {} is in use by another pacsguard command ({holder}; lock {}): one command at a time, and one watcher per home", .home.display(), .lock.display())]
    Locked {
        home: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("no profile has been taken yet in home {}: run `pacsguard profile PATH` first", .0.display())]
    NoBaseline(PathBuf),
    /// A signed baseline of no root (every root taken out, or a new store after `store
    /// reinit`): nothing is guarded, a state to act on (exit 2), as after `init`, never a
    /// check of nothing that reads as a finding (review r28-store: `check` warned and
    /// exited 1 where `watch`, `serve` and `accept` said "no profile has been taken yet").
    #[error("the signed profile in {} (baseline generation {generation}) guards no root: nothing in this home is guarded until a tree is profiled again (every root was taken out with `accept --remove-root`, or the store was started anew with `store reinit`: `pacsguard --home {} audit verify` lists every store reset); run `pacsguard --home {} profile PATH`, to be approved again where a console approves profiles", .store.display(), .home.display(), .home.display())]
    GuardsNoRoot {
        home: PathBuf,
        store: PathBuf,
        generation: u64,
    },
    #[error("{}: not inside any profiled root (profiled: {roots})", .path.display())]
    NotProfiled { path: PathBuf, roots: String },
    #[error("{}: overlaps the profiled root {}; roots must not nest", .path.display(), .other.display())]
    Overlap { path: PathBuf, other: PathBuf },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] pacsguard_store::StoreError),
    #[error(transparent)]
    Profile(#[from] pacsguard_profile::ProfileError),
    #[error(transparent)]
    Sink(#[from] pacsguard_events::SinkError),
    #[error(transparent)]
    Audit(#[from] pacsguard_audit::LogError),
    /// Tampering found before anything could be done: the command did nothing and wrote
    /// nothing; the finding is shown, and the exit status is 2 like every other mismatch
    /// of store and trail (a rolled-back trail, a deleted store): the command did not run.
    #[error("{}", .0.detail)]
    Tampered(Box<pacsguard_events::Finding>),
    /// The findings were made but could not be put on the audit trail (a full disk): they
    /// are handed back so the caller shows them before failing. Evidence that cannot be
    /// recorded must still be seen.
    #[error("{}: {source}", if source.recorded() { "the findings above are recorded, but" } else { "the findings above could not be recorded on the audit trail" })]
    Unrecorded {
        findings: Vec<pacsguard_events::Finding>,
        source: Box<EngineError>,
    },
}

impl EngineError {
    /// Whether what the command found is on the trail all the same (only the witness copy
    /// failed), so that no message claims it was lost.
    pub fn recorded(&self) -> bool {
        match self {
            EngineError::Sink(e) => e.recorded,
            EngineError::Unrecorded { source, .. } => source.recorded(),
            _ => false,
        }
    }

    /// Whether the home's store or trail could not be written for now (its disk full,
    /// its file system failing, another writer holding the store past the wait):
    /// nothing was done, and the same command may succeed later. The console answers
    /// such a failure 503, not as a refusal the person could correct (review
    /// r28-console).
    pub fn is_unavailable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_unavailable(),
            EngineError::Audit(pacsguard_audit::LogError::Io { .. }) => true,
            EngineError::Sink(e) => !e.recorded,
            EngineError::Unrecorded { source, .. } => !source.recorded(),
            _ => false,
        }
    }

    /// The home's store this error refuses as altered, foreign or unreadable (see
    /// [`pacsguard_store::StoreError::refused_store`]): the caller adds
    /// [`store_way_out`] to what it shows, so that no such refusal is a dead end.
    pub fn refused_store(&self) -> Option<&std::path::Path> {
        match self {
            EngineError::Store(e) => e.refused_store(),
            EngineError::Unrecorded { source, .. } => source.refused_store(),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        EngineError::Io {
            path: path.into(),
            reason: e.to_string(),
        }
    }
}

/// What an administrator can do about a store every command refuses (deleted, emptied,
/// rolled back, altered, unreadable): one text for every such refusal, so that none is a
/// dead end (review r23-scale), and none costs the evidence: the refused file is kept,
/// and the trail, which records what the store held, is left as it is.
pub fn store_way_out(store: &std::path::Path) -> String {
    let shown = store.display();
    let home = store.parent().unwrap_or(store).display();
    format!(
        "What to do: keep the refused file as evidence (move it aside, `mv {shown} {shown}.refused`, never delete it), then put back {shown} from a backup of this home holding the generation the trail last signed or a later one (`sqlite3 COPY 'SELECT generation FROM baseline'` names a copy's generation, `pacsguard --home {home} audit verify` the trail's): every command verifies the copy before it uses it. Without such a backup, once a person has checked why: `pacsguard --home {home} store reinit --reason TEXT` moves the refused file aside as evidence (its digest on the record) and starts a new, empty store on the record, after which every root must be profiled (and approved) again; or keep this home as it is (`audit verify` still verifies its trail) and start a new home (`pacsguard --home NEW init`)"
    )
}
