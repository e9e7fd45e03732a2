//! Coalesces store operations per call between two flushes: the latest record wins, a delete
//! supersedes writes, and a write never replaces a newer generation.

use std::collections::HashMap;

use super::record::CallRecord;

/// One change to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    Write(Box<CallRecord>),
    Delete { call_id: String, generation: u64 },
}

impl StoreOp {
    pub fn call_id(&self) -> &str {
        match self {
            StoreOp::Write(r) => &r.call_id,
            StoreOp::Delete { call_id, .. } => call_id,
        }
    }

    pub fn generation(&self) -> u64 {
        match self {
            StoreOp::Write(r) => r.generation,
            StoreOp::Delete { generation, .. } => *generation,
        }
    }
}

/// The pending operation of each call, in the order calls were first touched.
#[derive(Debug, Default)]
pub struct Coalescer {
    pending: HashMap<String, StoreOp>,
    order: Vec<String>,
}

impl Coalescer {
    pub fn push(&mut self, op: StoreOp) {
        match self.pending.get_mut(op.call_id()) {
            None => {
                self.order.push(op.call_id().to_string());
                self.pending.insert(op.call_id().to_string(), op);
            }
            Some(old) => {
                let keep_old = match (&*old, &op) {
                    // Nothing after a delete brings the call back.
                    (StoreOp::Delete { .. }, _) => true,
                    (_, StoreOp::Delete { .. }) => false,
                    (StoreOp::Write(a), StoreOp::Write(b)) => a.generation > b.generation,
                };
                if !keep_old {
                    *old = op;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Everything pending, oldest call first; the coalescer is empty afterwards.
    pub fn drain(&mut self) -> Vec<StoreOp> {
        let mut pending = std::mem::take(&mut self.pending);
        std::mem::take(&mut self.order)
            .into_iter()
            .filter_map(|id| pending.remove(&id))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::record::SCHEMA_VERSION;

    fn write(id: &str, generation: u64) -> StoreOp {
        StoreOp::Write(Box::new(CallRecord {
            schema: SCHEMA_VERSION,
            owner: "n".into(),
            generation,
            call_id: id.into(),
            created_us: 0,
            last_signal_us: 0,
            recording: false,
            block_media: false,
            metadata: None,
            legs: Vec::new(),
        }))
    }

    fn delete(id: &str, generation: u64) -> StoreOp {
        StoreOp::Delete {
            call_id: id.into(),
            generation,
        }
    }

    #[test]
    fn the_latest_write_of_a_call_wins() {
        let mut c = Coalescer::default();
        c.push(write("a", 1));
        c.push(write("b", 2));
        c.push(write("a", 3));
        assert_eq!(c.len(), 2);
        assert_eq!(c.drain(), vec![write("a", 3), write("b", 2)]);
        assert!(c.is_empty());
    }

    #[test]
    fn a_stale_write_does_not_replace_a_newer_one() {
        let mut c = Coalescer::default();
        c.push(write("a", 5));
        c.push(write("a", 4));
        assert_eq!(c.drain(), vec![write("a", 5)]);
    }

    #[test]
    fn a_delete_supersedes_writes_before_and_after_it() {
        let mut c = Coalescer::default();
        c.push(write("a", 1));
        c.push(delete("a", 2));
        c.push(write("a", 3));
        assert_eq!(c.drain(), vec![delete("a", 2)]);
    }
}
