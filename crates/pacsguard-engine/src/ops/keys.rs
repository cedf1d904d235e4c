//! `pacsguard key protect` (and `init --passphrase`): profiles signed from now on by a
//! key of their own, sealed with a passphrase (`keyfile.rs` says why and how). The home
//! key (`signing.key`) keeps signing the trail, unattended. `pacsguard key passphrase`:
//! the same key sealed again under a new passphrase.

use ed25519_dalek::SigningKey;
use pacsguard_events::{Action, Event, Outcome};
use serde::Serialize;
use zeroize::Zeroizing;

use super::Session;
use crate::durable::write_atomically;
use crate::error::EngineError;
use crate::keyfile::{self, Passphrase};

#[derive(Debug, Serialize)]
pub struct ProtectReport {
    /// The new profile-signing key's fingerprint.
    pub key_fingerprint: String,
    /// The home key's, which keeps signing the trail.
    pub trail_key_fingerprint: String,
    /// The generation of the stored profile, now signed by the new key (0: none yet).
    pub generation: u64,
    /// Kept generations signed again by the new key.
    pub generations_resigned: usize,
}

/// What the old passphrase still opens once it is changed: said wherever the change is.
pub const OLD_SEALING_WORDS: &str = "the old passphrase opens this file no more, but any copy of the old file (a backup) still opens with it and gives the same key: remove those too";

/// What `key passphrase` did.
#[derive(Debug, Serialize)]
pub struct PassphraseReport {
    /// The profile-signing key's fingerprint: the same key as before.
    pub key_fingerprint: String,
}

impl Session {
    /// Puts on the trail, flushed, that a change of the profile-signing key's file
    /// begins (`detail`, about `objects`), before any file changes: a crash or a full
    /// disk after it never leaves a change the trail does not show (review rv38-lead).
    fn key_change_started(
        &mut self,
        detail: String,
        objects: Vec<std::path::PathBuf>,
    ) -> Result<(), EngineError> {
        self.emit(
            Event::new(
                self.actor.clone(),
                Action::Profile,
                Outcome::Started,
                detail,
            )
            .with_objects(objects),
        )?;
        Ok(self.bus.flush()?)
    }

    /// Seals the profile-signing key, unlocked with its current passphrase
    /// ([`Session::use_profile_key`]), under `passphrase` instead: the key, and so every
    /// signature it made, stay as they are; the file is replaced whole (a crash leaves the
    /// old sealing or the new, never neither). Refused, nothing changed, for a home whose
    /// key is not protected or not unlocked, and for a new passphrase too weak.
    pub fn change_profile_key_passphrase(
        &mut self,
        passphrase: &Passphrase,
    ) -> Result<PassphraseReport, EngineError> {
        self.home.require_protected_profile_key()?;
        passphrase.check_new()?;
        let key = self.profile_signer()?;
        let objects = vec![self.home.profile_key_path()];
        let fingerprint = self.profile_fingerprint();
        self.recorded(Action::Profile, objects.clone(), |s| {
            let sealed = keyfile::seal(&key, passphrase).map_err(|reason| EngineError::Key {
                path: s.home.profile_key_path(),
                reason,
            })?;
            s.key_change_started(
                format!("changing the passphrase that seals the profile-signing key {fingerprint}"),
                objects.clone(),
            )?;
            write_atomically(&s.home.profile_key_path(), sealed.as_bytes(), 0o600)?;
            s.finish(
                Event::new(
                    s.actor.clone(),
                    Action::Profile,
                    Outcome::Success,
                    format!(
                        "the passphrase that seals the profile-signing key {fingerprint} was changed (Argon2id m={} KiB t={} p={}, ChaCha20-Poly1305): the key, and everything it signed, are as they were; {}",
                        keyfile::KDF_M_COST_KIB,
                        keyfile::KDF_T_COST,
                        keyfile::KDF_P_COST,
                        OLD_SEALING_WORDS
                    ),
                )
                .with_objects(objects),
            )
            .map_err(|e| {
                // The file is sealed under the new passphrase already: whoever reads
                // this error must not throw the new one away.
                EngineError::Usage(format!(
                    "{} is sealed under the new passphrase already (keep it), but its record could not be finished: {e}",
                    s.home.profile_key_path().display()
                ))
            })?;
            Ok(PassphraseReport {
                key_fingerprint: fingerprint,
            })
        })
    }

    /// Makes a profile-signing key sealed under `passphrase` and signs the stored
    /// profile and the kept generations with it. Refused for a home that has one.
    pub fn protect_profile_key(
        &mut self,
        passphrase: &Passphrase,
    ) -> Result<ProtectReport, EngineError> {
        if self.home.is_profile_key_protected() {
            return Err(EngineError::Usage(format!(
                "{} exists: this home's profile-signing key is already protected; nothing was changed",
                self.home.profile_key_path().display()
            )));
        }
        passphrase.check_new()?;
        let objects = vec![
            self.home.profile_key_path(),
            self.home.profile_public_key_path(),
        ];
        self.recorded(Action::Profile, objects, |s| s.protect_inner(passphrase))
    }

    /// Finishes a `key protect` interrupted (a crash, a kill, a power cut) after it
    /// wrote `profile.key` and `profile.pub` but before everything was signed again by
    /// the new key: every command then refused the store, still signed by the home key.
    /// Needs the new key unlocked (its passphrase: whoever finishes is whoever could
    /// sign anyway), and the stored profile verified by either key. Refused, nothing
    /// changed, when nothing is left to sign again.
    pub fn finish_interrupted_protect(&mut self) -> Result<ProtectReport, EngineError> {
        let key = self.profile_signer()?;
        let home_public = self.key.verifying_key();
        let (baseline, store_left) = match self.store.load(&self.profile_public) {
            Ok(loaded) => (loaded, false),
            Err(first) => match self.store.load(&home_public) {
                Ok(loaded) => (loaded, true),
                Err(_) => return Err(first.into()),
            },
        };
        let kept = self.kept_signed_by(&home_public)?;
        if !store_left && kept.is_empty() {
            return Err(EngineError::Usage(format!(
                "{} exists: this home's profile-signing key is already protected; nothing was changed",
                self.home.profile_key_path().display()
            )));
        }
        let objects = vec![
            self.home.profile_key_path(),
            self.home.profile_public_key_path(),
        ];
        self.recorded(Action::Profile, objects.clone(), |s| {
            let fingerprint = s.profile_fingerprint();
            s.key_change_started(
                format!(
                    "finishing an interrupted protection of the profile-signing key: signing again by {fingerprint} what the home key still signs"
                ),
                objects.clone(),
            )?;
            let generation = match &baseline {
                Some((baseline, _)) if store_left => {
                    s.store.save(baseline, &[], &key, None)?;
                    baseline.generation
                }
                Some((baseline, _)) => baseline.generation,
                None => 0,
            };
            let resigned = s.resign_generations(kept, &key)?;
            s.finish(
                Event::new(
                    s.actor.clone(),
                    Action::Profile,
                    Outcome::Success,
                    format!(
                        "the profile-signing key is {fingerprint}, protected by a passphrase: an interrupted protection finished; baseline generation {generation}{} and {resigned} kept generation(s) signed by it",
                        if store_left { "" } else { " (already)" }
                    ),
                )
                .with_objects(objects)
                .with_generation(generation),
            )?;
            Ok(ProtectReport {
                key_fingerprint: fingerprint,
                trail_key_fingerprint: pacsguard_store::fingerprint(&s.key.verifying_key()),
                generation,
                generations_resigned: resigned,
            })
        })
    }

    fn protect_inner(&mut self, passphrase: &Passphrase) -> Result<ProtectReport, EngineError> {
        // Everything signed by the home key is verified before it is signed again: a
        // tampered profile is refused here, not laundered under the new key.
        let baseline = self.load_baseline()?;
        let kept = self.kept_for_resigning()?;
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice())
            .map_err(|e| EngineError::io(self.home.profile_key_path(), e))?;
        let key = SigningKey::from_bytes(&seed);
        let sealed = keyfile::seal(&key, passphrase).map_err(|reason| EngineError::Key {
            path: self.home.profile_key_path(),
            reason,
        })?;
        let fingerprint = pacsguard_store::fingerprint(&key.verifying_key());
        self.key_change_started(
            format!(
                "protecting the profile-signing key with a passphrase: new key {fingerprint}; the trail stays signed by the home key {}",
                pacsguard_store::fingerprint(&self.key.verifying_key())
            ),
            vec![self.home.profile_key_path()],
        )?;
        // The public half first: `profile.key` standing is what marks the home protected.
        let public = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
        write_atomically(
            &self.home.profile_public_key_path(),
            public.as_bytes(),
            0o644,
        )?;
        write_atomically(&self.home.profile_key_path(), sealed.as_bytes(), 0o600)?;
        let generation = match &baseline {
            Some((baseline, _)) => {
                self.store.save(baseline, &[], &key, None)?;
                baseline.generation
            }
            None => 0,
        };
        let resigned = self.resign_generations(kept, &key)?;
        self.profile_public = key.verifying_key();
        self.profile_key = Some(key);
        self.finish(
            Event::new(
                self.actor.clone(),
                Action::Profile,
                Outcome::Success,
                format!(
                    "the profile-signing key is {fingerprint}, protected by a passphrase (Argon2id m={} KiB t={} p={}, ChaCha20-Poly1305); baseline generation {generation} and {resigned} kept generation(s) signed by it",
                    keyfile::KDF_M_COST_KIB,
                    keyfile::KDF_T_COST,
                    keyfile::KDF_P_COST
                ),
            )
            .with_objects(vec![
                self.home.profile_key_path(),
                self.home.profile_public_key_path(),
            ])
            .with_generation(generation),
        )?;
        Ok(ProtectReport {
            key_fingerprint: fingerprint,
            trail_key_fingerprint: pacsguard_store::fingerprint(&self.key.verifying_key()),
            generation,
            generations_resigned: resigned,
        })
    }
}
