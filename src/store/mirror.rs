//! A hot standby's copy of another node's calls (sans-IO): fed from a full read of the node's
//! index and from its change stream, newest generation wins, and a delete removes a call only
//! when it is at least as new as the copy.

use std::collections::HashMap;
use std::fmt;

use super::record::CallRecord;

/// A Redis stream entry id, `MS-SEQ`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct StreamId(pub u64, pub u64);

impl StreamId {
    /// Parses `MS-SEQ` (or `MS`); `None` for anything else.
    pub fn parse(s: &str) -> Option<StreamId> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// What one change stream entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The call was written at this generation (its record is read separately).
    Write {
        call_id: String,
        generation: u64,
    },
    Delete {
        call_id: String,
        generation: u64,
    },
}

impl Change {
    /// From an entry's `op`, `id` and `gen` fields; `None` for an entry that is not one.
    pub fn from_fields(op: &str, call_id: &str, generation: &str) -> Option<Change> {
        let generation = generation.parse().ok()?;
        let call_id = call_id.to_string();
        match op {
            "w" => Some(Change::Write {
                call_id,
                generation,
            }),
            "d" => Some(Change::Delete {
                call_id,
                generation,
            }),
            _ => None,
        }
    }
}

/// The followed node's calls.
#[derive(Debug, Default)]
pub struct Mirror {
    calls: HashMap<String, CallRecord>,
    /// The last stream entry taken in; `None` before the first full read.
    pub last: Option<StreamId>,
}

impl Mirror {
    /// A record read from Redis: kept unless the copy is newer.
    pub fn put(&mut self, rec: CallRecord) {
        match self.calls.get(&rec.call_id) {
            Some(have) if have.generation >= rec.generation => {}
            _ => {
                self.calls.insert(rec.call_id.clone(), rec);
            }
        }
    }

    /// A delete from the stream.
    pub fn delete(&mut self, call_id: &str, generation: u64) {
        if self
            .calls
            .get(call_id)
            .is_some_and(|have| have.generation <= generation)
        {
            self.calls.remove(call_id);
        }
    }

    /// After a full read of the index: every record taken in by [`put`](Self::put). Calls the
    /// index no longer has are kept: after a Redis restart its index is empty until the active
    /// node writes its calls again, and a call kept by mistake only times out after a takeover.
    pub fn merge(&mut self, records: Vec<CallRecord>) {
        for r in records {
            self.put(r);
        }
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The generation of the copy of `call_id`, if there is one.
    pub fn generation(&self, call_id: &str) -> Option<u64> {
        self.calls.get(call_id).map(|r| r.generation)
    }

    /// Every call, for a takeover.
    pub fn records(&self) -> Vec<CallRecord> {
        self.calls.values().cloned().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::record::tests::sample;

    #[test]
    fn stream_ids_parse_and_order_as_redis_does() {
        assert_eq!(
            StreamId::parse("1700000000000-3"),
            Some(StreamId(1_700_000_000_000, 3))
        );
        assert_eq!(StreamId::parse("5"), Some(StreamId(5, 0)));
        assert_eq!(StreamId::parse("x-1"), None);
        assert!(StreamId(5, 10) < StreamId(6, 0));
        assert!(StreamId(5, 2) < StreamId(5, 10));
        assert_eq!(StreamId(7, 1).to_string(), "7-1");
    }

    #[test]
    fn the_newest_generation_wins_and_a_delete_needs_to_be_as_new() {
        let mut m = Mirror::default();
        m.put(sample(5));
        m.put(sample(3));
        assert_eq!(m.generation("c1@example"), Some(5));
        m.delete("c1@example", 4);
        assert_eq!(m.len(), 1, "an older delete leaves a newer copy");
        m.delete("c1@example", 6);
        assert!(m.is_empty());
        m.merge(vec![sample(2)]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn changes_come_from_entry_fields() {
        assert_eq!(
            Change::from_fields("d", "c", "9"),
            Some(Change::Delete {
                call_id: "c".into(),
                generation: 9
            })
        );
        assert_eq!(Change::from_fields("x", "c", "9"), None);
        assert_eq!(Change::from_fields("w", "c", "nine"), None);
    }
}
