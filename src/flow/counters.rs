//! A flow's counters: written by the worker that owns the flow (Relaxed), read by the session
//! layer for `query`, `statistics`, timeouts, `/metrics` and the end-of-call record.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Per-flow counters, shared between the owning worker and the session layer.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// RTP packets accepted.
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Malformed packets, and packets from a rejected source (strict source).
    pub errors: AtomicU64,
    /// Accepted but not forwarded: no egress or no target yet, queue full, send failed,
    /// `block media`.
    pub dropped: AtomicU64,
    /// `Millis` of the last accepted packet; 0 = never.
    pub last_packet_ms: AtomicU64,
    pub rtcp_packets: AtomicU64,
    pub rtcp_bytes: AtomicU64,
    /// SRTP/SRTCP packets that did not authenticate under the peer's key (wrong key, forged,
    /// damaged, unknown MKI); also counted in `errors`.
    pub srtp_auth_failures: AtomicU64,
    /// SRTP/SRTCP packets replayed or older than the replay window; also counted in `errors`.
    pub srtp_replays: AtomicU64,
    /// What the peer on this flow last reported (the first report block of its latest SR/RR)
    /// about the media it receives: see [`StreamCounters::rtcp_report`].
    pub rtcp: RtcpFigures,
}

/// The latest RTCP reception report of a flow's peer, kept as separate atomics: a reader may
/// see figures of two consecutive reports mixed, which is harmless for statistics.
#[derive(Debug, Default)]
pub struct RtcpFigures {
    /// Report blocks recorded; 0 = the peer never sent one.
    pub reports: AtomicU64,
    /// Fraction lost in the last interval, 1/256 units.
    pub fraction_lost: AtomicU64,
    /// Cumulative packets lost (negative values, from duplicates, read as 0).
    pub cumulative_lost: AtomicU64,
    /// Interarrival jitter, RTP timestamp units.
    pub jitter: AtomicU64,
}

/// A copy of [`RtcpFigures`] for readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcpReport {
    pub reports: u64,
    pub fraction_lost: u8,
    pub cumulative_lost: u64,
    pub jitter: u32,
}

impl RtcpReport {
    /// Loss in the last report interval, as a ratio 0..1.
    pub fn loss_ratio(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }
    /// Jitter in seconds, for a media clock of `clock_rate` Hz.
    pub fn jitter_secs(&self, clock_rate: u32) -> f64 {
        f64::from(self.jitter) / f64::from(clock_rate.max(1))
    }
}

impl StreamCounters {
    /// Keeps one report block's figures (called for RTCP packets only; no allocation, no lock).
    pub fn record_report(&self, block: &crate::wire::rtcp::ReportBlock) {
        let r = &self.rtcp;
        r.fraction_lost
            .store(u64::from(block.fraction_lost), Relaxed);
        r.cumulative_lost
            .store(block.cumulative_lost.max(0) as u64, Relaxed);
        r.jitter.store(u64::from(block.jitter), Relaxed);
        r.reports.fetch_add(1, Relaxed);
    }

    /// The latest report, if the peer sent any.
    pub fn rtcp_report(&self) -> Option<RtcpReport> {
        let r = &self.rtcp;
        let reports = r.reports.load(Relaxed);
        (reports > 0).then(|| RtcpReport {
            reports,
            fraction_lost: r.fraction_lost.load(Relaxed).min(255) as u8,
            cumulative_lost: r.cumulative_lost.load(Relaxed),
            jitter: r.jitter.load(Relaxed).min(u64::from(u32::MAX)) as u32,
        })
    }
}
