//! When a drain ends the daemon: SIGTERM with `--drain-grace` starts a drain and gives the calls
//! that long; a second SIGTERM, or a zero grace, stops at once. A drain started from the CLI ends
//! the daemon when its last call is gone (no deadline: a SIGTERM cuts it short).

use std::time::{Duration, Instant};

use crate::daemon::control::Control;

/// Watches the drain from the daemon's main loop.
#[derive(Debug)]
pub struct DrainWatch {
    grace: Duration,
    /// Set by the first SIGTERM when there is a grace period.
    deadline: Option<Instant>,
}

impl DrainWatch {
    pub fn new(grace: Duration) -> DrainWatch {
        DrainWatch {
            grace,
            deadline: None,
        }
    }

    /// Called on every turn of the main loop with whether a SIGTERM came since the last turn;
    /// true when the daemon should stop now.
    pub fn should_stop(&mut self, sigterm: bool, control: &Control, now: Instant) -> bool {
        if sigterm {
            if self.grace.is_zero() || self.deadline.is_some() {
                return true;
            }
            control.start_drain();
            self.deadline = Some(now + self.grace);
            tracing::info!(grace_secs = self.grace.as_secs(), "SIGTERM: draining");
        }
        let (draining, calls) = control.drain_state();
        if draining && calls == 0 {
            tracing::info!("drained: no calls left, exiting");
            return true;
        }
        match self.deadline {
            Some(d) if now >= d => {
                tracing::warn!(calls, "drain grace period over, exiting with calls left");
                true
            }
            _ => false,
        }
    }
}
