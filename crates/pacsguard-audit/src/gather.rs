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
//!
//! The index of each id's newest record is keyed by [`ID_HASH_BYTES`] of the id's BLAKE3
//! hash, not by the id (at a million ids the ids as strings were a third of `serve`'s
//! start-up peak), and the id is not stored: a hash found is confirmed against the id of
//! the record kept at its place, and a different id with the same hash (a collision) is
//! kept under its whole id beside it. Two ids are never taken for one. The records are
//! let go in place at the limit, without a second vector of them.

use std::collections::HashMap;

/// Bytes of an id's BLAKE3 hash that key the newest-per-id index: two different ids
/// alike in 128 bits are not found in practice (about 2^64 ids would be needed for an
/// even chance), and when they are, both are kept ([`IdIndex`]).
pub const ID_HASH_BYTES: usize = 16;

use crate::mac::RecordKey;

/// Records gathered at most: the console's bindings are a few per account, session and
/// request; past this the trail is damaged or attacked, and the gathering says so
/// ([`Gather::overflowed`]) instead of holding them all.
pub const MAX_GATHERED_RECORDS: usize = 1_000_000;

// The newest-per-id index keeps records' places as `u32`.
const _: () = assert!(MAX_GATHERED_RECORDS <= u32::MAX as usize);

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
    by_id: Option<IdIndex>,
    /// Records let go because a newer one of the same id was kept.
    superseded: u64,
    /// Set when the verification ends: records before this index are proven.
    proven: Option<u64>,
    /// Test-only: every id hashes alike, so each new id is a hash collision.
    #[cfg(test)]
    collide: bool,
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

    /// Test-only: every id hashes alike, so each new id past the first is a collision.
    #[cfg(test)]
    fn colliding(mut self) -> Gather {
        self.collide = true;
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

    /// At the limit: the older records of each id let go, the newest kept, in place (a
    /// second vector of a million records beside the first was the start's peak).
    fn compact(&mut self) {
        let Some(fields) = self.fields.clone() else {
            return;
        };
        let mut ids = IdIndex::with_capacity(self.found.len());
        #[cfg(test)]
        {
            ids.collide = self.collide;
        }
        let mut found = std::mem::take(&mut self.found);
        let mut kept = 0;
        for at in 0..found.len() {
            let Some(id) = id_of(&fields, &found[at].record) else {
                found.swap(kept, at);
                kept += 1;
                continue;
            };
            match ids.slot(&id, &fields, &found[..kept]) {
                Some(slot) => {
                    // The newer record takes the older one's place; the older is let go
                    // (it is now past what is kept, and truncated below or overwritten).
                    found.swap(slot, at);
                    self.superseded += 1;
                }
                None => {
                    found.swap(kept, at);
                    ids.insert(id, kept);
                    kept += 1;
                }
            }
        }
        found.truncate(kept);
        self.found = found;
        self.by_id = Some(ids);
    }

    /// Keeps `found`: in place of the older record of its id once the limit was reached,
    /// else appended if there is room.
    fn keep(&mut self, found: GatheredRecord) {
        if self.per_id && self.by_id.is_none() && self.found.len() >= self.limit {
            self.compact();
        }
        let id = match (&self.by_id, &self.fields) {
            (Some(_), Some(fields)) => id_of(fields, &found.record),
            _ => None,
        };
        if let (Some(ids), Some(fields), Some(id)) = (&self.by_id, &self.fields, &id)
            && let Some(slot) = ids.slot(id, fields, &self.found)
            && let Some(kept) = self.found.get_mut(slot)
        {
            *kept = found;
            self.superseded += 1;
            return;
        }
        if self.found.len() >= self.limit {
            self.overflowed = true;
            return;
        }
        if let (Some(ids), Some(id)) = (&mut self.by_id, id) {
            ids.insert(id, self.found.len());
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
        let record = match &self.fields {
            Some(fields) => {
                let Some(record) = only_fields(line, fields) else {
                    return;
                };
                if record.is_empty() {
                    // The needle was in a value, not a field's name.
                    return;
                }
                serde_json::Value::Object(record)
            }
            None => match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(record @ serde_json::Value::Object(_)) => record,
                _ => return,
            },
        };
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

/// The fields `fields` of the JSON object `line` (`None` when it is no JSON object): the
/// others are read past, never built (a whole record parsed for the few fields kept was
/// most of the gathering's CPU: 47 s of user time at 1,100,000 records in a debug build,
/// 34 s without). Read past, a value is still checked as a whole parse checks it
/// ([`Checked`]): a line a whole parse refuses gives nothing here either.
fn only_fields(
    line: &[u8],
    fields: &[String],
) -> Option<serde_json::Map<String, serde_json::Value>> {
    use serde::de::{DeserializeSeed, MapAccess, Visitor};

    struct Only<'a>(&'a [String]);

    impl<'de> Visitor<'de> for Only<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = serde_json::Map::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if self.0.iter().any(|f| f.as_str() == key) {
                    // A field given twice: the later one, as a whole parse takes it.
                    let value = map.next_value::<serde_json::Value>()?;
                    kept.insert(key.into_owned(), value);
                } else {
                    map.next_value::<Checked>()?;
                }
            }
            Ok(kept)
        }
    }

    impl<'de> DeserializeSeed<'de> for Only<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(line);
    let kept = Only(fields).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(kept)
}

/// A JSON value read past but checked as building a `serde_json::Value` checks it, without
/// building it: `serde::de::IgnoredAny` skipped numbers out of range, lone surrogates,
/// bytes that are no UTF-8 and nesting past serde_json's depth limit, all of which a whole
/// parse refuses (review s12-r13), so a line refused before was gathered.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        use serde::de::{MapAccess, SeqAccess, Visitor};

        struct Check;

        impl<'de> Visitor<'de> for Check {
            type Value = Checked;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(Checked)
            }
        }

        d.deserialize_any(Check)
    }
}

/// A kept record's id: each gathered field it holds, named, with its value up to the
/// first `:` (the whole value, as JSON, when not a string). The value's type is part of
/// the id and every part is length-prefixed (issue 13, session 13): as `field=value\n`,
/// the number `5` and the string `"5"` (or `"5:…"`) were one id, so a record naming a
/// binding by a number (which binds nothing) let the newest real record of that id go
/// at the limit; and a string holding `\nother_field=…` was the id of a record holding
/// both fields.
fn id_of(fields: &[String], record: &serde_json::Value) -> Option<String> {
    use std::fmt::Write as _;
    let mut id = String::new();
    for field in fields {
        let Some(value) = record.get(field) else {
            continue;
        };
        let (kind, value) = match value.as_str() {
            Some(text) => ('s', text.split(':').next().unwrap_or(text).to_string()),
            None => ('j', value.to_string()),
        };
        let _ = write!(id, "{}:{field}{kind}{}:{value}", field.len(), value.len());
    }
    (!id.is_empty()).then_some(id)
}

/// Where each id's newest record is among those kept, keyed by a hash of the id
/// ([`ID_HASH_BYTES`] of BLAKE3) instead of the id itself: at a million ids the ids as
/// strings were most of the start's peak memory. The id is not stored: a hash found is
/// confirmed against the id of the record kept there, and an id whose hash is held by a
/// different id (a collision) is kept under its whole id in `collided`, so two ids are
/// never taken for one.
#[derive(Debug, Default)]
struct IdIndex {
    by_hash: HashMap<[u8; ID_HASH_BYTES], u32>,
    collided: HashMap<String, u32>,
    #[cfg(test)]
    collide: bool,
}

impl IdIndex {
    fn with_capacity(ids: usize) -> IdIndex {
        IdIndex {
            by_hash: HashMap::with_capacity(ids),
            ..IdIndex::default()
        }
    }

    fn hash(&self, id: &str) -> [u8; ID_HASH_BYTES] {
        #[cfg(test)]
        if self.collide {
            return [0; ID_HASH_BYTES];
        }
        let mut hash = [0; ID_HASH_BYTES];
        hash.copy_from_slice(&blake3::hash(id.as_bytes()).as_bytes()[..ID_HASH_BYTES]);
        hash
    }

    /// Where the record of `id` is kept in `kept`, if one is.
    fn slot(&self, id: &str, fields: &[String], kept: &[GatheredRecord]) -> Option<usize> {
        let at = *self.by_hash.get(&self.hash(id))? as usize;
        let held = kept.get(at).and_then(|r| id_of(fields, &r.record));
        if held.as_deref() == Some(id) {
            return Some(at);
        }
        self.collided.get(id).map(|&at| at as usize)
    }

    /// `id` (not held yet) is kept at `at`.
    fn insert(&mut self, id: String, at: usize) {
        // The limit (at most MAX_GATHERED_RECORDS) keeps `at` far below u32::MAX.
        let at = u32::try_from(at).unwrap_or(u32::MAX);
        let hash = self.hash(&id);
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(at);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.insert(id, at);
            }
        }
    }

    /// Ids kept under their whole id because their hash was another's.
    #[cfg(test)]
    fn collisions(&self) -> usize {
        self.collided.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds session records `values` (in order) to a newest-per-id gathering of `limit`.
    fn gathered(values: &[&str], limit: usize, collide: bool) -> Gather {
        let mut gather = Gather::new(&["\"session_digest\""])
            .newest_per_id()
            .with_limit(limit);
        if collide {
            gather = gather.colliding();
        }
        gather.start(u64::MAX);
        for (index, value) in values.iter().enumerate() {
            let line = serde_json::json!({"seq": index, "session_digest": value}).to_string();
            gather.line(index as u64, 0, line.as_bytes(), true);
        }
        gather.finish(
            values.len() as u64,
            values.len() as u64,
            values.len() as u64,
        );
        gather
    }

    fn kept(gather: &Gather) -> Vec<(u64, String)> {
        gather
            .records()
            .iter()
            .map(|r| {
                (
                    r.index,
                    r.record["session_digest"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    }

    const VALUES: [&str; 8] = [
        "a", "b", "c", "a:closed", "c:closed", "b:closed", "a:again", "d",
    ];

    /// Issue 13, session 12: the index is keyed by a 128-bit hash of the id, not the id.
    /// Forced through the test-only hook, every id's hash is alike: each is then kept
    /// under its whole id, and the newest of each id is still the one kept, never
    /// another id's record in its place. The same without collisions.
    #[test]
    fn a_hash_collision_between_two_ids_keeps_both() {
        let expected = vec![
            (4, "c:closed".to_string()),
            (5, "b:closed".to_string()),
            (6, "a:again".to_string()),
        ];
        for collide in [false, true] {
            let gather = gathered(&VALUES, 3, collide);
            assert_eq!(kept(&gather), expected, "collide: {collide}");
            assert_eq!(gather.superseded(), 4, "collide: {collide}");
            // "d" is a fourth id: past the limit, said.
            assert!(gather.overflowed(), "collide: {collide}");
        }
        // What the hook forces: b and c each collided with a.
        let mut forced = Gather::new(&["\"session_digest\""])
            .newest_per_id()
            .with_limit(3)
            .colliding();
        forced.start(u64::MAX);
        for (index, value) in VALUES[..4].iter().enumerate() {
            let line = serde_json::json!({"seq": index, "session_digest": value}).to_string();
            forced.line(index as u64, 0, line.as_bytes(), true);
        }
        assert_eq!(forced.by_id.as_ref().map(IdIndex::collisions), Some(2));
    }

    /// Issue 13, session 13: a value's type is part of its id. A record naming a
    /// binding by the number 5 and one naming it by the string "5:…" are two ids: the
    /// number (which binds nothing) does not take the string's place at the limit. Nor
    /// does a string that imitates another field.
    #[test]
    fn a_number_and_a_string_of_the_same_digits_are_two_ids() {
        let values = [
            serde_json::json!("5:real"),
            serde_json::json!(5),
            serde_json::json!("5"),
            serde_json::json!("6:other"),
        ];
        let mut gather = Gather::new(&["\"session_digest\""])
            .newest_per_id()
            .with_limit(2);
        gather.start(u64::MAX);
        for (index, value) in values.iter().enumerate() {
            let line = serde_json::json!({"seq": index, "session_digest": value}).to_string();
            gather.line(index as u64, 0, line.as_bytes(), true);
        }
        gather.finish(4, 4, 4);
        let kept: Vec<&serde_json::Value> = gather
            .records()
            .iter()
            .map(|r| &r.record["session_digest"])
            .collect();
        // "5" replaced "5:real" (the same id, newer); the number 5 is an id of its own,
        // and "6:other" is past the limit.
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.contains(&&serde_json::json!("5")), "{kept:?}");
        assert!(kept.contains(&&serde_json::json!(5)), "{kept:?}");
        assert_eq!(gather.superseded(), 1);
        assert!(gather.overflowed());

        let fields = vec!["a".to_string(), "b".to_string()];
        let both = serde_json::json!({"a": "1", "b": "2"});
        let imitating = serde_json::json!({"a": "1\nb=2"});
        assert_ne!(id_of(&fields, &both), id_of(&fields, &imitating));
        assert_ne!(
            id_of(&fields, &serde_json::json!({"a": 5})),
            id_of(&fields, &serde_json::json!({"a": "5"}))
        );
        assert_eq!(
            id_of(&fields, &serde_json::json!({"a": "5:x"})),
            id_of(&fields, &serde_json::json!({"a": "5:y"}))
        );
    }

    /// Only the fields asked for are built, each value whole; a line that is no JSON
    /// object, or has anything after it, gives nothing (as a whole parse refused it).
    #[test]
    fn only_the_fields_asked_for_are_read_from_a_line() {
        let fields = ["session_digest".to_string(), "n".to_string()];
        let line = br#"{"seq":1,"n":0,"detail":{"deep":[1,2,{"x":"y"}]},"session_digest":"d:closed","n":{"a":[1]}}"#;
        let kept = only_fields(line, &fields).map(serde_json::Value::Object);
        assert_eq!(
            kept,
            Some(serde_json::json!({"session_digest": "d:closed", "n": {"a": [1]}}))
        );
        assert_eq!(
            only_fields(br#"{"seq":1}"#, &fields).map(|m| m.len()),
            Some(0)
        );
        for bad in [
            &br#"[1,2]"#[..],
            br#"{"seq":1} x"#,
            br#"{"seq":"#,
            b"",
            br#""text""#,
        ] {
            assert!(
                only_fields(bad, &fields).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Review s12-r13: a line that a whole parse refuses gives nothing, also when what
    /// makes it no JSON is in a field that is not kept (read past). Reading past with
    /// `IgnoredAny` took numbers out of range, lone surrogates, bytes that are no UTF-8
    /// and nesting past serde_json's depth limit, all of which the whole parse refused:
    /// a hostile line was gathered where before it was not.
    #[test]
    fn a_line_a_whole_parse_refuses_is_refused_when_only_fields_are_read() {
        fn whole(
            line: &[u8],
            fields: &[String],
        ) -> Option<serde_json::Map<String, serde_json::Value>> {
            let Ok(serde_json::Value::Object(mut record)) =
                serde_json::from_slice::<serde_json::Value>(line)
            else {
                return None;
            };
            record.retain(|key, _| fields.iter().any(|f| f == key));
            Some(record)
        }
        let fields = ["session_digest".to_string(), "account_digest".to_string()];
        let mut lines: Vec<Vec<u8>> = [
            &br#"{"session_digest":"a","x":1e400}"#[..],
            br#"{"session_digest":"a","x":-1e400}"#,
            br#"{"session_digest":"a","x":{"y":[1e999]}}"#,
            br#"{"session_digest":"a","x":"\ud800"}"#,
            br#"{"session_digest":"a","x":"\udc00\ud800"}"#,
            br#"{"session_digest":"a","x":"\ud800\u0041"}"#,
            br#"{"session_digest":"a","x":{"\udc00":1}}"#,
            b"{\"session_digest\":\"a\",\"x\":\"\xff\xfe\"}",
            b"{\"session_digest\":\"a\",\"x\":[\"\xc0\x80\"]}",
            b"{\"session_digest\":\"a\",\"x\xff\":\"1\"}",
            // Alike before and after: kept, or refused by both.
            br#"{"session_digest":"a","session_digest":"b"}"#,
            br#"{"session_digest":"a","x":{"session_digest":"z"}}"#,
            br#"{"session_digest":null,"account_digest":5}"#,
            br#"{"session_digest":{"a":"b"},"x":[true,false,null,-0.5e3]}"#,
            br#"{"session\u005fdigest":"\u00e9\ud83d\ude00"}"#,
            br#"{"session_digest":"a","x":123456789012345678901234567890}"#,
            br#"{"session_digest":"a","x":"\q"}"#,
            br#"{"session_digest":"a","x":01}"#,
            br#"{"session_digest":"a","x":[1,]}"#,
            br#"{"session_digest":"a","x":tru}"#,
            br#"{"session_digest":"a"}{}"#,
            br#"{"session_digest":"a"}  "#,
        ]
        .iter()
        .map(|l| l.to_vec())
        .collect();
        for depth in [127, 128, 129, 5000] {
            let mut deep = br#"{"session_digest":"a","x":"#.to_vec();
            deep.extend(std::iter::repeat_n(b'[', depth));
            deep.extend(std::iter::repeat_n(b']', depth));
            deep.push(b'}');
            lines.push(deep);
        }
        for line in &lines {
            assert_eq!(
                only_fields(line, &fields),
                whole(line, &fields),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Review s12-r13: the index keyed by hashes (with and without forced collisions)
    /// keeps exactly what the index keyed by whole ids kept, on random trails mixing ids
    /// that are strings, `<id>:<digest>`, numbers, null, objects, records naming two ids
    /// and records naming none, at limits reached early and late.
    #[test]
    fn the_hashed_index_keeps_what_the_index_of_whole_ids_kept() {
        /// The gathering before the hashed index: ids whole in a map, a second vector.
        fn by_whole_ids(
            fields: &[String],
            lines: &[String],
            limit: usize,
        ) -> (Vec<(u64, serde_json::Value)>, u64, bool) {
            let mut found: Vec<(u64, serde_json::Value)> = Vec::new();
            let mut by_id: Option<HashMap<String, usize>> = None;
            let (mut superseded, mut overflowed) = (0, false);
            for (index, line) in lines.iter().enumerate() {
                let Some(record) = only_fields(line.as_bytes(), fields) else {
                    continue;
                };
                if record.is_empty() {
                    continue;
                }
                let record = serde_json::Value::Object(record);
                if by_id.is_none() && found.len() >= limit {
                    let mut map = HashMap::new();
                    let mut kept: Vec<(u64, serde_json::Value)> = Vec::new();
                    for f in std::mem::take(&mut found) {
                        match id_of(fields, &f.1) {
                            Some(id) => match map.get(&id) {
                                Some(&at) => {
                                    kept[at] = f;
                                    superseded += 1;
                                }
                                None => {
                                    map.insert(id, kept.len());
                                    kept.push(f);
                                }
                            },
                            None => kept.push(f),
                        }
                    }
                    found = kept;
                    by_id = Some(map);
                }
                let id = by_id.as_ref().and_then(|_| id_of(fields, &record));
                if let (Some(map), Some(id)) = (&by_id, &id)
                    && let Some(&at) = map.get(id)
                {
                    found[at] = (index as u64, record);
                    superseded += 1;
                    continue;
                }
                if found.len() >= limit {
                    overflowed = true;
                    continue;
                }
                if let (Some(map), Some(id)) = (&mut by_id, id) {
                    map.insert(id, found.len());
                }
                found.push((index as u64, record));
            }
            found.sort_by_key(|r| r.0);
            (found, superseded, overflowed)
        }

        let values = [
            r#""a""#,
            r#""a:1""#,
            r#""a:closed""#,
            r#""b""#,
            r#""b:x""#,
            r#""c""#,
            r#""5""#,
            "5",
            "null",
            r#"{"k":"a"}"#,
            r#"["a"]"#,
            r#""""#,
            r#"":x""#,
            r#""\u0061""#,
        ];
        let fields = ["account_digest".to_string(), "session_digest".to_string()];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for round in 0..300 {
            let lines: Vec<String> = (0..1 + next(40))
                .map(|seq| match next(6) {
                    0 => format!(r#"{{"seq":{seq},"other":1}}"#),
                    1 => format!(
                        r#"{{"seq":{seq},"account_digest":{},"session_digest":{}}}"#,
                        values[next(values.len())],
                        values[next(values.len())]
                    ),
                    2 => format!(
                        r#"{{"seq":{seq},"account_digest":{}}}"#,
                        values[next(values.len())]
                    ),
                    _ => format!(
                        r#"{{"seq":{seq},"session_digest":{}}}"#,
                        values[next(values.len())]
                    ),
                })
                .collect();
            let limit = 1 + next(12);
            let expected = by_whole_ids(&fields, &lines, limit);
            for collide in [false, true] {
                let mut gather = Gather::new(&["\"account_digest\"", "\"session_digest\""])
                    .newest_per_id()
                    .with_limit(limit);
                if collide {
                    gather = gather.colliding();
                }
                gather.start(u64::MAX);
                for (index, line) in lines.iter().enumerate() {
                    gather.line(index as u64, 0, line.as_bytes(), true);
                }
                let n = lines.len() as u64;
                gather.finish(n, n, n);
                let got: Vec<(u64, serde_json::Value)> = gather
                    .records()
                    .iter()
                    .map(|r| (r.index, r.record.clone()))
                    .collect();
                let context = format!("round {round} limit {limit} collide {collide}: {lines:#?}");
                assert_eq!(got, expected.0, "{context}");
                assert_eq!(gather.superseded(), expected.1, "{context}");
                assert_eq!(gather.overflowed(), expected.2, "{context}");
            }
        }
    }

    /// Compaction in place keeps the order and lets go exactly the older records, with
    /// ids interleaved so that the places it swaps through matter.
    #[test]
    fn compaction_in_place_keeps_the_newest_of_each_id_in_log_order() {
        let values = ["a", "a:1", "b", "a:2", "c", "b:1"];
        for collide in [false, true] {
            let gather = gathered(&values, 5, collide);
            assert!(!gather.overflowed());
            assert_eq!(
                kept(&gather),
                vec![
                    (3, "a:2".to_string()),
                    (4, "c".to_string()),
                    (5, "b:1".to_string()),
                ],
                "collide: {collide}"
            );
            assert_eq!(gather.superseded(), 3);
        }
    }
}
