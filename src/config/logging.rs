//! Logging setup: the `-L` syslog level mapped onto `tracing` levels, always to stderr, as text
//! lines or one JSON object a line (`--log-format`). The level can change at run time
//! (`rtpengine-ctl set loglevel`) through a reload handle kept here.
//!
//! Syslog output is not supported: without `--log-stderr` rtprelay still logs to stderr and says
//! so once. `RUST_LOG`, when set, overrides the level (e.g. `RUST_LOG=rtprelay::control=debug`)
//! until a level is set at run time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use super::Config;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// tracing's human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the spans it ran in (a call's `call_id`).
    Json,
}

/// The `tracing` level for a syslog level: 7 debug; 6 and 5 (notice) info; 4 warn; 0-3 error.
pub fn level_for(syslog_level: u8) -> tracing::Level {
    match syslog_level {
        7.. => tracing::Level::DEBUG,
        5 | 6 => tracing::Level::INFO,
        4 => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    }
}

/// The installed subscriber's filter, for run-time level changes.
struct LevelControl {
    handle: reload::Handle<EnvFilter, Registry>,
    current: AtomicI64,
}

static LEVEL: OnceLock<LevelControl> = OnceLock::new();

/// Installs the global subscriber. Call once, early in main; a second call does nothing.
pub fn init_logging(cfg: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level_for(cfg.log_level).as_str()));
    let (filter, handle) = reload::Layer::new(filter);
    let lines = match cfg.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init()
        .is_ok();
    if !installed {
        return;
    }
    let _ = LEVEL.set(LevelControl {
        handle,
        current: AtomicI64::new(i64::from(cfg.log_level)),
    });
    if !cfg.log_stderr {
        tracing::info!("logging to syslog is not supported: logging to stderr");
    }
}

/// The syslog-style level in effect (what `-L` or the last [`set_level`] gave).
pub fn current_level() -> i64 {
    LEVEL.get().map_or(6, |l| l.current.load(Ordering::Relaxed))
}

/// Changes the level at run time (syslog numbers; below 0 counts as 0, above 7 as 7). Without
/// an installed subscriber (tests) only the number changes.
pub fn set_level(level: i64) {
    let Some(l) = LEVEL.get() else {
        return;
    };
    l.current.store(level, Ordering::Relaxed);
    let syslog = u8::try_from(level.clamp(0, 7)).unwrap_or(7);
    if let Err(e) = l.handle.reload(EnvFilter::new(level_for(syslog).as_str())) {
        tracing::warn!(error = %e, "cannot change the log level");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn syslog_levels() {
        assert_eq!(level_for(7), tracing::Level::DEBUG);
        assert_eq!(level_for(6), tracing::Level::INFO);
        assert_eq!(level_for(5), tracing::Level::INFO);
        assert_eq!(level_for(4), tracing::Level::WARN);
        assert_eq!(level_for(3), tracing::Level::ERROR);
        assert_eq!(level_for(0), tracing::Level::ERROR);
    }
}
