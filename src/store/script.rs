//! The Lua script every store operation runs through, so that Redis itself enforces the rules:
//! a write or delete with a generation no newer than the stored one (or than the call's
//! tombstone) is refused, a delete leaves a tombstone with a TTL, and the node's index follows.
//!
//! Each applied operation is also announced on the node's change stream (call id, `w`/`d`,
//! generation; not the record), which a hot standby reads from where it left off.
//!
//! KEYS: call key, tombstone key, index key, change stream. ARGV: `w` or `d`, generation, record
//! (writes), TTL in seconds of the record, TTL of the tombstone, call id, the stream's length
//! cap. Returns 1 when applied, 0 when refused.

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
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'op', ARGV[1], 'id', ARGV[6], 'gen', ARGV[2])
return 1
"#;

/// How long a tombstone outlives its call: long enough for any write still in flight (a
/// pipeline, a node that has not yet seen the takeover), short enough that a busy node's
/// tombstones stay few (500 calls/s leave 150 000 small keys).
pub const TOMBSTONE_SECS: u64 = 300;

/// Entries the change stream keeps (about: Redis trims in whole nodes). An entry is a few dozen
/// bytes; at 500 new calls a second (about four entries each) this is close to a minute of
/// changes, which a standby that was cut off longer makes up for by reading the index again.
pub const STREAM_MAXLEN: u64 = 100_000;

/// The keys and arguments of the script for `op` on `node`'s keys (sans-IO: the writer sends
/// them as `EVALSHA sha 3 KEYS... ARGV...`).
pub fn invocation(node: &str, op: &StoreOp, ttl_secs: u64) -> ([String; 4], [String; 7]) {
    let id = op.call_id();
    let keys = [
        keys::call(node, id),
        keys::tombstone(node, id),
        keys::index(node),
        keys::changes(node),
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
        id.to_string(),
        STREAM_MAXLEN.to_string(),
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
        assert_eq!(keys[3], "{rtprelay:n}:changes");
        assert_eq!(
            args,
            ["d", "9", "", "86400", "300", "c", "100000"].map(String::from)
        );
        let (_, args) = invocation("n", &op, 60);
        assert_eq!(args[4], "60");
    }
}
