//! Records handed back by a whole verification as it reads them, each said proven or not.
//!
//! A reader that trusts what the trail says (the console binds its accounts, sessions and
//! waiting requests to digests recorded on it) must take only records the verification
//! proved, and from the very bytes it proved: a second read of the log after verifying it
//! would read whatever was written in between. So the verification's own pass
//! ([`crate::verify_gathering`], [`crate::Follower::start_gathering`]) keeps the records
//! whose line holds one of the reader's needles, and after it says which are proven:
//!
//! * the first `S` records, where `S` is the largest size at which a signed checkpoint's
//!   root is reproduced by the log (every leaf under a reproduced root is as signed);
//! * when that is the newest checkpoint, the records after it, in order, as long as each
//!   carries a valid MAC of this home and its own position as `seq` (written by
//!   PacsGuard, not yet signed). The first that does not ends what is proven.
//!
//! Everything after is unproven, even a record that looks well formed: its place in the
//! tree is no longer vouched for.
//!
//! At [`MAX_GATHERED_RECORDS`] a gathering made with [`Gather::newest_per_id`] keeps the
//! newest record of each id (a field's value up to its first `:`, as the console writes
//! `<id>:<digest>`, `<digest>:closed`) and lets the older ones of the same id go
//! ([`Gather::superseded`] counts them): what a reader of bindings needs is each one's
//! newest record, and dropping the newest (as the limit did before) left the state of an
//! account, session or request as an older record said. Only more distinct ids than
//! the limit overflow. A newest record that is unproven displaces a proven older one:
//! that id then binds nothing (fail closed), and the unproven record is named.

use std::collections::HashMap;

use crate::mac::RecordKey;

/// Records gathered at most: the console's bindings are a few per account, session and
/// request; past this the trail is damaged or attacked, and the gathering says so
/// ([`Gather::overflowed`]) instead of holding them all.
pub const MAX_GATHERED_RECORDS: usize = 1_000_000;

/// One record a verification gathered.
#[derive(Clone, Debug)]
pub struct GatheredRecord {
    /// Its position in the log (0-based), which is also its `seq` when intact.
    pub index: u64,
    /// The byte its line starts at.
    pub offset: u64,
    pub record: serde_json::Value,
    /// Whether the verification proved it (see the module).
    pub proven: bool,
}

impl GatheredRecord {
    /// Where the record is, as `audit verify` names a record's position.
    pub fn position(&self) -> String {
        format!("record {} (byte {})", self.index, self.offset)
    }
}

/// What to gather, and what was gathered. See the module.
#[derive(Debug, Default)]
pub struct Gather {
    needles: Vec<Vec<u8>>,
    /// When every needle is a quoted field name: those fields, the only ones kept of a
    /// record gathered (a whole parsed record costs ~3 KB of memory; a trail's sign-ins
    /// alone bring hundreds of thousands of session records to a start).
    fields: Option<Vec<String>>,
    record_key: Option<RecordKey>,
    /// The newest checkpoint's size: from here on records are proven by their MAC.
    mac_from: u64,
    /// The first record at or after `mac_from` not proven by its MAC.
    first_unsealed: Option<u64>,
    found: Vec<GatheredRecord>,
    overflowed: bool,
    /// [`MAX_GATHERED_RECORDS`] unless a test sets less.
    limit: usize,
    /// Whether the limit keeps the newest record per id ([`Gather::newest_per_id`]).
    per_id: bool,
    /// Once the limit was reached: where each id's newest record is in `found`.
    by_id: Option<HashMap<String, usize>>,
    /// Records let go because a newer one of the same id was kept.
    superseded: u64,
    /// Set when the verification ends: records before this index are proven.
    proven: Option<u64>,
}

impl Gather {
    /// Gathers the records whose line holds one of `needles` (for a field, its quoted
    /// name: `"\"account_digest\""`; when every needle is one, only those fields of a
    /// record are kept). Without a record key ([`Gather::with_record_key`])
    /// no record after the newest checkpoint is proven.
    pub fn new(needles: &[&str]) -> Gather {
        let fields = needles
            .iter()
            .map(|n| {
                n.strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .filter(|n| !n.is_empty() && !n.contains(['"', '\\']))
                    .map(str::to_string)
            })
            .collect::<Option<Vec<_>>>();
        Gather {
            needles: needles.iter().map(|n| n.as_bytes().to_vec()).collect(),
            fields,
            limit: MAX_GATHERED_RECORDS,
            ..Gather::default()
        }
    }

    /// At the limit, keeps the newest record of each id instead of dropping the newest
    /// ones (see the module). Only when every needle is a quoted field name.
    pub fn newest_per_id(mut self) -> Gather {
        self.per_id = self.fields.is_some();
        self
    }

    /// Keeps at most `limit` records (below [`MAX_GATHERED_RECORDS`]; never above it).
    pub fn with_limit(mut self, limit: usize) -> Gather {
        self.limit = limit.min(MAX_GATHERED_RECORDS);
        self
    }

    /// The home's record MAC key: records after the newest checkpoint carrying a valid
    /// MAC are proven.
    pub fn set_record_key(&mut self, key: RecordKey) {
        self.record_key = Some(key);
    }

    /// Called by the verification before it reads the log.
    pub(crate) fn start(&mut self, newest_checkpoint: u64) {
        self.mac_from = newest_checkpoint;
        self.first_unsealed = None;
        self.found.clear();
        self.overflowed = false;
        self.proven = None;
        self.by_id = None;
        self.superseded = 0;
    }

    /// A kept record's id: each gathered field it holds, named, with its value up to the
    /// first `:` (the whole value when not a string).
    fn id_of(&self, record: &serde_json::Value) -> Option<String> {
        let fields = self.fields.as_ref()?;
        let mut id = String::new();
        for field in fields {
            let Some(value) = record.get(field) else {
                continue;
            };
            let value = match value.as_str() {
                Some(text) => text.split(':').next().unwrap_or(text).to_string(),
                None => value.to_string(),
            };
            id.push_str(field);
            id.push('=');
            id.push_str(&value);
            id.push('\n');
        }
        (!id.is_empty()).then_some(id)
    }

    /// At the limit: the older records of each id let go, the newest kept.
    fn compact(&mut self) {
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut kept: Vec<GatheredRecord> = Vec::with_capacity(self.found.len());
        for found in std::mem::take(&mut self.found) {
            match self.id_of(&found.record) {
                Some(id) => match by_id.get(&id) {
                    Some(&at) => {
                        kept[at] = found;
                        self.superseded += 1;
                    }
                    None => {
                        by_id.insert(id, kept.len());
                        kept.push(found);
                    }
                },
                None => kept.push(found),
            }
        }
        self.found = kept;
        self.by_id = Some(by_id);
    }

    /// Keeps `found`: in place of the older record of its id once the limit was reached,
    /// else appended if there is room.
    fn keep(&mut self, found: GatheredRecord) {
        if self.per_id && self.by_id.is_none() && self.found.len() >= self.limit {
            self.compact();
        }
        let id = self.by_id.as_ref().and_then(|_| self.id_of(&found.record));
        if let (Some(by_id), Some(id)) = (&mut self.by_id, &id)
            && let Some(&at) = by_id.get(id)
            && let Some(slot) = self.found.get_mut(at)
        {
            *slot = found;
            self.superseded += 1;
            return;
        }
        if self.found.len() >= self.limit {
            self.overflowed = true;
            return;
        }
        if let (Some(by_id), Some(id)) = (&mut self.by_id, id) {
            by_id.insert(id, self.found.len());
        }
        self.found.push(found);
    }

    /// One complete record line (without its newline) at `index`; `seq_ok`: it parsed and
    /// its `seq` is `index`.
    pub(crate) fn line(&mut self, index: u64, offset: u64, line: &[u8], seq_ok: bool) {
        if index >= self.mac_from
            && self.first_unsealed.is_none()
            && !(seq_ok && self.record_key.as_ref().is_some_and(|k| k.check(line)))
        {
            self.first_unsealed = Some(index);
        }
        if !self
            .needles
            .iter()
            .any(|n| memchr::memmem::find(line, n).is_some())
        {
            return;
        }
        let Ok(serde_json::Value::Object(mut record)) =
            serde_json::from_slice::<serde_json::Value>(line)
        else {
            return;
        };
        if let Some(fields) = &self.fields {
            record.retain(|key, _| fields.iter().any(|f| f == key));
            if record.is_empty() {
                // The needle was in a value, not a field's name.
                return;
            }
        }
        let record = serde_json::Value::Object(record);
        self.keep(GatheredRecord {
            index,
            offset,
            record,
            proven: false,
        });
    }

    /// A line that is no record (longer than the limit): never proven, nor what follows
    /// it after the newest checkpoint.
    pub(crate) fn damaged(&mut self, index: u64) {
        if index >= self.mac_from && self.first_unsealed.is_none() {
            self.first_unsealed = Some(index);
        }
    }

    /// Called by the verification when it ends: `reproduced` is the largest size at which
    /// a signed root was reproduced, `newest` the newest checkpoint's size, `records` the
    /// log's complete records.
    pub(crate) fn finish(&mut self, reproduced: u64, newest: u64, records: u64) {
        let proven = if reproduced >= newest {
            self.first_unsealed.unwrap_or(records).max(newest)
        } else {
            reproduced
        };
        let proven = proven.min(records);
        // Newer records took older ones' places: back in log order.
        if self.superseded > 0 {
            self.found.sort_by_key(|r| r.index);
        }
        self.by_id = None;
        for record in &mut self.found {
            record.proven = record.index < proven;
        }
        self.proven = Some(proven);
    }

    /// Records before this index are proven (`None` before a verification ended).
    pub fn proven_records(&self) -> Option<u64> {
        self.proven
    }

    /// Records let go at the limit because a newer record of the same id was kept
    /// ([`Gather::newest_per_id`]).
    pub fn superseded(&self) -> u64 {
        self.superseded
    }

    /// Whether more records held a needle than the limit ([`MAX_GATHERED_RECORDS`]) (with
    /// [`Gather::newest_per_id`]: more distinct ids); those past it were not kept.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The records gathered, in log order.
    pub fn records(&self) -> &[GatheredRecord] {
        &self.found
    }

    pub fn into_records(self) -> Vec<GatheredRecord> {
        self.found
    }
}
