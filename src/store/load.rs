//! Reads a node's calls back from Redis for a restore: its index SET, then the records in
//! pipelined batches of `HGET` (one hash slot: the keys share the node's tag). No `KEYS`, no `SCAN`: the
//! cost is the node's own calls, whatever else the database holds.

use redis::ConnectionLike;

use super::keys;
use super::record::CallRecord;

/// Keys per pipeline: large enough that 10 000 calls take a few round trips, small enough that
/// one reply stays a few megabytes.
const BATCH: usize = 1000;

/// What was found under a node's index.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<CallRecord>,
    /// Index entries whose record had expired (removed from the index).
    pub expired: usize,
    /// Records that could not be read (not ours, another schema, not JSON): left in place and
    /// logged, never restored.
    pub unreadable: usize,
}

/// Reads every call of `node`.
pub fn load(con: &mut dyn ConnectionLike, node: &str) -> redis::RedisResult<Loaded> {
    let index = keys::index(node);
    let mut members: Vec<String> = redis::cmd("SMEMBERS").arg(&index).query(con)?;
    members.sort();
    let mut out = Loaded::default();
    let mut gone = Vec::new();
    for chunk in members.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("HGET").arg(key).arg("rec");
        }
        let values: Vec<Option<String>> = pipe.query(con)?;
        for (key, value) in chunk.iter().zip(values) {
            match value {
                None => gone.push(key.clone()),
                Some(text) => match read(&text, key, node) {
                    Some(r) => out.records.push(r),
                    None => {
                        tracing::warn!(key = ?key, "stored call record cannot be read; left alone");
                        out.unreadable += 1;
                    }
                },
            }
        }
    }
    // Records expire (`--redis-expires`); their index entries go with this restore.
    for chunk in gone.chunks(BATCH) {
        let _: i64 = redis::cmd("SREM").arg(&index).arg(chunk).query(con)?;
    }
    out.expired = gone.len();
    Ok(out)
}

/// A record, if it is `node`'s and sits under its own key.
fn read(text: &str, key: &str, node: &str) -> Option<CallRecord> {
    CallRecord::decode(text).filter(|r| r.owner == node && keys::call(node, &r.call_id) == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_under_another_calls_key_is_refused() {
        let r = super::super::record::tests::sample(3);
        let text = r.encode();
        assert!(read(&text, &keys::call("node-a", "c1@example"), "node-a").is_some());
        assert!(read(&text, &keys::call("node-a", "other"), "node-a").is_none());
        assert!(read(&text, &keys::call("node-b", "c1@example"), "node-b").is_none());
        assert!(read("{}", &keys::call("node-a", "c1@example"), "node-a").is_none());
    }
}
