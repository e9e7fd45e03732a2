//! When a call that failed is tried again, and when the recorder gives up on it. Time is passed in.
//!
//! - Permanent errors never get here: the call is quarantined at once (see
//!   [`crate::process::ProcessError::is_permanent`]).
//! - A full disk (ENOSPC, EDQUOT) is retried without limit, every [`FIRST_DELAY`] doubling up to
//!   [`DISK_FULL_MAX_DELAY`]: the call is fine, and it is written as soon as there is space again.
//! - Any other error (EIO, EACCES, EMFILE, ...) is retried every [`FIRST_DELAY`] doubling up to
//!   [`MAX_DELAY`], at most [`MAX_FAILURES`] times (about 6 hours); then the call is quarantined with the
//!   last error, so no call is retried forever.
//! - A call during which the recorder itself died (killed, out of memory, a crash) [`MAX_CRASHES`] times
//!   is quarantined before it is tried again (counted on disk, see
//!   [`crate::spool::SpoolReader::begin_attempt`]); a panic while processing a call quarantines it at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Delay after the first failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(30);
/// Longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Longest delay between two attempts while the disk is full.
pub const DISK_FULL_MAX_DELAY: Duration = Duration::from_secs(300);
/// Failures (other than a full disk) after which the call is quarantined.
pub const MAX_FAILURES: u32 = 12;
/// Attempts that never ended (the recorder died) after which the call is quarantined.
pub const MAX_CRASHES: u32 = 3;

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again, not before `after`.
    Retry { after: Duration, failures: u32 },
    /// Stop trying: quarantine.
    GiveUp { failures: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    not_before: Instant,
}

/// Failed calls waiting for their next attempt.
#[derive(Debug, Default)]
pub struct Retries {
    calls: HashMap<String, Entry>,
}

impl Retries {
    /// True if `stem` may be tried at `now` (it never failed, or its delay is over).
    pub fn ready(&self, stem: &str, now: Instant) -> bool {
        self.calls.get(stem).is_none_or(|e| now >= e.not_before)
    }

    /// Records a failure of `stem` at `now`.
    pub fn failed(&mut self, stem: &str, disk_full: bool, now: Instant) -> Verdict {
        let e = self.calls.entry(stem.to_owned()).or_insert(Entry {
            failures: 0,
            not_before: now,
        });
        e.failures = e.failures.saturating_add(1);
        let failures = e.failures;
        if !disk_full && failures >= MAX_FAILURES {
            self.calls.remove(stem);
            return Verdict::GiveUp { failures };
        }
        let cap = if disk_full {
            DISK_FULL_MAX_DELAY
        } else {
            MAX_DELAY
        };
        let after = FIRST_DELAY
            .saturating_mul(1u32 << (failures - 1).min(16))
            .min(cap);
        e.not_before = now + after;
        Verdict::Retry { after, failures }
    }

    /// Forgets `stem` (it succeeded, was quarantined, or left the spool).
    pub fn forget(&mut self, stem: &str) {
        self.calls.remove(stem);
    }

    /// Forgets every call for which `keep` is false (calls no longer in the spool).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.calls.retain(|k, _| keep(k));
    }

    /// Calls waiting.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True if no call is waiting.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_gives_up() {
        let t0 = Instant::now();
        let mut r = Retries::default();
        assert!(r.ready("c", t0));
        let mut now = t0;
        let mut delays = Vec::new();
        let mut gave_up = false;
        for _ in 0..100 {
            match r.failed("c", false, now) {
                Verdict::Retry { after, .. } => {
                    assert!(!r.ready("c", now), "waits");
                    now += after;
                    assert!(r.ready("c", now));
                    delays.push(after.as_secs());
                }
                Verdict::GiveUp { failures } => {
                    assert_eq!(failures, MAX_FAILURES);
                    gave_up = true;
                    break;
                }
            }
        }
        assert!(gave_up, "never gave up: {delays:?}");
        assert_eq!(
            delays,
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
        );
        assert!(r.is_empty() && r.ready("c", t0), "forgotten once given up");
    }

    #[test]
    fn a_full_disk_is_waited_out() {
        let t0 = Instant::now();
        let mut r = Retries::default();
        for _ in 0..100 {
            let v = r.failed("c", true, t0);
            assert!(matches!(v, Verdict::Retry { after, .. } if after <= DISK_FULL_MAX_DELAY));
        }
        r.forget("c");
        assert!(r.ready("c", t0));
        r.failed("a", false, t0);
        r.failed("b", false, t0);
        r.retain(|s| s == "b");
        assert_eq!(r.len(), 1);
    }
}
