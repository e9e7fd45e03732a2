//! Packet indexes: the SRTP rollover counter and its estimate from a 16-bit sequence number
//! (RFC 3711 §3.3.1 and Appendix A).

use super::error::SrtpError;

/// RFC 3711 Appendix A: the ROC a packet with sequence number `seq` most likely belongs to, given
/// the highest sequence number `s_l` seen so far under rollover counter `roc`. `None` when that is
/// before ROC 0 or past the last ROC.
pub fn estimate_roc(roc: u32, s_l: u16, seq: u16) -> Option<u32> {
    let (s_l, seq) = (i32::from(s_l), i32::from(seq));
    if s_l < 32768 {
        if seq - s_l > 32768 {
            roc.checked_sub(1)
        } else {
            Some(roc)
        }
    } else if s_l - 32768 > seq {
        roc.checked_add(1)
    } else {
        Some(roc)
    }
}

/// The 48-bit SRTP index of the highest packet of one SSRC, for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RocTracker {
    roc: u32,
    s_l: u16,
}

impl RocTracker {
    /// A stream whose first packet has sequence number `seq`, under ROC `roc` (0 for SDES).
    pub fn new(roc: u32, seq: u16) -> RocTracker {
        RocTracker { roc, s_l: seq }
    }

    pub fn roc(&self) -> u32 {
        self.roc
    }

    /// The index of a packet with sequence number `seq` (not yet accepted).
    pub fn estimate(&self, seq: u16) -> Result<u64, SrtpError> {
        match estimate_roc(self.roc, self.s_l, seq) {
            Some(v) => Ok(u64::from(v) << 16 | u64::from(seq)),
            // Before ROC 0: older than anything this stream can have sent.
            None if self.roc == 0 => Err(SrtpError::Replay {
                index: u64::from(seq),
            }),
            None => Err(SrtpError::IndexExhausted),
        }
    }

    /// Records an accepted (authenticated, or sent) packet's index.
    pub fn update(&mut self, index: u64) {
        let highest = u64::from(self.roc) << 16 | u64::from(self.s_l);
        if index > highest {
            self.roc = (index >> 16) as u32;
            self.s_l = index as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_follows_appendix_a() {
        // In order, around the wrap, both ways.
        assert_eq!(estimate_roc(5, 100, 101), Some(5));
        assert_eq!(estimate_roc(5, 65535, 0), Some(6));
        assert_eq!(estimate_roc(5, 65000, 100), Some(6));
        assert_eq!(estimate_roc(6, 2, 65534), Some(5));
        assert_eq!(estimate_roc(6, 100, 32868), Some(6));
        assert_eq!(estimate_roc(6, 100, 32869), Some(5));
        assert_eq!(estimate_roc(6, 40000, 8000), Some(6));
        assert_eq!(estimate_roc(6, 40000, 7000), Some(7));
        // At the ends of the ROC range.
        assert_eq!(estimate_roc(0, 10, 60000), None);
        assert_eq!(estimate_roc(u32::MAX, 60000, 10), None);
    }

    #[test]
    fn a_tracker_rolls_over_and_takes_late_packets_from_the_previous_roc() {
        let mut t = RocTracker::new(0, 65534);
        for seq in [65534u16, 65535, 0, 1] {
            let i = t.estimate(seq).expect("in range");
            t.update(i);
        }
        assert_eq!(t.roc(), 1);
        assert_eq!(t.estimate(65535), Ok(65535));
        assert_eq!(t.estimate(2), Ok(1 << 16 | 2));
        // A late packet does not move the tracker back.
        t.update(65535);
        assert_eq!(t.estimate(3), Ok(1 << 16 | 3));
        assert!(matches!(
            RocTracker::new(0, 5).estimate(60000),
            Err(SrtpError::Replay { .. })
        ));
        assert_eq!(
            RocTracker::new(u32::MAX, 60000).estimate(1),
            Err(SrtpError::IndexExhausted)
        );
    }
}
