//! Time as the sans-IO core sees it: values passed in, never read from a clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic milliseconds since the relay started. `0` is the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// This instant plus `d`, saturating.
    pub fn plus(self, d: Duration) -> Millis {
        Millis(self.0.saturating_add(d.as_millis() as u64))
    }
    /// Time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// The current time, both monotonic (for timers) and wall-clock (for `created` fields in replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    pub mono: Millis,
    /// Microseconds since the Unix epoch.
    pub unix_us: u64,
}

/// The one real clock, used only by the I/O layers (main, workers, control transports).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
    pub fn mono(&self) -> Millis {
        Millis(self.start.elapsed().as_millis() as u64)
    }
    /// Monotonic microseconds since the start: for timing work shorter than a millisecond
    /// (NG request latency).
    pub fn mono_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
    pub fn now(&self) -> Now {
        let unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Now {
            mono: self.mono(),
            unix_us,
        }
    }
}
