//! Logging setup: the `-L` syslog level mapped onto `tracing` levels, always to stderr.
//!
//! Syslog output is not supported: without `--log-stderr` rtprelay still logs to stderr and says
//! so once. `RUST_LOG`, when set, overrides the level (e.g. `RUST_LOG=rtprelay::control=debug`).

use tracing_subscriber::EnvFilter;

use super::Config;

/// The `tracing` level for a syslog level: 7 debug; 6 and 5 (notice) info; 4 warn; 0-3 error.
pub fn level_for(syslog_level: u8) -> tracing::Level {
    match syslog_level {
        7.. => tracing::Level::DEBUG,
        5 | 6 => tracing::Level::INFO,
        4 => tracing::Level::WARN,
        _ => tracing::Level::ERROR,
    }
}

/// Installs the global subscriber. Call once, early in main; a second call does nothing.
pub fn init_logging(cfg: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level_for(cfg.log_level).as_str()));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .is_ok();
    if installed && !cfg.log_stderr {
        tracing::info!("logging to syslog is not supported: logging to stderr");
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
