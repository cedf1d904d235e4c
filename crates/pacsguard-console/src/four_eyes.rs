//! Four eyes means two people: who may confirm another approver's acceptance.
//!
//! An account id is not a person. An administrator who wants to pass four eyes alone
//! invites (or creates) a second account, keeps its enrolment link, enrols its second
//! factor and confirms their own request with it. So every account records who created
//! or invited it and when, and an account counts as still in its creator's hands for
//! [`FOUR_EYES_COOLING_PERIOD`]; so does whoever last changed its role (raising a
//! long-planted viewer to approver makes a second approver as surely as creating one).
//! The people behind an account are the account and, along the chain of creators and
//! role changes, each one whose link is younger than that period. Two
//! accounts are two people for four eyes only when those sets do not meet: an account
//! the asker invited last week cannot confirm, nor can one invited by an account the
//! asker invited, nor two fresh accounts of one administrator confirm each other.
//!
//! What this does not prove: an account created long ago by the same person. That is a
//! planned insider, visible on the accounts page and on the trail (each creation with
//! its creator, step-up and reason), which other administrators can see.

use crate::auth::{AuthError, Console, lock};

/// How long an account counts as in the hands of the person who created or invited it,
/// for four eyes. A week: longer than any session (12 h) an intruder could steal, so a
/// stolen administrator session cannot mint its own second approver, and long enough
/// that a planted account stands on the accounts page and the trail for days before it
/// can confirm anything; short enough that a new colleague can act as second approver
/// in their second week.
pub const FOUR_EYES_COOLING_PERIOD: i64 = 7 * 24 * 3600;

/// Most accounts followed along creators and role changes. A longer chain of accounts each created by the
/// previous within the cooling period is itself suspicious: refused (fail closed).
pub const MAX_INVITATION_CHAIN: usize = 32;

impl Console {
    /// The accounts whose holders control `account` now: itself and its recent creators;
    /// for the emergency account also whoever sealed its envelope, with their own
    /// controllers, however long ago (the envelope stays in the sealer's hands until it
    /// is opened, so no cooling period applies). `None` when a chain is longer than
    /// [`MAX_INVITATION_CHAIN`].
    fn controllers(&self, account: i64, now: i64) -> Result<Option<Vec<i64>>, AuthError> {
        let Some(mut chain) = self.creators(account, now)? else {
            return Ok(None);
        };
        if let Some(sealer) = self.sealer_of(account)? {
            let Some(theirs) = self.creators(sealer, now)? else {
                return Ok(None);
            };
            chain.extend(
                theirs
                    .into_iter()
                    .filter(|x| !chain.contains(x))
                    .collect::<Vec<_>>(),
            );
        }
        Ok(Some(chain))
    }

    /// The account that sealed the emergency envelope, when `account` is the emergency
    /// account and a seal names an account that exists.
    fn sealer_of(&self, account: i64) -> Result<Option<i64>, AuthError> {
        let db = lock(&self.db)?;
        let Some(emergency) = db.account_by_name(crate::breakglass::BREAK_GLASS_ACCOUNT)? else {
            return Ok(None);
        };
        if emergency.id != account {
            return Ok(None);
        }
        let Some(seal) = db.seal()? else {
            return Ok(None);
        };
        Ok(db.account_by_name(&seal.sealed_by)?.map(|a| a.id))
    }

    /// `account` and, following links younger than [`FOUR_EYES_COOLING_PERIOD`], who
    /// created or invited it and who last changed its role, and theirs in turn. A role
    /// raised is a second approver made as surely as an account created: a viewer
    /// account planted long ago and raised today is in the raiser's hands for the
    /// cooling period (review s7-r13c). `None` when the links reach more than
    /// [`MAX_INVITATION_CHAIN`] accounts.
    ///
    /// Every account followed must be as the trail recorded it: its origin and role
    /// changes (who, when) are in its record ([`crate::bound::account_digest`]), so a
    /// link deleted or back-dated with sqlite3 to make one person look like two is
    /// refused (`AuthError::Invalid`, with the account's alert), never followed as edited.
    fn creators(&self, account: i64, now: i64) -> Result<Option<Vec<i64>>, AuthError> {
        self.ensure_bound()?;
        let db = lock(&self.db)?;
        let fresh = |when: i64| now - when < FOUR_EYES_COOLING_PERIOD;
        let mut chain = vec![account];
        let mut next = 0;
        while let Some(&at) = chain.get(next) {
            next += 1;
            if !self.account_as_recorded(&db, at)? {
                return Err(AuthError::Invalid(format!(
                    "account {at}, on the chain of who created these accounts or changed their roles, is not as the audit trail recorded it (the store was edited; see the alert)"
                )));
            }
            let mut links: Vec<i64> = db
                .role_grants(at)?
                .into_iter()
                .filter(|&(_, when)| fresh(when))
                .map(|(by, _)| by)
                .collect();
            if let Some((by, when)) = db.origin(at)?
                && fresh(when)
            {
                links.push(by);
            }
            for by in links {
                if !chain.contains(&by) {
                    if chain.len() >= MAX_INVITATION_CHAIN {
                        return Ok(None);
                    }
                    chain.push(by);
                }
            }
        }
        Ok(Some(chain))
    }

    /// Whether the holders of `asker` and `confirmer` are two people for four eyes:
    /// `Ok(Err(why))` when they are not (or their chain cannot be followed); an error when
    /// the store cannot read it (review r31-console: a failed read was said as "unreadable"
    /// chains, a refusal with the store's error lost and nothing on the server's log).
    pub(crate) fn distinct_persons(
        &self,
        asker: i64,
        confirmer: i64,
    ) -> Result<Result<(), String>, AuthError> {
        if asker == confirmer {
            return Ok(Err("the second approver must be another person".into()));
        }
        let now = self.now();
        let chain = |account: i64| match self.controllers(account, now) {
            Ok(Some(chain)) => Ok(Ok(chain)),
            Err(AuthError::Invalid(why)) => Ok(Err(why)),
            Ok(None) => Ok(Err(format!(
                "the chain of accounts that created these accounts cannot be followed (longer than {MAX_INVITATION_CHAIN} within {} days)",
                FOUR_EYES_COOLING_PERIOD / 86_400
            ))),
            Err(e) => Err(e),
        };
        let a = match chain(asker)? {
            Ok(a) => a,
            Err(why) => return Ok(Err(why)),
        };
        let c = match chain(confirmer)? {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        if a.iter().any(|x| c.contains(x)) {
            return Ok(Err(format!(
                "the second approver must be another person: this account was created or invited less than {} days ago by the asker or by an account that also created the asker's",
                FOUR_EYES_COOLING_PERIOD / 86_400
            )));
        }
        Ok(Ok(()))
    }
}
