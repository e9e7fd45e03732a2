//! The recorder daemon: processes what is pending at start, then watches `metadata/` with inotify and hands
//! each finished call to a pool of workers. A call is in flight at most once; a periodic rescan catches
//! anything inotify missed (queue overflow, a transient error).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender};
use inotify::{EventMask, Inotify, WatchMask};
use thiserror::Error;
use tracing::{debug, error, info, warn};

use crate::process::{process_call, Outcome, OutputConfig};
use crate::spool::{SpoolEntry, SpoolError, SpoolReader};

/// How often the spool is rescanned even without inotify events.
pub const RESCAN: Duration = Duration::from_secs(30);

/// Daemon errors (startup only; per-call problems are logged and retried or quarantined).
#[derive(Debug, Error)]
pub enum DaemonError {
    /// spool layout problem
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// inotify could not be set up
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: String,
        source: std::io::Error,
    },
    /// the output directory cannot be created
    #[error("cannot create output directory {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

/// Counters, summed over the run.
#[derive(Debug, Default)]
pub struct Stats {
    pub written: AtomicU64,
    pub quarantined: AtomicU64,
    pub failed: AtomicU64,
}

enum Event {
    Name(std::ffi::OsString),
    Rescan,
}

struct Dispatcher {
    reader: SpoolReader,
    inflight: Arc<Mutex<HashSet<String>>>,
    work: Sender<String>,
    stats: Arc<Stats>,
}

impl Dispatcher {
    fn dispatch(&self, entry: SpoolEntry) {
        match entry {
            SpoolEntry::Call(stem) => {
                let fresh = self
                    .inflight
                    .lock()
                    .map(|mut s| s.insert(stem.clone()))
                    .unwrap_or(false);
                if fresh {
                    let _ = self.work.send(stem);
                }
            }
            SpoolEntry::Stray(name) => {
                let reason = "not a spool metadata file (<stem>.meta)";
                match self.reader.quarantine_stray(&name, reason) {
                    Ok(to) => {
                        self.stats.quarantined.fetch_add(1, Ordering::Relaxed);
                        warn!(file = %name, quarantine = %to.display(), "{reason}; quarantined")
                    }
                    Err(e) => debug!(file = %name, "stray file not quarantined: {e}"),
                }
            }
        }
    }

    fn rescan(&self) {
        match self.reader.scan() {
            Ok(entries) => entries.into_iter().for_each(|e| self.dispatch(e)),
            Err(e) => error!("spool scan failed: {e}"),
        }
    }
}

/// Runs until `stop` receives (or closes), or, with `oneshot`, until the pending calls are done.
pub fn run(
    spool_dir: &Path,
    output: OutputConfig,
    num_threads: usize,
    oneshot: bool,
    stop: Receiver<()>,
) -> Result<Arc<Stats>, DaemonError> {
    let reader = SpoolReader::new(spool_dir);
    reader.ensure_dirs()?;
    std::fs::create_dir_all(&output.output_dir).map_err(|source| DaemonError::Output {
        path: output.output_dir.display().to_string(),
        source,
    })?;
    let stats = Arc::new(Stats::default());
    let (events_tx, events_rx) = unbounded();
    if !oneshot {
        // Watch before the first scan, so nothing lands in between unseen.
        start_watch(&reader.metadata_dir(), events_tx)?;
    }
    let (work_tx, work_rx) = bounded::<String>(1024);
    let inflight = Arc::new(Mutex::new(HashSet::new()));
    let output = Arc::new(output);
    let workers: Vec<_> = (0..num_threads.max(1))
        .map(|i| {
            let rx = work_rx.clone();
            let reader = reader.clone();
            let output = Arc::clone(&output);
            let inflight = Arc::clone(&inflight);
            let stats = Arc::clone(&stats);
            thread::Builder::new()
                .name(format!("rec-worker-{i}"))
                .spawn(move || worker(rx, &reader, &output, &inflight, &stats))
        })
        .filter_map(|h| h.map_err(|e| error!("cannot start worker: {e}")).ok())
        .collect();
    drop(work_rx);
    let d = Dispatcher {
        reader,
        inflight,
        work: work_tx,
        stats: Arc::clone(&stats),
    };
    info!(spool = %spool_dir.display(), output = %output.output_dir.display(), threads = workers.len(), "recorder started");
    d.rescan();
    if !oneshot {
        loop {
            select! {
                recv(stop) -> _ => break,
                recv(events_rx) -> ev => match ev {
                    Ok(Event::Name(name)) => {
                        if let Some(entry) = SpoolReader::classify(&name) {
                            d.dispatch(entry);
                        }
                    }
                    Ok(Event::Rescan) => d.rescan(),
                    Err(_) => {
                        warn!("inotify watch ended; rescanning every {}s", RESCAN.as_secs());
                        loop {
                            select! {
                                recv(stop) -> _ => break,
                                default(RESCAN) => d.rescan(),
                            }
                        }
                        break;
                    }
                },
                default(RESCAN) => d.rescan(),
            }
        }
        info!("stopping: finishing the calls in progress");
    }
    drop(d);
    for w in workers {
        let _ = w.join();
    }
    info!(
        written = stats.written.load(Ordering::Relaxed),
        quarantined = stats.quarantined.load(Ordering::Relaxed),
        failed = stats.failed.load(Ordering::Relaxed),
        "recorder stopped"
    );
    Ok(stats)
}

fn worker(
    rx: Receiver<String>,
    reader: &SpoolReader,
    output: &OutputConfig,
    inflight: &Mutex<HashSet<String>>,
    stats: &Stats,
) {
    for stem in rx {
        match process_call(reader, &stem, output) {
            Ok(Outcome::Written(_)) => {
                stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Outcome::Quarantined(_)) => {
                stats.quarantined.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Outcome::Gone) => debug!(call = %stem, "already processed"),
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                error!(call = %stem, "recording failed, will retry on the next scan: {e}");
            }
        }
        if let Ok(mut s) = inflight.lock() {
            s.remove(&stem);
        }
    }
}

fn start_watch(dir: &Path, tx: Sender<Event>) -> Result<(), DaemonError> {
    let err = |source| DaemonError::Watch {
        path: dir.display().to_string(),
        source,
    };
    let mut ino = Inotify::init().map_err(err)?;
    ino.watches()
        .add(dir, WatchMask::MOVED_TO | WatchMask::CLOSE_WRITE)
        .map_err(err)?;
    thread::Builder::new()
        .name("rec-inotify".into())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let events = match ino.read_events_blocking(&mut buf) {
                    Ok(ev) => ev,
                    Err(e) => {
                        error!("inotify read failed: {e}");
                        return;
                    }
                };
                for ev in events {
                    let msg = if ev.mask.contains(EventMask::Q_OVERFLOW) {
                        Event::Rescan
                    } else if let Some(name) = ev.name {
                        Event::Name(name.to_owned())
                    } else {
                        continue;
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        })
        .map_err(err)?;
    Ok(())
}
