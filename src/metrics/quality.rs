//! Call quality from the peers' RTCP reception reports: per-stream jitter and loss, a MOS
//! estimate, and the histograms `/metrics` shows of streams that ended.
//!
//! The MOS is an **estimate**: a simplified ITU-T G.107 E-model (Cole & Rosenbluth) fed only
//! with what a relay sees in RTCP. Delay is not measured, so the effective latency is
//! `2 × jitter + 10 ms`; then `R = 93.2 − latency/40` (or `93.2 − (latency − 120)/10` above
//! 160 ms), minus `2.5 × loss %`, clamped to 0..100, and
//! `MOS = 1 + 0.035 R + 7·10⁻⁶ R (R − 60)(100 − R)`. Jitter is converted from RTP timestamp
//! units at 8000 Hz (narrowband audio); wideband codecs report twice the units, so their jitter
//! reads high.

use crate::flow::counters::RtcpReport;

/// Media clock assumed when converting RTCP jitter to seconds.
pub const CLOCK_RATE: u32 = 8000;

/// One stream's quality, from its peer's last reception report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamQuality {
    pub jitter_secs: f64,
    /// Loss in the last report interval, 0..1.
    pub loss_ratio: f64,
    pub cumulative_lost: u64,
    pub mos: f64,
}

impl StreamQuality {
    pub fn from_report(r: &RtcpReport) -> StreamQuality {
        let jitter_secs = r.jitter_secs(CLOCK_RATE);
        let loss_ratio = r.loss_ratio();
        StreamQuality {
            jitter_secs,
            loss_ratio,
            cumulative_lost: r.cumulative_lost,
            mos: mos_estimate(loss_ratio, jitter_secs),
        }
    }
}

/// The E-model estimate described in the module doc, from loss (0..1) and jitter (seconds).
pub fn mos_estimate(loss_ratio: f64, jitter_secs: f64) -> f64 {
    let latency_ms = 2.0 * jitter_secs * 1000.0 + 10.0;
    let mut r = if latency_ms < 160.0 {
        93.2 - latency_ms / 40.0
    } else {
        93.2 - (latency_ms - 120.0) / 10.0
    };
    r -= 2.5 * loss_ratio * 100.0;
    let r = r.clamp(0.0, 100.0);
    1.0 + 0.035 * r + 0.000_007 * r * (r - 60.0) * (100.0 - r)
}

/// Upper bounds of the jitter histogram, seconds.
pub const JITTER_BOUNDS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16];
/// Upper bounds of the loss histogram, ratio.
pub const LOSS_BOUNDS: [f64; 7] = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];

/// A histogram with fixed bounds, as plain numbers (the session layer keeps it; no clock, no
/// lock): per-bucket counts (not cumulative), the last one for values above every bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    /// `(upper bound, count in this bucket)` pairs, `+Inf` last.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }
}

/// What an ended call adds to [`EndedQuality`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallEnd {
    /// Each RTP stream whose peer sent reception reports.
    pub qualities: Vec<StreamQuality>,
    /// RTP streams that received packets while the stream they feed received none (rtpengine's
    /// one-way count).
    pub one_way_streams: u64,
    /// Pairs of RTP streams where neither received a packet (rtpengine halves its count of
    /// such streams per call).
    pub zero_packet_streams: u64,
}

/// Quality of the streams of calls that ended (those whose peer sent RTCP reports), observed
/// once per stream at call end: a scrape never changes it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedQuality {
    pub jitter: Histogram,
    pub loss: Histogram,
    /// rtpengine's MOS sums: Σ MOS, Σ MOS², samples.
    pub mos_sum: f64,
    pub mos_squared_sum: f64,
    pub mos_samples: u64,
    /// rtpengine's `one_way_sessions_total` and `zero_packet_streams_total`.
    pub one_way_streams: u64,
    pub zero_packet_streams: u64,
}

impl Default for EndedQuality {
    fn default() -> Self {
        EndedQuality {
            jitter: Histogram::new(&JITTER_BOUNDS),
            loss: Histogram::new(&LOSS_BOUNDS),
            mos_sum: 0.0,
            mos_squared_sum: 0.0,
            mos_samples: 0,
            one_way_streams: 0,
            zero_packet_streams: 0,
        }
    }
}

impl EndedQuality {
    pub fn observe_call(&mut self, c: &CallEnd) {
        for q in &c.qualities {
            self.observe(q);
        }
        self.one_way_streams += c.one_way_streams;
        self.zero_packet_streams += c.zero_packet_streams;
    }

    pub fn observe(&mut self, q: &StreamQuality) {
        self.jitter.observe(q.jitter_secs);
        self.loss.observe(q.loss_ratio);
        self.mos_sum += q.mos;
        self.mos_squared_sum += q.mos * q.mos;
        self.mos_samples += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mos_falls_with_loss_and_jitter() {
        let clean = mos_estimate(0.0, 0.0);
        assert!(clean > 4.3 && clean < 4.5, "{clean}");
        let lossy = mos_estimate(0.05, 0.0);
        assert!(lossy < clean - 0.3, "{lossy}");
        let jittery = mos_estimate(0.0, 0.1);
        assert!(jittery < clean, "{jittery}");
        let hopeless = mos_estimate(1.0, 1.0);
        assert!((hopeless - 1.0).abs() < 1e-9, "{hopeless}");
    }

    #[test]
    fn histogram_puts_values_in_their_bucket() {
        let mut h = Histogram::new(&LOSS_BOUNDS);
        h.observe(0.0);
        h.observe(0.03);
        h.observe(0.9);
        assert_eq!(h.count, 3);
        let b = h.buckets();
        assert_eq!(b[0], (0.0, 1));
        assert_eq!(b[4], (0.05, 1));
        assert_eq!(b[7], (f64::INFINITY, 1));
    }

    #[test]
    fn a_report_becomes_a_quality() {
        let r = RtcpReport {
            reports: 3,
            fraction_lost: 26,
            cumulative_lost: 40,
            jitter: 160,
        };
        let q = StreamQuality::from_report(&r);
        assert!((q.jitter_secs - 0.02).abs() < 1e-9);
        assert!((q.loss_ratio - 26.0 / 256.0).abs() < 1e-9);
        assert_eq!(q.cumulative_lost, 40);
        assert!(q.mos < 4.0 && q.mos > 1.0, "{}", q.mos);
    }
}
