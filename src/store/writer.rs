//! The Redis writer thread: takes store operations from a bounded channel, coalesces what
//! arrived since the last flush, and sends it as one pipeline of script calls. After
//! `--redis-allowed-errors` consecutive failures it pauses for `--redis-disable-time`, dropping
//! (and counting) what arrives meanwhile, then tries again. The sync client on a dedicated thread
//! keeps an async runtime out of the relay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::coalesce::{Coalescer, StoreOp};
use super::connection::{self, StoreConnection};
use super::pause::{AfterError, Pause};
use super::script;
use crate::config::{RedisConfig, RedisEndpoint};
use crate::metrics::store::StoreStats;

/// Operations waiting for the writer; beyond this the daemon drops them (and counts them).
pub const QUEUE: usize = 65536;

/// How long the writer gathers operations after the first one before it writes them.
const LINGER: Duration = Duration::from_millis(5);
/// Calls per pipeline before the writer stops gathering.
const BATCH: usize = 512;

/// The daemon's end: never blocks.
#[derive(Debug, Clone)]
pub struct StoreSender {
    tx: Sender<StoreOp>,
    stats: StoreStats,
    /// Set at shutdown: the writer flushes what is queued and ends.
    closing: Arc<AtomicBool>,
}

impl StoreSender {
    /// Queues `op`; a full queue (Redis far behind) drops it and counts it.
    pub fn send(&self, op: StoreOp) {
        match self.tx.try_send(op) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped(1)
            }
        }
    }

    /// Asks the writer to write what is queued and end (see [`finish`]).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }
}

/// At shutdown: closes the writer and waits up to `within` for its last flush, so that the
/// calls' final state (deletes included) reaches Redis before the process exits.
pub fn finish(sender: &StoreSender, thread: JoinHandle<()>, within: Duration) {
    sender.close();
    let deadline = Instant::now() + within;
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if thread.is_finished() {
        let _ = thread.join();
    } else {
        tracing::warn!("Redis writer still busy at exit: its last writes are lost");
    }
}

/// Starts the writer for `node`'s calls; it ends when every [`StoreSender`] is dropped.
pub fn spawn(
    cfg: &RedisConfig,
    endpoint: &RedisEndpoint,
    node: String,
    stats: StoreStats,
) -> std::io::Result<(StoreSender, JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let closing = Arc::new(AtomicBool::new(false));
    let writer = Writer {
        closing: closing.clone(),
        cfg: cfg.clone(),
        endpoint: endpoint.clone(),
        node,
        ttl_secs: cfg.expires.as_secs(),
        pause: Pause::new(cfg.allowed_errors, cfg.disable_time),
        stats: stats.clone(),
        conn: None,
    };
    let handle = std::thread::Builder::new()
        .name("redis-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok((StoreSender { tx, stats, closing }, handle))
}

struct Writer {
    closing: Arc<AtomicBool>,
    /// Where and how to connect (`--redis-sentinel`, `--redis-cluster`, the timeouts).
    cfg: RedisConfig,
    endpoint: RedisEndpoint,
    node: String,
    ttl_secs: u64,
    pause: Pause,
    stats: StoreStats,
    /// The connection and the loaded script's SHA.
    conn: Option<(StoreConnection, String)>,
}

impl Writer {
    fn run(mut self, rx: Receiver<StoreOp>) {
        let mut pending = Coalescer::default();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(op) => {
                    pending.push(op);
                    // What arrives within LINGER joins this flush: one round trip for a burst
                    // of commands instead of one each, and no Redis work between an offer and
                    // the answer right behind it.
                    let until = Instant::now() + LINGER;
                    while pending.len() < BATCH {
                        let left = until.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(op) => pending.push(op),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush(&mut pending);
                    return;
                }
            }
            // Everything already queued joins this flush.
            for op in rx.try_iter().take(QUEUE) {
                pending.push(op);
            }
            self.flush(&mut pending);
            if self.closing.load(Ordering::Relaxed) && rx.is_empty() {
                return;
            }
        }
    }

    fn flush(&mut self, pending: &mut Coalescer) {
        if pending.is_empty() {
            return;
        }
        let was_paused = self.pause.is_paused();
        if !self.pause.may_write(Instant::now()) {
            self.stats.dropped(pending.drain().len() as u64);
            return;
        }
        if was_paused {
            tracing::info!("Redis writes resume");
        }
        let ops = pending.drain();
        // A connection that Redis closed (a restart) fails the first write on it: one more try
        // on a new connection before the operations are given up.
        let had_connection = self.conn.is_some();
        let mut result = self.send(&ops);
        if result.is_err() && had_connection {
            self.conn = None;
            result = self.send(&ops);
        }
        match result {
            Ok(applied) => {
                self.pause.on_success();
                self.stats.written(applied);
            }
            Err(e) => {
                self.conn = None;
                self.stats.error();
                self.stats.dropped(ops.len() as u64);
                tracing::warn!(error = %e, ops = ops.len(), "Redis write failed");
                if self.pause.on_error(Instant::now()) == AfterError::Paused {
                    tracing::warn!("too many Redis errors: writes pause");
                }
            }
        }
    }

    fn connect(&mut self) -> redis::RedisResult<&mut (StoreConnection, String)> {
        if self.conn.is_none() {
            // Plain, through Sentinel (asked again after each error: a failover is followed)
            // or Redis Cluster.
            let mut con = connection::open(&self.cfg, &self.endpoint)?;
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script::SOURCE)
                .query(&mut con)?;
            self.conn = Some((con, sha));
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no connection",
            ))),
        }
    }

    /// Sends `ops` as one pipeline; how many Redis applied (the rest were stale and refused).
    fn send(&mut self, ops: &[StoreOp]) -> redis::RedisResult<u64> {
        let node = self.node.clone();
        let ttl = self.ttl_secs;
        let (con, sha) = self.connect()?;
        let mut pipe = redis::pipe();
        for op in ops {
            let (keys, args) = script::invocation(&node, op, ttl);
            pipe.cmd("EVALSHA")
                .arg(sha.as_str())
                .arg(keys.len())
                .arg(&keys)
                .arg(&args);
        }
        // 0 is a refused stale operation: expected, not an error.
        let results: Vec<i64> = pipe.query(con)?;
        Ok(results.iter().filter(|&&r| r == 1).count() as u64)
    }
}
