//! Feeds the call store: after each NG command that changes a call, the daemon hands the call's
//! new record (or its deletion) to the Redis writer thread, without waiting for Redis.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::metrics::store::StoreStats;
use crate::session::Engine;
use crate::store::writer::{self, StoreSender};
use crate::store::{CallRecord, StoreOp};

/// The daemon's handle on the call store.
#[derive(Debug)]
pub struct CallStore {
    sender: StoreSender,
    node: String,
    /// Node-wide and only growing; seeded from the wall clock so that a restarted node's
    /// generations stay above those it wrote before.
    generation: AtomicU64,
    stats: StoreStats,
}

/// Commands that change nothing worth storing.
const READ_ONLY: [&str; 6] = ["ping", "query", "list", "statistics", "sessions", "get"];

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
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let delete = StoreOp::Delete {
            call_id: call_id.to_string(),
            generation,
        };
        match engine.call(call_id) {
            Some(call) if call.destroy_at.is_none() => {
                self.sender
                    .send(StoreOp::Write(Box::new(CallRecord::from_call(
                        call, &self.node, generation,
                    ))))
            }
            // Deleted (lingering for its delete-delay) or gone.
            Some(_) => self.sender.send(delete),
            None if name == "delete" => self.sender.send(delete),
            None => {}
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
