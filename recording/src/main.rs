//! `rtprelay-recording`: turns the relay's recording spool into WAV files. Exits 0 on SIGTERM/SIGINT.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::thread;

use rtprelay_recording::config::Config;
use rtprelay_recording::daemon;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cfg = match Config::from_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rtprelay-recording: {e}");
            return ExitCode::from(2);
        }
    };
    let level = match cfg.log_level {
        0..=3 => "error",
        4 => "warn",
        5 | 6 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if !cfg.ignored_keys.is_empty() {
        info!(keys = ?cfg.ignored_keys, "config file keys not used by this recorder");
    }
    if !cfg.foreground {
        warn!("this daemon does not fork; run it under systemd or in a container");
    }

    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    match Signals::new([SIGTERM, SIGINT]) {
        Ok(mut signals) => {
            let spawned = thread::Builder::new()
                .name("rec-signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        info!(signal = sig, "shutdown requested");
                        let _ = stop_tx.send(());
                    }
                });
            if let Err(e) = spawned {
                error!("cannot start the signal thread: {e}");
                return ExitCode::FAILURE;
            }
        }
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    }

    match daemon::run(
        &cfg.spool_dir,
        cfg.output,
        cfg.num_threads,
        cfg.oneshot,
        stop_rx,
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
