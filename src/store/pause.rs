//! When the writer stops trying: after `--redis-allowed-errors` consecutive failures it pauses
//! for `--redis-disable-time`, then tries again (sans-IO: the writer passes the time in).

use std::time::{Duration, Instant};

/// Consecutive errors and the pause they led to.
#[derive(Debug)]
pub struct Pause {
    /// `None`: never pause (rtpengine's -1).
    allowed_errors: Option<u32>,
    disable_time: Duration,
    consecutive_errors: u32,
    until: Option<Instant>,
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterError {
    KeepTrying,
    Paused,
}

impl Pause {
    pub fn new(allowed_errors: Option<u32>, disable_time: Duration) -> Pause {
        Pause {
            allowed_errors,
            disable_time,
            consecutive_errors: 0,
            until: None,
        }
    }

    /// Whether the writer may talk to Redis at `now`; the first call after a pause ends it
    /// (returns true once, with the error count cleared).
    pub fn may_write(&mut self, now: Instant) -> bool {
        match self.until {
            Some(until) if now < until => false,
            Some(_) => {
                self.until = None;
                self.consecutive_errors = 0;
                true
            }
            None => true,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.until.is_some()
    }

    pub fn on_success(&mut self) {
        self.consecutive_errors = 0;
    }

    pub fn on_error(&mut self, now: Instant) -> AfterError {
        self.consecutive_errors = self.consecutive_errors.saturating_add(1);
        if self
            .allowed_errors
            .is_some_and(|n| self.consecutive_errors > n)
        {
            self.until = Some(now + self.disable_time);
            AfterError::Paused
        } else {
            AfterError::KeepTrying
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_after_the_allowed_errors_and_resumes_after_the_disable_time() {
        let t0 = Instant::now();
        let mut p = Pause::new(Some(2), Duration::from_secs(10));
        assert!(p.may_write(t0));
        assert_eq!(p.on_error(t0), AfterError::KeepTrying);
        assert_eq!(p.on_error(t0), AfterError::KeepTrying);
        assert_eq!(p.on_error(t0), AfterError::Paused);
        assert!(!p.may_write(t0 + Duration::from_secs(9)));
        assert!(p.is_paused());
        assert!(p.may_write(t0 + Duration::from_secs(10)));
        assert!(!p.is_paused());
        // The count starts again after the pause.
        assert_eq!(p.on_error(t0), AfterError::KeepTrying);
    }

    #[test]
    fn a_success_clears_the_count_and_minus_one_never_pauses() {
        let t0 = Instant::now();
        let mut p = Pause::new(Some(1), Duration::from_secs(1));
        assert_eq!(p.on_error(t0), AfterError::KeepTrying);
        p.on_success();
        assert_eq!(p.on_error(t0), AfterError::KeepTrying);
        let mut never = Pause::new(None, Duration::from_secs(1));
        for _ in 0..100 {
            assert_eq!(never.on_error(t0), AfterError::KeepTrying);
        }
        assert!(never.may_write(t0));
    }
}
