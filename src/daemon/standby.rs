//! Hot standby (`--redis-follow=NODE;...`): mirrors the followed nodes' calls from Redis and
//! takes them over when told (`rtprelay-ctl takeover`, `SIGUSR1`) or when a media address it was
//! missing appears on this host (keepalived/VRRP moved the virtual IP here). A takeover makes the
//! mirrored calls live on this relay (the same ports, on the address that moved), writes them
//! under this node, and tombstones them under the node they came from, so that node does not
//! restore them when it comes back.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::daemon::control::Control;
use crate::store::follow::{self, Followed};
use crate::store::{script, CallRecord};

/// How often the watcher looks at the trigger flag and the host's addresses: a takeover's
/// media gap starts with this (a call's packets every 20 ms). `getifaddrs` costs tens of
/// microseconds, and only a standby that has not taken over yet runs it.
const WATCH: Duration = Duration::from_millis(5);

/// Why a takeover happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `rtprelay-ctl takeover` or `SIGUSR1`.
    Asked,
    /// A media address of this relay appeared on the host.
    Address(IpAddr),
}

/// The standby side of the daemon: the followers and what starts a takeover.
pub struct Standby {
    followed: Vec<Followed>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// Set by the CLI or the signal.
    asked: Arc<AtomicBool>,
    /// Media addresses of this relay that the host does not have (yet).
    missing: BTreeSet<IpAddr>,
    /// This relay's media addresses.
    locals: Vec<IpAddr>,
    cleanup: Option<(
        String,
        crate::config::RedisEndpoint,
        crate::config::RedisConfig,
    )>,
}

impl Standby {
    /// Starts following when `--redis-follow` (and `--redis`) are given. `asked` is the flag the
    /// CLI's `takeover` and `SIGUSR1` set.
    pub fn start(cfg: &Config, asked: Arc<AtomicBool>) -> Option<Standby> {
        if cfg.redis.follow.is_empty() {
            return None;
        }
        let Some(endpoint) = cfg.redis.read.as_ref() else {
            tracing::warn!("--redis-follow needs --redis: not a standby");
            return None;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut followed = Vec::new();
        let mut threads = Vec::new();
        for node in &cfg.redis.follow {
            match follow::spawn(&cfg.redis, endpoint, node.clone(), stop.clone()) {
                Ok((f, t)) => {
                    followed.push(f);
                    threads.push(t);
                }
                Err(e) => tracing::warn!(%node, error = %e, "cannot follow node"),
            }
        }
        let locals: Vec<IpAddr> = cfg.interfaces.iter().map(|i| i.local).collect();
        let missing = missing_addresses(&locals);
        tracing::info!(
            follow = ?cfg.redis.follow,
            waiting_for = ?missing,
            "hot standby: mirroring calls; takeover on `takeover`, SIGUSR1, or when a missing media address appears"
        );
        let write = cfg
            .redis
            .write_endpoint()
            .cloned()
            .unwrap_or_else(|| endpoint.clone());
        Some(Standby {
            followed,
            threads,
            stop,
            asked,
            missing,
            locals,
            cleanup: Some((crate::daemon::store::node_id(cfg), write, cfg.redis.clone())),
        })
    }

    /// Watches for the trigger on a thread of its own (the daemon's loop ticks only every
    /// 100 ms), and takes over when it comes.
    pub fn spawn_watch(mut self, control: Control) -> std::io::Result<Watch> {
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name("standby-watch".into())
            .spawn(move || {
                while !self.stop.load(Ordering::Relaxed) {
                    if self.poll(&control).is_some() {
                        break;
                    }
                    std::thread::sleep(WATCH);
                }
                self.shutdown();
            })?;
        Ok(Watch { stop, thread })
    }

    /// Takes over when it is time; the trigger, once.
    fn poll(&mut self, control: &Control) -> Option<Trigger> {
        let trigger = if self.asked.swap(false, Ordering::Relaxed) {
            Some(Trigger::Asked)
        } else if !self.missing.is_empty() {
            let now = missing_addresses(&self.locals);
            let appeared = self.missing.difference(&now).next().copied();
            appeared.map(Trigger::Address)
        } else {
            None
        };
        let trigger = trigger?;
        self.takeover(control, trigger);
        Some(trigger)
    }

    fn takeover(&mut self, control: &Control, trigger: Trigger) {
        let started = Instant::now();
        // Followers stop first: nothing changes the mirrors while the calls are taken.
        self.stop.store(true, Ordering::Relaxed);
        let mut taken = Vec::new();
        let mut total = 0;
        for f in &self.followed {
            let records = f.mirror.lock().unwrap_or_else(|p| p.into_inner()).records();
            let restored = control.restore(&records);
            total += restored.calls;
            tracing::info!(
                node = %f.node,
                ?trigger,
                restored = restored.calls,
                failed = restored.failed.len(),
                present = restored.present,
                "took over the node's calls"
            );
            taken.push((f.node.clone(), records));
        }
        tracing::info!(
            calls = total,
            ms = started.elapsed().as_millis() as u64,
            "takeover done"
        );
        self.missing.clear();
        if let Some((node, endpoint, redis)) = self.cleanup.take() {
            let _ = std::thread::Builder::new()
                .name("takeover-cleanup".into())
                .spawn(move || tombstone_taken(&node, &endpoint, &redis, &taken));
        }
    }

    /// Stops the followers.
    fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The running watcher (see [`Standby::spawn_watch`]).
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Watch {
    /// Stops the watcher and the followers (at exit).
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Those of `locals` the host does not have now.
fn missing_addresses(locals: &[IpAddr]) -> BTreeSet<IpAddr> {
    let host: BTreeSet<IpAddr> = match crate::sys::ifaddrs::host_addresses() {
        Ok(h) => h.into_iter().map(|a| a.addr).collect(),
        Err(_) => return BTreeSet::new(),
    };
    locals
        .iter()
        .copied()
        .filter(|ip| !ip.is_unspecified() && !host.contains(ip))
        .collect()
}

/// Deletes the taken calls under the nodes they came from (with a tombstone one generation
/// newer than the record taken), so that a node that comes back does not restore them. One
/// pipeline per node: a node's keys share a slot, different nodes' need not (Redis Cluster).
fn tombstone_taken(
    us: &str,
    endpoint: &crate::config::RedisEndpoint,
    redis: &crate::config::RedisConfig,
    taken: &[(String, Vec<CallRecord>)],
) {
    let run = || -> redis::RedisResult<usize> {
        let mut con = crate::store::connection::open(redis, endpoint)?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script::SOURCE)
            .query(&mut con)?;
        let mut n = 0;
        for (node, records) in taken {
            if node == us || records.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for r in records {
                let op = crate::store::StoreOp::Delete {
                    call_id: r.call_id.clone(),
                    generation: r.generation.saturating_add(1),
                };
                let (k, a) = script::invocation(node, &op, script::TOMBSTONE_SECS);
                pipe.cmd("EVALSHA").arg(&sha).arg(k.len()).arg(&k).arg(&a);
                n += 1;
            }
            let _: Vec<i64> = pipe.query(&mut con)?;
        }
        Ok(n)
    };
    match run() {
        Ok(n) => tracing::info!(
            calls = n,
            "taken calls removed from the nodes they came from"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot remove the taken calls from their old node's keys; they expire")
        }
    }
}
