//! The Lua script every store operation runs through, so that Redis itself enforces the rules:
//! a write or delete with a generation no newer than the stored one (or than the call's
//! tombstone) is refused, a delete leaves a tombstone with a TTL, and the node's index follows.
//!
//! KEYS: call key, tombstone key, index key. ARGV: `w` or `d`, generation, record (writes),
//! TTL in seconds of the record, TTL of the tombstone. Returns 1 when applied, 0 when refused.

use super::coalesce::StoreOp;
use super::keys;

pub const SOURCE: &str = r#"
local gen = tonumber(ARGV[2])
local dead = redis.call('GET', KEYS[2])
if dead and tonumber(dead) >= gen then return 0 end
local cur = redis.call('HGET', KEYS[1], 'gen')
if cur and tonumber(cur) >= gen then return 0 end
if ARGV[1] == 'w' then
  redis.call('HSET', KEYS[1], 'gen', ARGV[2], 'rec', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('SADD', KEYS[3], KEYS[1])
else
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], KEYS[1])
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5])
end
return 1
"#;

/// How long a tombstone outlives its call: long enough for any write still in flight (a
/// pipeline, a node that has not yet seen the takeover), short enough that a busy node's
/// tombstones stay few (500 calls/s leave 150 000 small keys).
pub const TOMBSTONE_SECS: u64 = 300;

/// The keys and arguments of the script for `op` on `node`'s keys (sans-IO: the writer sends
/// them as `EVALSHA sha 3 KEYS... ARGV...`).
pub fn invocation(node: &str, op: &StoreOp, ttl_secs: u64) -> ([String; 3], [String; 5]) {
    let id = op.call_id();
    let keys = [
        keys::call(node, id),
        keys::tombstone(node, id),
        keys::index(node),
    ];
    let (kind, record) = match op {
        StoreOp::Write(r) => ("w", r.encode()),
        StoreOp::Delete { .. } => ("d", String::new()),
    };
    let args = [
        kind.to_string(),
        op.generation().to_string(),
        record,
        ttl_secs.max(1).to_string(),
        ttl_secs.clamp(1, TOMBSTONE_SECS).to_string(),
    ];
    (keys, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_carries_a_short_tombstone_ttl() {
        let op = StoreOp::Delete {
            call_id: "c".into(),
            generation: 9,
        };
        let (keys, args) = invocation("n", &op, 86400);
        assert_eq!(keys[0], "{rtprelay:n}:call:c");
        assert_eq!(args, ["d", "9", "", "86400", "300"].map(String::from));
        let (_, args) = invocation("n", &op, 60);
        assert_eq!(args[4], "60");
    }
}
