//! `rtprelay`: parse the configuration, then run the daemon until SIGTERM/SIGINT.

use std::process::ExitCode;

use rtprelay::config::{logging, Config, LoadOutcome};

fn main() -> ExitCode {
    let mut cfg = match Config::load(std::env::args_os()) {
        Ok(LoadOutcome::Run(cfg)) => cfg,
        Ok(LoadOutcome::Exit { message }) => {
            println!("{message}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rtprelay: {e}");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if cfg.needs_host_addresses() {
        let host = rtprelay::sys::ifaddrs::host_addresses().unwrap_or_else(|e| {
            eprintln!("rtprelay: cannot list the host's addresses: {e}");
            Vec::new()
        });
        if let Err(e) = cfg.resolve_interfaces(&host) {
            eprintln!("rtprelay: {e}");
            return ExitCode::from(2);
        }
    }
    logging::init_logging(&cfg);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    match rtprelay::daemon::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("rtprelay: {e}");
            ExitCode::from(1)
        }
    }
}
