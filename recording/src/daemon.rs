//! The recorder daemon: processes what is pending at start, then watches `metadata/` with inotify and hands
//! each finished call to a pool of workers. A call is in flight at most once; a periodic rescan catches
//! anything inotify missed (queue overflow) and retries calls whose backoff is over.
//!
//! No spool entry can make the daemon loop or die: permanent failures and calls over a cap are
//! quarantined, transient failures back off ([`crate::retry`]), a panic while processing a call
//! quarantines that call and the worker goes on, and a call that kills the whole process (out of memory)
//! is quarantined after [`MAX_CRASHES`] such deaths, counted on disk.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender};
use inotify::{EventMask, Inotify, WatchMask};
use thiserror::Error;
use tracing::{debug, error, info, warn};

use crate::fsutil::create_dir_private;
use crate::process::{process_call, Outcome, OutputConfig, ProcessError};
use crate::retry::{Retries, Verdict, MAX_CRASHES};
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
    /// Calls written (in full or in part).
    pub written: AtomicU64,
    /// Calls and stray files moved to quarantine.
    pub quarantined: AtomicU64,
    /// Attempts that failed with a transient error (each is retried later).
    pub failed: AtomicU64,
    /// Calls given up on after a panic, a crash loop or too many failures (also in `quarantined`).
    pub given_up: AtomicU64,
}

/// What the workers share.
struct Shared {
    reader: SpoolReader,
    output: OutputConfig,
    inflight: Mutex<HashSet<String>>,
    retries: Mutex<Retries>,
    stats: Arc<Stats>,
}

enum Event {
    Name(std::ffi::OsString),
    Rescan,
}

struct Dispatcher {
    shared: Arc<Shared>,
    work: Sender<String>,
}

impl Dispatcher {
    fn dispatch(&self, entry: SpoolEntry) {
        let sh = &self.shared;
        match entry {
            SpoolEntry::Call(stem) => {
                let ready = sh
                    .retries
                    .lock()
                    .map(|r| r.ready(&stem, Instant::now()))
                    .unwrap_or(true);
                if !ready {
                    return;
                }
                let fresh = sh
                    .inflight
                    .lock()
                    .map(|mut s| s.insert(stem.clone()))
                    .unwrap_or(false);
                if fresh {
                    let _ = self.work.send(stem);
                }
            }
            SpoolEntry::Stray(name) => {
                let reason =
                    "not a spool metadata file (<stem>.meta with a stem of at most 200 bytes)";
                match sh.reader.quarantine_stray(&name, reason) {
                    Ok(to) => {
                        sh.stats.quarantined.fetch_add(1, Ordering::Relaxed);
                        warn!(file = ?name, quarantine = %to.display(), "{reason}; quarantined")
                    }
                    Err(e) => debug!(file = ?name, "stray file not quarantined: {e}"),
                }
            }
        }
    }

    fn rescan(&self) {
        match self.shared.reader.scan() {
            Ok(entries) => {
                if let Ok(mut r) = self.shared.retries.lock() {
                    r.retain(|stem| entries.contains(&SpoolEntry::Call(stem.to_owned())));
                }
                entries.into_iter().for_each(|e| self.dispatch(e))
            }
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
    reader.sweep_attempts();
    create_dir_private(&output.output_dir).map_err(|source| DaemonError::Output {
        path: output.output_dir.display().to_string(),
        source,
    })?;
    let (events_tx, events_rx) = unbounded();
    if !oneshot {
        // Watch before the first scan, so nothing lands in between unseen.
        start_watch(&reader.metadata_dir(), events_tx)?;
    }
    let (work_tx, work_rx) = bounded::<String>(1024);
    let shared = Arc::new(Shared {
        reader,
        output,
        inflight: Mutex::new(HashSet::new()),
        retries: Mutex::new(Retries::default()),
        stats: Arc::default(),
    });
    let workers: Vec<_> = (0..num_threads.max(1))
        .map(|i| {
            let rx = work_rx.clone();
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("rec-worker-{i}"))
                .spawn(move || worker(rx, &shared))
        })
        .filter_map(|h| h.map_err(|e| error!("cannot start worker: {e}")).ok())
        .collect();
    drop(work_rx);
    let d = Dispatcher {
        shared: Arc::clone(&shared),
        work: work_tx,
    };
    info!(spool = %spool_dir.display(), output = %shared.output.output_dir.display(), threads = workers.len(), "recorder started");
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
    let st = &shared.stats;
    info!(
        written = st.written.load(Ordering::Relaxed),
        quarantined = st.quarantined.load(Ordering::Relaxed),
        failed = st.failed.load(Ordering::Relaxed),
        given_up = st.given_up.load(Ordering::Relaxed),
        "recorder stopped"
    );
    Ok(Arc::clone(&shared.stats))
}

fn worker(rx: Receiver<String>, sh: &Shared) {
    for stem in rx {
        attempt(sh, &stem, || process_call(&sh.reader, &stem, &sh.output));
        sh.reader.end_attempt(&stem);
        if let Ok(mut s) = sh.inflight.lock() {
            s.remove(&stem);
        }
    }
}

/// One attempt at a call with `process`, whatever happens in it.
fn attempt(sh: &Shared, stem: &str, process: impl FnOnce() -> Result<Outcome, ProcessError>) {
    let stats = &sh.stats;
    let crashes = match sh.reader.begin_attempt(stem) {
        Ok(n) => n,
        Err(e) => {
            // Cannot even note the attempt (disk full?): treat as a transient failure.
            stats.failed.fetch_add(1, Ordering::Relaxed);
            retry_later(sh, stem, &e.to_string(), false);
            return;
        }
    };
    if crashes >= MAX_CRASHES {
        give_up(
            sh,
            stem,
            &format!(
                "the recorder stopped {crashes} times while processing this call (killed, out of \
                 memory, or a crash); not tried again"
            ),
        );
        return;
    }
    let res = catch_unwind(AssertUnwindSafe(process));
    match res {
        Ok(Ok(outcome)) => {
            if let Ok(mut r) = sh.retries.lock() {
                r.forget(stem);
            }
            match outcome {
                Outcome::Written(_) => {
                    stats.written.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::WrittenQuarantined(..) => {
                    stats.written.fetch_add(1, Ordering::Relaxed);
                    stats.quarantined.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Quarantined(_) => {
                    stats.quarantined.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Gone => debug!(call = stem, "already processed"),
            }
        }
        Ok(Err(e)) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            retry_later(sh, stem, &e.to_string(), e.is_disk_full());
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            give_up(
                sh,
                stem,
                &format!("the recorder panicked on this call: {msg}"),
            );
        }
    }
}

/// Schedules the next attempt at `stem` after a transient failure, or gives up after too many.
fn retry_later(sh: &Shared, stem: &str, err: &str, disk_full: bool) {
    let verdict = match sh.retries.lock() {
        Ok(mut r) => r.failed(stem, disk_full, Instant::now()),
        Err(_) => return,
    };
    match verdict {
        Verdict::Retry { after, failures } => error!(
            call = stem,
            failures,
            retry_in_s = after.as_secs(),
            "recording failed, will retry: {err}"
        ),
        Verdict::GiveUp { failures } => give_up(
            sh,
            stem,
            &format!("gave up after {failures} failed attempts; last error: {err}"),
        ),
    }
}

/// Quarantines `stem` for good. If even that fails, the call waits out a backoff instead of looping.
fn give_up(sh: &Shared, stem: &str, reason: &str) {
    match sh.reader.quarantine(stem, reason) {
        Ok(to) => {
            sh.stats.quarantined.fetch_add(1, Ordering::Relaxed);
            sh.stats.given_up.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut r) = sh.retries.lock() {
                r.forget(stem);
            }
            error!(call = stem, %reason, quarantine = %to.display(), "call quarantined");
        }
        Err(e) => {
            error!(call = stem, %reason, "cannot quarantine the call: {e}");
            if let Ok(mut r) = sh.retries.lock() {
                r.failed(stem, true, Instant::now());
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::pattern::Pattern;
    use crate::process::MixMethod;
    use crate::retry::MAX_FAILURES;
    use crate::spool::{PcapFormat, Spool, StreamInfo};
    use std::time::UNIX_EPOCH;

    fn setup(dir: &Path) -> (Shared, String) {
        let spool = Spool::open(dir.join("spool"), PcapFormat::Raw)
            .unwrap()
            .with_fsync(false);
        let mut w = spool.create_call("c", "", UNIX_EPOCH).unwrap();
        w.add_stream(StreamInfo::default()).unwrap();
        let stem = w.stem().to_owned();
        w.finish(UNIX_EPOCH).unwrap();
        let reader = SpoolReader::new(dir.join("spool"));
        reader.ensure_dirs().unwrap();
        let sh = Shared {
            reader,
            output: OutputConfig {
                output_dir: dir.join("out"),
                pattern: Pattern::parse("%c-%t").unwrap(),
                mixed: true,
                single: false,
                mix_method: MixMethod::Direct,
                limits: Limits::default(),
            },
            inflight: Mutex::new(HashSet::new()),
            retries: Mutex::new(Retries::default()),
            stats: Arc::default(),
        };
        (sh, stem)
    }

    fn quarantined(sh: &Shared, stem: &str) -> Option<String> {
        std::fs::read_to_string(sh.reader.reason_path(stem)).ok()
    }

    #[test]
    fn a_panic_quarantines_the_call_and_the_worker_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (sh, stem) = setup(dir.path());
        attempt(&sh, &stem, || panic!("boom"));
        assert!(quarantined(&sh, &stem)
            .unwrap()
            .contains("panicked on this call: boom"));
        assert!(sh.reader.scan().unwrap().is_empty(), "not retried");
        assert_eq!(sh.stats.given_up.load(Ordering::Relaxed), 1);
        // The same thread goes on with the next call.
        attempt(&sh, "other", || Ok(Outcome::Gone));
    }

    #[test]
    fn a_call_that_keeps_killing_the_recorder_is_quarantined_untried() {
        let dir = tempfile::tempdir().unwrap();
        let (sh, stem) = setup(dir.path());
        // Three attempts that never ended: the process died each time (out of memory, say).
        for _ in 0..MAX_CRASHES {
            sh.reader.begin_attempt(&stem).unwrap();
        }
        attempt(&sh, &stem, || panic!("must not be tried again"));
        let reason = quarantined(&sh, &stem).unwrap();
        assert!(reason.contains("stopped 3 times"), "{reason}");
    }

    #[test]
    fn transient_failures_back_off_then_give_up() {
        let dir = tempfile::tempdir().unwrap();
        let (sh, stem) = setup(dir.path());
        let (tx, rx) = bounded(16);
        let d = Dispatcher {
            shared: Arc::new(Shared {
                reader: sh.reader.clone(),
                output: sh.output.clone(),
                inflight: Mutex::new(HashSet::new()),
                retries: Mutex::new(Retries::default()),
                stats: Arc::default(),
            }),
            work: tx,
        };
        let eio = || {
            Err(ProcessError::Output {
                path: "x".into(),
                source: std::io::Error::from_raw_os_error(libc::EIO),
            })
        };
        attempt(&d.shared, &stem, eio);
        sh.reader.end_attempt(&stem);
        d.rescan();
        assert!(
            rx.try_recv().is_err(),
            "not dispatched again before its delay"
        );
        assert!(quarantined(&sh, &stem).is_none());
        for _ in 1..MAX_FAILURES {
            attempt(&d.shared, &stem, eio);
            sh.reader.end_attempt(&stem);
        }
        let reason = quarantined(&sh, &stem).unwrap();
        assert!(
            reason.contains("gave up after 12 failed attempts"),
            "{reason}"
        );
        assert_eq!(
            d.shared.stats.failed.load(Ordering::Relaxed),
            u64::from(MAX_FAILURES)
        );
    }
}
