//! Tests only: a fleet store whose answer to chosen writes is lost, as a PostgreSQL
//! server's is when the connection drops after the statement (or its COMMIT) was sent:
//! the write lands, or not, and the console is told neither
//! ([`StoreError::outcome_unknown`]).

use pacsguard_store::{
    AcceptedBatch, Acknowledgement, Again, ConsoleDb, FleetSetting, FleetStore, HostRow,
    ProfileNoted, ProfileRow, QuotaWindow, Revoker, SeenState, StoreError, TokenRefusal,
};

/// What becomes of a write whose answer is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Answered as always.
    No,
    /// Carried out by the store; its answer lost.
    AfterCommit,
    /// Never carried out; no answer either.
    BeforeCommit,
}

/// [`ConsoleDb`] with the answers of host state changes and profile notings lost at will.
#[derive(Debug)]
pub struct Unanswered {
    pub db: ConsoleDb,
    pub state: Lost,
    pub profile: Lost,
    /// What becomes of a read of one profile (`BeforeCommit`: the store gives no
    /// answer to it).
    pub profile_read: Lost,
}

impl Unanswered {
    /// The store underneath, as the console's code calls it.
    fn inner(&mut self) -> &mut dyn FleetStore {
        &mut self.db
    }
}

/// The error a lost answer is: a statement sent and never answered.
fn lost() -> StoreError {
    StoreError::PostgresDeadline {
        target: "the test's store".into(),
        what: "a statement of the test",
        after: std::time::Duration::from_secs(1),
        setting: "the test's deadline",
        sent: true,
    }
}

/// `result` as `mode` makes it: carried out or not, answered or not.
fn answer<T>(mode: Lost, call: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    match mode {
        Lost::No => call(),
        Lost::AfterCommit => call().and_then(|_| Err(lost())),
        Lost::BeforeCommit => Err(lost()),
    }
}

impl FleetStore for Unanswered {
    fn add_enrol_token(&mut self, t: &[u8], now: i64, expires: i64) -> Result<(), StoreError> {
        self.inner().add_enrol_token(t, now, expires)
    }
    fn revoked_host_with_trail(&mut self, name: &str) -> Result<Option<HostRow>, StoreError> {
        self.inner().revoked_host_with_trail(name)
    }
    fn add_continue_token(
        &mut self,
        t: &[u8],
        now: i64,
        expires: i64,
        continues: i64,
    ) -> Result<(), StoreError> {
        self.inner().add_continue_token(t, now, expires, continues)
    }
    fn continued_host(&mut self, id: i64) -> Result<Option<HostRow>, StoreError> {
        self.inner().continued_host(id)
    }
    fn enrol_token_refusal(
        &mut self,
        t: &[u8],
        now: i64,
    ) -> Result<Option<TokenRefusal>, StoreError> {
        self.inner().enrol_token_refusal(t, now)
    }
    fn enrol_host(
        &mut self,
        t: &[u8],
        now: i64,
        name: &str,
        fingerprint: &str,
    ) -> Result<Result<i64, TokenRefusal>, StoreError> {
        self.inner().enrol_host(t, now, name, fingerprint)
    }
    fn host_by_fingerprint(&mut self, f: &str) -> Result<Option<HostRow>, StoreError> {
        self.inner().host_by_fingerprint(f)
    }
    fn host(&mut self, id: i64) -> Result<Option<HostRow>, StoreError> {
        self.inner().host(id)
    }
    fn hosts(&mut self) -> Result<Vec<HostRow>, StoreError> {
        self.inner().hosts()
    }
    fn revoke_host(&mut self, n: &str, now: i64, r: &Revoker<'_>) -> Result<usize, StoreError> {
        self.inner().revoke_host(n, now, r)
    }
    fn touch_host(&mut self, id: i64, now: i64, interval: i64) -> Result<(), StoreError> {
        self.inner().touch_host(id, now, interval)
    }
    fn set_host_state(&mut self, id: i64, state: &str, detail: &str) -> Result<bool, StoreError> {
        let mode = self.state;
        answer(mode, || self.inner().set_host_state(id, state, detail))
    }
    fn swap_host_state(
        &mut self,
        id: i64,
        seen: &SeenState<'_>,
        state: &str,
        detail: &str,
        again: &Again,
    ) -> Result<bool, StoreError> {
        let mode = self.state;
        answer(mode, || {
            self.inner().swap_host_state(id, seen, state, detail, again)
        })
    }
    fn acknowledge_host(
        &mut self,
        id: i64,
        state: &str,
        kept: &str,
        ack: &Acknowledgement,
    ) -> Result<bool, StoreError> {
        self.inner().acknowledge_host(id, state, kept, ack)
    }
    fn identity_duplicated(&mut self, id: i64) -> Result<Option<String>, StoreError> {
        self.inner().identity_duplicated(id)
    }
    fn note_identity_duplicated(
        &mut self,
        id: i64,
        stranger: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner().note_identity_duplicated(id, stranger, now)
    }
    fn accept_batch(&mut self, host: i64, batch: &AcceptedBatch<'_>) -> Result<bool, StoreError> {
        self.inner().accept_batch(host, batch)
    }
    fn carry_over_host(&mut self, from: i64, to: i64) -> Result<bool, StoreError> {
        self.inner().carry_over_host(from, to)
    }
    fn host_records_between(
        &mut self,
        host: i64,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner().host_records_between(host, from, to)
    }
    fn host_records(&mut self, host: i64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner().host_records(host)
    }
    fn note_profile(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        created: i64,
        now: i64,
    ) -> Result<ProfileNoted, StoreError> {
        let mode = self.profile;
        answer(mode, || {
            self.inner()
                .note_profile(host, generation, digest, created, now)
        })
    }
    fn note_profile_in_trail(
        &mut self,
        host: i64,
        generation: u64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner().note_profile_in_trail(host, generation, now)
    }
    fn propose_profile_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        id: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner()
            .propose_profile_approval(host, generation, digest, id, by, reason, now)
    }
    fn confirm_profile_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        self.inner()
            .confirm_profile_approval(host, generation, digest, id)
    }
    fn drop_profile_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        self.inner()
            .drop_profile_approval(host, generation, digest, id)
    }
    fn awaiting_approvals(&mut self) -> Result<Vec<ProfileRow>, StoreError> {
        self.inner().awaiting_approvals()
    }
    fn quota_used(&mut self, host: i64) -> Result<QuotaWindow, StoreError> {
        self.inner().quota_used(host)
    }
    fn charge_quota(
        &mut self,
        host: i64,
        now: i64,
        window: i64,
        limit: u64,
        adding: u64,
    ) -> Result<Result<QuotaWindow, QuotaWindow>, StoreError> {
        self.inner().charge_quota(host, now, window, limit, adding)
    }
    fn refund_quota(&mut self, host: i64, window_start: i64, bytes: u64) -> Result<(), StoreError> {
        self.inner().refund_quota(host, window_start, bytes)
    }
    fn profile(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
    ) -> Result<Option<ProfileRow>, StoreError> {
        let mode = self.profile_read;
        answer(mode, || self.inner().profile(host, generation, digest))
    }
    fn current_profiles(&mut self) -> Result<Vec<ProfileRow>, StoreError> {
        self.inner().current_profiles()
    }
    fn current_profile_of(&mut self, host: i64) -> Result<Option<ProfileRow>, StoreError> {
        self.inner().current_profile_of(host)
    }
    fn pending_profiles(&mut self) -> Result<Vec<ProfileRow>, StoreError> {
        self.inner().pending_profiles()
    }
    fn claim_console(
        &mut self,
        console: &str,
        instance: &str,
        stale_after: i64,
    ) -> Result<bool, StoreError> {
        self.inner().claim_console(console, instance, stale_after)
    }
    fn release_console(&mut self, console: &str, instance: &str) -> Result<(), StoreError> {
        self.inner().release_console(console, instance)
    }
    fn take_over_console(
        &mut self,
        console: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        self.inner().take_over_console(console, from, to)
    }
    fn reopen_superseded_approval(
        &mut self,
        host: i64,
        generation: u64,
        digest: &str,
    ) -> Result<bool, StoreError> {
        self.inner()
            .reopen_superseded_approval(host, generation, digest)
    }
    fn host_four_eyes(&mut self) -> Result<Option<FleetSetting>, StoreError> {
        self.inner().host_four_eyes()
    }
    fn set_host_four_eyes(
        &mut self,
        on: bool,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.inner().set_host_four_eyes(on, by, reason, now)
    }
    fn fleet_identity_fingerprint(&mut self) -> Result<Option<String>, StoreError> {
        self.inner().fleet_identity_fingerprint()
    }
    fn set_fleet_identity_fingerprint(
        &mut self,
        fingerprint: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.inner()
            .set_fleet_identity_fingerprint(fingerprint, now)
    }
    fn host_pins(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        self.inner().host_pins()
    }
    fn keep_host_pin(&mut self, host: &str, pinned: &str, now: i64) -> Result<(), StoreError> {
        self.inner().keep_host_pin(host, pinned, now)
    }
}
