//! SDP endpoints the relay will not send to (see [`crate::guard`]): such an endpoint is treated
//! as rtpengine treats a missing address, so the stream learns its peer from the first packets.
//! Each refusal is counted; a call logs its first one, and the log as a whole is rate-limited so
//! a flood of hostile offers cannot flood it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::guard::Refusal;
use crate::sdp::ice::{Candidate, Transport};
use crate::session::engine::Engine;
use crate::time::{Millis, Now};

/// At most this many refusal log lines per [`LOG_WINDOW`], for all calls together.
const LOG_BURST: u32 = 20;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// A fixed-window limit on log lines (sans-IO: time comes in).
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    window_start: Option<Millis>,
    used: u32,
    /// Lines held back since the last one written.
    pub(crate) suppressed: u64,
}

impl LogLimit {
    /// Whether a line may be written at `now`.
    pub(crate) fn allow(&mut self, now: Millis) -> bool {
        match self.window_start {
            Some(s) if now.since(s) < LOG_WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.used = 0;
            }
        }
        if self.used < LOG_BURST {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

impl Engine {
    /// `addr` (an endpoint from a party's SDP, which the relay reaches from its address `via`)
    /// if the policy lets media go there, else `None`.
    pub(crate) fn admit_target(
        &mut self,
        now: Now,
        call_id: &str,
        addr: SocketAddr,
        via: Option<IpAddr>,
    ) -> Option<SocketAddr> {
        let via = via.unwrap_or(IpAddr::from([0u8; 4]));
        let refusal = match self.cfg.policy.load().check(addr, via) {
            Ok(()) => return Some(addr),
            Err(r) => r,
        };
        self.count_refusal(refusal);
        let first = self
            .calls
            .get_mut(call_id)
            .is_some_and(|c| !std::mem::replace(&mut c.target_refused, true));
        if first && self.refusal_log.allow(now.mono) {
            let suppressed = std::mem::take(&mut self.refusal_log.suppressed);
            tracing::warn!(
                call_id = ?call_id,
                endpoint = %addr,
                reason = %refusal,
                suppressed,
                "SDP endpoint refused as a media target; the peer is learnt from its packets"
            );
        }
        None
    }

    /// Keeps the UDP candidates (with IP addresses) of a side that the relay may send its
    /// checks to: those the target policy admits, as for media. Refusals are not counted as
    /// refused targets (browsers list addresses that are no use from here); media is never sent
    /// to a candidate that did not answer a check anyway.
    pub(crate) fn keep_admitted_candidates(
        &self,
        candidates: &mut Vec<Candidate>,
        via: Option<IpAddr>,
    ) {
        let via = via.unwrap_or(IpAddr::from([0u8; 4]));
        let policy = self.cfg.policy.load();
        candidates.retain(|c| {
            c.transport == Transport::Udp
                && c.ip()
                    .is_some_and(|ip| policy.check(SocketAddr::new(ip, c.port), via).is_ok())
        });
    }

    fn count_refusal(&mut self, r: Refusal) {
        if let Some(n) = self.totals.targets_refused.get_mut(r.index()) {
            *n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::actions::MediaAction;
    use crate::session::ports::AcceptAll;
    use crate::session::tests::{at, oa, offer, production, sdp, text};
    use crate::session::Engine;

    /// The SDP endpoints the workers were told to send A's media to (latch `expected` of every
    /// flow opened or updated).
    fn expected_endpoints(e: &mut Engine) -> Vec<Option<SocketAddr>> {
        std::iter::from_fn(|| e.poll_action())
            .filter_map(|a| match a {
                MediaAction::Open { latch, .. } | MediaAction::Update { latch, .. } => {
                    Some(latch.expected)
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_offer_aimed_at_the_ng_port_is_learnt_instead() {
        let (mut e, mut b) = (production(), AcceptAll::default());
        // The attack of the issue: media (and the T.38 variant) aimed at the relay's NG socket.
        let bodies = [
            sdp("127.0.0.1", 22222),
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=image 22222 udptl t38\r\na=T38FaxVersion:0\r\n"
                .as_bytes()
                .to_vec(),
        ];
        for (k, body) in bodies.into_iter().enumerate() {
            let r = offer(
                &mut e,
                &mut b,
                at(0),
                oa(&format!("evil{k}"), "A", None, None, body),
            );
            assert_eq!(text(&r, "result"), "ok", "{r:?}");
            let ends = expected_endpoints(&mut e);
            assert!(!ends.is_empty());
            assert!(ends.iter().all(Option::is_none), "{ends:?}");
        }
        let refused = |r: Refusal| e.totals.targets_refused[r.index()];
        assert_eq!(refused(Refusal::OwnControl), 2, "RTP of both offers");
        assert_eq!(
            refused(Refusal::Loopback),
            1,
            "RTCP of the audio one (22223)"
        );
    }

    #[test]
    fn host_and_special_addresses_are_refused_and_peers_pass() {
        let (mut e, mut b) = (production(), AcceptAll::default());
        for (k, addr) in ["169.254.169.254", "203.0.113.1", "224.0.0.5"]
            .iter()
            .enumerate()
        {
            offer(
                &mut e,
                &mut b,
                at(0),
                oa(&format!("c{k}"), "A", None, None, sdp(addr, 4000)),
            );
            assert!(
                expected_endpoints(&mut e).iter().all(Option::is_none),
                "{addr}"
            );
        }
        offer(
            &mut e,
            &mut b,
            at(0),
            oa("ok", "A", None, None, sdp("192.0.2.10", 4000)),
        );
        let ends = expected_endpoints(&mut e);
        assert!(
            ends.contains(&Some("192.0.2.10:4000".parse().expect("addr"))),
            "{ends:?}"
        );
        let refused = |r: Refusal| e.totals.targets_refused[r.index()];
        assert_eq!(refused(Refusal::LinkLocal), 2);
        assert_eq!(refused(Refusal::HostAddress), 2);
        assert_eq!(refused(Refusal::Multicast), 2);
    }

    #[test]
    fn the_log_limit_allows_a_burst_per_window() {
        let mut l = LogLimit::default();
        let t0 = Millis(1_000);
        let allowed = (0..100).filter(|_| l.allow(t0)).count();
        assert_eq!(allowed, LOG_BURST as usize);
        assert_eq!(l.suppressed, 100 - u64::from(LOG_BURST));
        assert!(l.allow(t0.plus(LOG_WINDOW)));
    }
}
