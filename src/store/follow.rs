//! The hot standby's reader: keeps a [`Mirror`] of one node's calls from Redis, on its own
//! thread. It reads the node's index once (after noting where the change stream ends), then
//! follows the stream with blocking `XREAD`s from the last entry it took in, so that a
//! disconnect or a Redis restart loses nothing: it reconnects and reads on from there. When the
//! stream was trimmed past that entry (cut off for long), it reads the index again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use redis::{ConnectionLike, Value};

use super::connection::{self, StoreConnection};
use super::keys;
use super::load;
use super::mirror::{Change, Mirror, StreamId};
use super::record::CallRecord;
use crate::config::{RedisConfig, RedisEndpoint};

/// How long one `XREAD` waits for new entries.
const BLOCK: Duration = Duration::from_millis(500);
/// Entries per `XREAD`.
const COUNT: usize = 1000;
/// Pause after a failure before connecting again.
const RETRY: Duration = Duration::from_millis(500);

/// The standby's view of one followed node.
#[derive(Debug, Clone)]
pub struct Followed {
    pub node: String,
    pub mirror: Arc<Mutex<Mirror>>,
}

/// Starts following `node`; the thread ends when `stop` is set.
pub fn spawn(
    cfg: &RedisConfig,
    endpoint: &RedisEndpoint,
    node: String,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(Followed, JoinHandle<()>)> {
    let followed = Followed {
        node: node.clone(),
        mirror: Arc::new(Mutex::new(Mirror::default())),
    };
    // Requests are small and answered at once, but for XREAD's BLOCK (the read timeout is
    // raised for it in `connect`).
    let mut redis = cfg.clone();
    redis.cmd_timeout = Some(Duration::from_secs(2));
    let reader = Reader {
        redis,
        endpoint: endpoint.clone(),
        followed: followed.clone(),
        stop,
    };
    let thread = std::thread::Builder::new()
        .name(format!("follow-{node}"))
        .spawn(move || reader.run())?;
    Ok((followed, thread))
}

struct Reader {
    /// Where and how to connect (one server, Sentinel or Cluster).
    redis: RedisConfig,
    endpoint: RedisEndpoint,
    followed: Followed,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(self) {
        let mut con = None;
        let mut failing = false;
        while !self.stop.load(Ordering::Relaxed) {
            let result = match con.as_mut() {
                Some(c) => self.step(c),
                None => match self.connect() {
                    Ok(c) => {
                        let c = con.insert(c);
                        self.catch_up(c)
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {
                    if failing {
                        tracing::info!(node = %self.followed.node, "following again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(node = %self.followed.node, error = %e, "standby lost Redis; retrying");
                    }
                    failing = true;
                    con = None;
                    std::thread::sleep(RETRY);
                }
            }
        }
    }

    fn connect(&self) -> redis::RedisResult<StoreConnection> {
        let con = connection::open(&self.redis, &self.endpoint)?;
        // A blocked XREAD answers within BLOCK; anything much later is a dead connection.
        con.set_read_timeout(Some(BLOCK + Duration::from_secs(2)))?;
        Ok(con)
    }

    /// After a (re)connect: a full read of the index when this is the first one, or when the
    /// stream no longer holds the entry after the last one taken in.
    fn catch_up(&self, con: &mut StoreConnection) -> redis::RedisResult<()> {
        let stream = keys::changes(&self.followed.node);
        let last = self.lock().last;
        let first: Value = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query(con)?;
        let first = entries(&first).first().map(|(id, _)| *id);
        let gap = match (last, first) {
            (None, _) => true,
            (Some(l), Some(f)) => f > l && l != StreamId::default(),
            (Some(_), None) => false,
        };
        if gap {
            let tail: Value = redis::cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(con)?;
            let tail = entries(&tail)
                .first()
                .map(|(id, _)| *id)
                .unwrap_or_default();
            let loaded = load::load(con, &self.followed.node)?;
            let mut m = self.lock();
            let n = loaded.records.len();
            m.merge(loaded.records);
            // Reading on from the stream's end as it was before the index was read: changes
            // made meanwhile come again, and the newer generation wins.
            m.last = Some(last.map_or(tail, |l| l.max(tail)));
            tracing::info!(node = %self.followed.node, calls = n, mirrored = m.len(), "standby read the node's calls");
        }
        Ok(())
    }

    /// One blocking read of the stream, and what it says.
    fn step(&self, con: &mut StoreConnection) -> redis::RedisResult<()> {
        let stream = keys::changes(&self.followed.node);
        let from = self.lock().last.unwrap_or_default();
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&stream)
            .arg(from.to_string())
            .query(con)?;
        let batch: Vec<(StreamId, Vec<(String, String)>)> = match &reply {
            Value::Array(streams) => streams
                .iter()
                .filter_map(|s| match s {
                    Value::Array(pair) => pair.get(1),
                    _ => None,
                })
                .flat_map(entries)
                .collect(),
            Value::Map(streams) => streams.iter().flat_map(|(_, v)| entries(v)).collect(),
            _ => Vec::new(),
        };
        let Some(newest) = batch.last().map(|(id, _)| *id) else {
            return Ok(());
        };
        let changes: Vec<Change> = batch
            .iter()
            .filter_map(|(_, fields)| {
                let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
                Change::from_fields(get("op")?, get("id")?, get("gen")?)
            })
            .collect();
        let records = self.read_records(con, &changes)?;
        let mut m = self.lock();
        for c in &changes {
            if let Change::Delete {
                call_id,
                generation,
            } = c
            {
                m.delete(call_id, *generation);
            }
        }
        for r in records {
            m.put(r);
        }
        m.last = Some(newest);
        Ok(())
    }

    /// The current records of the calls the batch wrote (one pipeline; a call deleted since
    /// has none).
    fn read_records(
        &self,
        con: &mut StoreConnection,
        changes: &[Change],
    ) -> redis::RedisResult<Vec<CallRecord>> {
        let mut ids: Vec<&str> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Write { call_id, .. } => Some(call_id.as_str()),
                Change::Delete { .. } => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGET")
                .arg(keys::call(&self.followed.node, id))
                .arg("rec");
        }
        let texts: Vec<Option<String>> = pipe.query(con as &mut dyn ConnectionLike)?;
        Ok(texts
            .into_iter()
            .flatten()
            .filter_map(|t| CallRecord::decode(&t))
            .filter(|r| r.owner == self.followed.node)
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mirror> {
        self.followed
            .mirror
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// The entries of an `XRANGE`/`XREAD` stream reply: ids and field/value pairs; anything that
/// does not look like one is skipped.
fn entries(v: &Value) -> Vec<(StreamId, Vec<(String, String)>)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = StreamId::parse(&text(parts.first()?)?)?;
            let fields = match parts.get(1)? {
                Value::Array(kv) => kv
                    .chunks(2)
                    .filter_map(|p| Some((text(p.first()?)?, text(p.get(1)?)?)))
                    .collect(),
                _ => Vec::new(),
            };
            Some((id, fields))
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn stream_replies_are_read_and_oddities_skipped() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("5-1"),
                Value::Array(vec![
                    bulk("op"),
                    bulk("w"),
                    bulk("id"),
                    bulk("c"),
                    bulk("gen"),
                    bulk("3"),
                ]),
            ]),
            Value::Int(7),
            Value::Array(vec![bulk("not-an-id")]),
            Value::Array(vec![bulk("6-0"), Value::Array(vec![bulk("odd")])]),
        ]);
        let e = entries(&reply);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].0, StreamId(5, 1));
        assert_eq!(e[0].1[1], ("id".to_string(), "c".to_string()));
        assert!(e[1].1.is_empty());
        assert!(entries(&Value::Nil).is_empty());
    }
}
