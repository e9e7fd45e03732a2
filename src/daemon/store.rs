//! Feeds the call store: after each NG command that changes a call, after a flow latched on its
//! peer, and when a call ends in the timers, the daemon hands the call's new record (or its
//! deletion) to the Redis writer thread, without waiting for Redis.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::config::Config;
use crate::metrics::store::StoreStats;
use crate::session::Engine;
use crate::store::writer::{self, StoreSender};
use crate::store::{CallRecord, StoreOp};
use crate::time::Millis;

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
    stats: StoreStats,
}

impl CallStore {
    /// Starts the writer when `--redis` or `--redis-write` is given.
    pub fn start(cfg: &Config, unix_us: u64) -> Option<CallStore> {
        let endpoint = cfg.redis.write_endpoint()?;
        let node = node_id();
        let stats = StoreStats::default();
        match writer::spawn(&cfg.redis, endpoint, node.clone(), stats.clone()) {
            Ok((sender, _thread)) => {
                tracing::info!(redis = %endpoint.addr, db = endpoint.db, %node, "calls are written to Redis");
                Some(CallStore {
                    sender,
                    node,
                    generation: AtomicU64::new(unix_us),
                    live: Mutex::new(HashSet::new()),
                    next_sweep: AtomicU64::new(0),
                    stats,
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
        let ended: Vec<String> = {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.iter()
                .filter(|id| engine.call(id).is_none_or(|c| c.destroy_at.is_some()))
                .cloned()
                .collect()
        };
        for call_id in ended {
            self.store(engine, &call_id, true);
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

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }
}

/// This node's name in key hash tags: the host name.
fn node_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rtprelay".to_string())
}
