//! A worker that panics is restarted with its flows; one that keeps panicking is declared dead,
//! and the daemon then exits non-zero (a supervisor restarts it) rather than run with calls that
//! silently lost their media.
//!
//! A panic on the packet path can only come from a bug (parsers return errors, arithmetic on
//! packet fields is checked, release builds keep overflow checks), but a packet that finds
//! such a bug may come again: the budget stops a crash loop from pinning a core.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::time::Millis;

/// More panics than this within [`PANIC_WINDOW`] and the worker is dead.
pub const PANIC_BUDGET: usize = 5;
pub const PANIC_WINDOW: Duration = Duration::from_secs(60);

/// One worker's health, shared with the daemon (`/ready`, `/metrics`).
#[derive(Debug, Default)]
pub struct WorkerHealth {
    panics: AtomicU64,
    dead: AtomicBool,
    /// When the recent panics happened (only the worker writes; the lock is never contended).
    recent: Mutex<VecDeque<Millis>>,
}

impl WorkerHealth {
    /// Records a panic at `now`; false when the worker is over its budget and must stop.
    pub fn on_panic(&self, now: Millis) -> bool {
        self.panics.fetch_add(1, Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|t| now.since(*t) >= PANIC_WINDOW)
        {
            recent.pop_front();
        }
        let alive = recent.len() <= PANIC_BUDGET;
        if !alive {
            self.dead.store(true, Relaxed);
        }
        alive
    }

    /// Marks the worker dead (it could not recover).
    pub fn set_dead(&self) {
        self.dead.store(true, Relaxed);
    }

    pub fn panics(&self) -> u64 {
        self.panics.load(Relaxed)
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_budget_is_fatal_and_old_panics_are_forgiven() {
        let h = WorkerHealth::default();
        for k in 0..PANIC_BUDGET as u64 {
            assert!(h.on_panic(Millis(k)));
        }
        // Spread out, panics never add up.
        let later = Millis(PANIC_WINDOW.as_millis() as u64 + 10);
        assert!(h.on_panic(later));
        assert!(!h.is_dead());
        for k in 0..PANIC_BUDGET as u64 - 1 {
            assert!(h.on_panic(Millis(later.0 + k)));
        }
        assert!(!h.on_panic(Millis(later.0 + 100)));
        assert!(h.is_dead());
        assert_eq!(h.panics(), 2 * PANIC_BUDGET as u64 + 1);
    }
}
