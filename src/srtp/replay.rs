//! The replay window of RFC 3711 §3.3.2: a bitmap of the last 64 or 128 indexes below the highest
//! one accepted.

use super::error::SrtpError;

/// A sliding window over packet indexes (SRTP 48-bit, SRTCP 31-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    /// The highest index accepted, if any.
    top: Option<u64>,
    /// Bit `d` set: index `top - d` was accepted.
    seen: u128,
    size: u32,
}

impl ReplayWindow {
    /// A window of `size` packets: 64 or 128.
    pub fn new(size: u32) -> Result<ReplayWindow, SrtpError> {
        if size != 64 && size != 128 {
            return Err(SrtpError::BadWindow(size));
        }
        Ok(ReplayWindow {
            top: None,
            seen: 0,
            size,
        })
    }

    /// Whether `index` may be accepted: new, and not older than the window.
    pub fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(top) = self.top else {
            return Ok(());
        };
        if index > top {
            return Ok(());
        }
        let d = top - index;
        if d >= u64::from(self.size) || self.seen >> d & 1 == 1 {
            return Err(SrtpError::Replay { index });
        }
        Ok(())
    }

    /// Marks `index` as received (after it authenticated).
    pub fn accept(&mut self, index: u64) {
        let mask = if self.size >= 128 {
            u128::MAX
        } else {
            (1u128 << self.size) - 1
        };
        match self.top {
            None => {
                self.top = Some(index);
                self.seen = 1;
            }
            Some(top) if index > top => {
                let shift = index - top;
                self.seen = if shift >= 128 { 0 } else { self.seen << shift };
                self.seen = (self.seen | 1) & mask;
                self.top = Some(index);
            }
            Some(top) => {
                let d = top - index;
                if d < u64::from(self.size) {
                    self.seen |= 1 << d;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_packets_older_than_the_window_are_refused() {
        for size in [64u32, 128] {
            let mut w = ReplayWindow::new(size).expect("valid size");
            for i in [1000u64, 1002, 1001] {
                assert_eq!(w.check(i), Ok(()));
                w.accept(i);
            }
            for i in [1000u64, 1001, 1002] {
                assert_eq!(w.check(i), Err(SrtpError::Replay { index: i }));
            }
            // Inside the window but never seen.
            assert_eq!(w.check(1002 - u64::from(size) + 1), Ok(()));
            // Just outside it.
            assert!(w.check(1002 - u64::from(size)).is_err());
            // A jump further than the bitmap clears it.
            w.accept(5000);
            assert_eq!(w.check(4999), Ok(()));
            assert!(w.check(5000).is_err());
        }
        assert_eq!(ReplayWindow::new(32), Err(SrtpError::BadWindow(32)));
    }

    #[test]
    fn the_128_window_keeps_what_the_64_window_forgets() {
        let mut w64 = ReplayWindow::new(64).expect("valid");
        let mut w128 = ReplayWindow::new(128).expect("valid");
        for w in [&mut w64, &mut w128] {
            w.accept(10);
            w.accept(110);
        }
        assert!(w64.check(10).is_err(), "too old for 64");
        assert!(w128.check(10).is_err(), "seen, inside 128");
        assert_eq!(w128.check(11), Ok(()));
        assert!(w64.check(11).is_err());
    }
}
