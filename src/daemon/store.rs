//! Feeds the call store: after each NG command that changes a call, after a flow latched on its
//! peer, and when a call ends in the timers, the daemon hands the call's new record (or its
//! deletion) to the Redis writer thread, without waiting for Redis.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::config::{Config, RedisEndpoint};
use crate::daemon::control::Control;
use crate::metrics::store::StoreStats;
use crate::session::engine::shard_of;
use crate::session::{Engine, Restored};
use crate::store::connection::{self, StoreConnection};
use crate::store::load;
use crate::store::writer::{self, StoreSender};
use crate::store::{CallRecord, StoreOp};
use crate::time::{Clock, Millis};

/// Commands that change nothing worth storing.
const READ_ONLY: [&str; 6] = ["ping", "query", "list", "statistics", "sessions", "get"];

/// How often the timers' ended calls (timeouts, `terminate`) are looked for.
const SWEEP_MS: u64 = 1000;

/// The daemon's handle on the call store.
#[derive(Debug)]
pub struct CallStore {
    sender: StoreSender,
    node: String,
    /// Node-wide and only growing; seeded from the wall clock so that a restarted node's
    /// generations stay above those it wrote before.
    generation: AtomicU64,
    /// Calls written and not deleted since: the sweep deletes those the engine no longer has.
    live: Mutex<HashSet<String>>,
    next_sweep: AtomicU64,
    /// Counts sweeps: each one rewrites the calls of one refresh round (see [`COUNTERS_REFRESH`]).
    sweeps: AtomicU64,
    stats: StoreStats,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Every live call is written again at least this often, in rounds spread over the sweeps, so
/// that the counters a restored call counts on from are at most this old.
pub const COUNTERS_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

impl CallStore {
    /// Starts the writer when `--redis` or `--redis-write` is given.
    pub fn start(cfg: &Config, unix_us: u64) -> Option<CallStore> {
        let endpoint = cfg.redis.write_endpoint()?;
        let node = node_id(cfg);
        let stats = StoreStats::default();
        match writer::spawn(&cfg.redis, endpoint, node.clone(), stats.clone()) {
            Ok((sender, thread)) => {
                tracing::info!(
                    redis = %endpoint.addr,
                    db = endpoint.db,
                    topology = cfg.redis.topology(),
                    %node,
                    "calls are written to Redis"
                );
                Some(CallStore {
                    sender,
                    node,
                    generation: AtomicU64::new(unix_us),
                    live: Mutex::new(HashSet::new()),
                    next_sweep: AtomicU64::new(0),
                    sweeps: AtomicU64::new(0),
                    stats,
                    thread: Mutex::new(Some(thread)),
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the Redis writer: calls are not stored");
                None
            }
        }
    }

    /// After command `name` on `call_id`: queue the call's record, or its deletion.
    pub fn after(&self, engine: &Engine, name: &str, call_id: &str) {
        if READ_ONLY.contains(&name) || call_id.is_empty() {
            return;
        }
        self.store(engine, call_id, name == "delete");
    }

    /// After a timer tick: rewrite the calls whose flows latched, and (at most once a second)
    /// delete the records of calls that ended without an NG delete.
    pub fn after_tick(&self, engine: &Engine, latched: &[String], now: Millis) {
        for call_id in latched {
            self.store(engine, call_id, false);
        }
        if now.0 < self.next_sweep.load(Ordering::Relaxed) {
            return;
        }
        self.next_sweep.store(now.0 + SWEEP_MS, Ordering::Relaxed);
        let rounds = COUNTERS_REFRESH.as_millis() as u64 / SWEEP_MS;
        let round = self.sweeps.fetch_add(1, Ordering::Relaxed) % rounds;
        let (ended, refresh): (Vec<String>, Vec<String>) = {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.iter()
                .filter(|id| {
                    engine.call(id).is_none_or(|c| c.destroy_at.is_some())
                        || shard_of(id) % rounds == round
                })
                .cloned()
                .partition(|id| engine.call(id).is_none_or(|c| c.destroy_at.is_some()))
        };
        for call_id in ended {
            self.store(engine, &call_id, true);
        }
        for call_id in refresh {
            self.store(engine, &call_id, false);
        }
    }

    /// At exit: what is queued reaches Redis (within a bound) before the process ends.
    pub fn finish(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            writer::finish(&self.sender, t, std::time::Duration::from_secs(2));
        }
    }

    /// Queues the call's record, or its deletion when it is gone or being deleted (`deleted`:
    /// an NG delete, which also tombstones a call this node never wrote).
    fn store(&self, engine: &Engine, call_id: &str, deleted: bool) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match engine.call(call_id) {
            Some(call) if call.destroy_at.is_none() => {
                live.insert(call_id.to_string());
                self.sender
                    .send(StoreOp::Write(Box::new(CallRecord::from_call(
                        call, &self.node, generation,
                    ))));
            }
            // Deleted (lingering for its delete-delay), ended, or never stored.
            _ => {
                if live.remove(call_id) || deleted {
                    self.sender.send(StoreOp::Delete {
                        call_id: call_id.to_string(),
                        generation,
                    });
                }
            }
        }
    }

    /// After a restore: the restored calls are written again (under this node, with a new
    /// generation), and those that could not be restored are deleted: nobody will end them.
    pub fn after_restore(&self, engine: &Engine, restored: &Restored, ids: &[&str]) {
        for id in ids {
            self.store(engine, id, false);
        }
        for (id, _) in &restored.failed {
            self.store(engine, id, true);
        }
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }
}

/// Reads this node's calls from `--redis` and makes them live again, before NG is served: a
/// restarted relay forwards its calls on the same ports. Redis down or slow only costs the
/// calls (within `--redis-connect-timeout`/`--redis-cmd-timeout`); the relay starts anyway.
pub fn restore_at_start(cfg: &Config, control: &Control, clock: Clock) -> Option<Restored> {
    let endpoint = cfg.redis.read.as_ref()?;
    let started = clock.mono_us();
    let node = node_id(cfg);
    // A read cut short by a signal (EINTR: a socket with a timeout is not restarted) or a
    // dropped connection is tried again; a timeout or a refusal is not.
    let mut loaded = open(cfg, endpoint).and_then(|mut con| load::load(&mut con, &node));
    for _ in 1..LOAD_ATTEMPTS {
        match &loaded {
            Err(e) if e.is_io_error() && !e.is_timeout() && !e.is_connection_refusal() => {
                tracing::info!(error = %e, "reading this node's calls again");
                std::thread::sleep(std::time::Duration::from_millis(50));
                loaded = open(cfg, endpoint).and_then(|mut con| load::load(&mut con, &node));
            }
            _ => break,
        }
    }
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read this node's calls from Redis: none restored");
            return None;
        }
    };
    let read_ms = clock.mono_us().saturating_sub(started) / 1000;
    let restored = control.restore(&loaded.records);
    tracing::info!(
        %node,
        restored = restored.calls,
        failed = restored.failed.len(),
        expired = loaded.expired,
        unreadable = loaded.unreadable,
        read_ms,
        total_ms = clock.mono_us().saturating_sub(started) / 1000,
        "calls restored from Redis"
    );
    Some(restored)
}

/// Reads of this node's calls at start, when one is cut short.
const LOAD_ATTEMPTS: usize = 3;

/// How long a restore waits for the connection (at most), and for each reply when
/// `--redis-cmd-timeout` is not set: NG is not served until the restore ends, so a Redis that
/// accepts and never answers must not hold the relay's start for ever.
const RESTORE_CMD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A connection for reading, with the configured timeouts.
fn open(cfg: &Config, endpoint: &RedisEndpoint) -> redis::RedisResult<StoreConnection> {
    let mut redis = cfg.redis.clone();
    redis.connect_timeout = redis.connect_timeout.min(RESTORE_CMD_TIMEOUT);
    redis.cmd_timeout = Some(redis.cmd_timeout.unwrap_or(RESTORE_CMD_TIMEOUT));
    connection::open(&redis, endpoint)
}

/// This node's name in key hash tags: `--redis-node`, else the host name.
pub(crate) fn node_id(cfg: &Config) -> String {
    if let Some(n) = &cfg.redis.node {
        return n.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rtprelay".to_string())
}
