//! Restore: calls read back from the call store (after a restart, or taken over from another
//! node) become live calls again, on the same ports, latched on the sources they had learnt.
//!
//! Records come from Redis, which anyone with access to it can write: a record is checked
//! against this relay's limits and interfaces before anything is bound, and a port pair claimed
//! by two records goes to neither.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use crate::session::call::{Call, Echo, Leg, LocalPair, MediaSlot, Stream};
use crate::session::engine::{shard_of, Engine};
use crate::session::limits;
use crate::session::negotiate::MAX_MEDIA;
use crate::session::ports::PortBinder;
use crate::store::record::{CallRecord, LegRecord, MediaRecord, StreamTotals};
use crate::time::{Millis, Now};

/// Why a stored call was not restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    #[error("more legs, media or port pairs than a call may have")]
    TooBig,
    #[error("a leg names a peer or creator that does not exist")]
    BadLegIndex,
    #[error("port pair {0} is not on an address of this relay")]
    NotLocal(IpAddr),
    #[error("port pair {0}:{1} is claimed by another stored call")]
    Claimed(IpAddr, u16),
    #[error("port pair {0}:{1} cannot be bound again")]
    Unbound(IpAddr, u16),
}

/// What a restore did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Calls live again.
    pub calls: usize,
    /// Calls this relay has already (left as they are).
    pub present: usize,
    /// Calls not restored, with why.
    pub failed: Vec<(String, RestoreError)>,
}

impl Engine {
    /// Makes `records` live calls again: binds their port pairs (all of a call's, or the call is
    /// left out), opens their flows latched on the sources they had learnt, and counts on from
    /// their stored counters. Their timeouts start again at `now`.
    pub fn restore(
        &mut self,
        now: Now,
        records: &[CallRecord],
        binder: &mut dyn PortBinder,
    ) -> Restored {
        let mut out = Restored::default();
        let mut claimed: HashMap<(IpAddr, u16), usize> = HashMap::new();
        let mut candidates = Vec::new();
        for (i, rec) in records.iter().enumerate() {
            if self.calls.contains_key(&rec.call_id) {
                out.present += 1;
                continue;
            }
            match self.pairs_of(rec) {
                Ok(pairs) => {
                    for p in &pairs {
                        *claimed.entry(*p).or_default() += 1;
                    }
                    candidates.push((i, pairs));
                }
                Err(e) => out.failed.push((rec.call_id.clone(), e)),
            }
        }
        // A pair two records claim is neither's: one of them is stale or forged.
        let mut valid = Vec::new();
        for (i, pairs) in candidates {
            match pairs
                .iter()
                .find(|p| claimed.get(p).is_some_and(|&n| n > 1))
            {
                Some(&(ip, port)) => out
                    .failed
                    .push((records[i].call_id.clone(), RestoreError::Claimed(ip, port))),
                None => valid.push((i, pairs)),
            }
        }
        let wanted: Vec<_> = valid.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let taken = self.ports.adopt(&wanted, binder);
        for (i, pairs) in valid {
            let rec = &records[i];
            match pairs.iter().find(|p| !taken.contains(p)) {
                Some(&(ip, port)) => {
                    for &(ip, port) in pairs.iter().filter(|p| taken.contains(p)) {
                        self.ports.release(ip, port);
                    }
                    out.failed
                        .push((rec.call_id.clone(), RestoreError::Unbound(ip, port)));
                }
                None => {
                    self.install(now, rec);
                    out.calls += 1;
                }
            }
        }
        for (call_id, why) in &out.failed {
            tracing::debug!(call_id = ?call_id, error = %why, "stored call not restored (this pass)");
        }
        out
    }

    /// The port pairs a record holds, once it is checked against this relay's limits and
    /// interfaces.
    fn pairs_of(&self, rec: &CallRecord) -> Result<BTreeSet<(IpAddr, u16)>, RestoreError> {
        let legs = rec.legs.len();
        if legs > limits::MAX_LEGS || rec.legs.iter().any(|l| l.medias.len() > MAX_MEDIA) {
            return Err(RestoreError::TooBig);
        }
        let in_range = |i: Option<usize>| i.is_none_or(|i| i < legs);
        if rec
            .legs
            .iter()
            .any(|l| !in_range(l.peer) || !in_range(l.created_by))
        {
            return Err(RestoreError::BadLegIndex);
        }
        let mut pairs = BTreeSet::new();
        for m in rec.legs.iter().flat_map(|l| &l.medias) {
            let Some((local, _, port)) = m.local else {
                continue;
            };
            if !self.cfg.interfaces.iter().any(|i| i.local == local) {
                return Err(RestoreError::NotLocal(local));
            }
            if !pairs.insert((local, port)) {
                return Err(RestoreError::Claimed(local, port));
            }
        }
        if pairs.len() > limits::MAX_PAIRS {
            return Err(RestoreError::TooBig);
        }
        Ok(pairs)
    }

    /// Puts a checked record whose pairs are bound into the call table and opens its flows.
    fn install(&mut self, now: Now, rec: &CallRecord) {
        let age_ms = now.unix_us.saturating_sub(rec.created_us) / 1000;
        let created = Now {
            mono: Millis(now.mono.0.saturating_sub(age_ms)),
            unix_us: rec.created_us,
        };
        let call = Call {
            id: rec.call_id.clone(),
            created,
            // Timeouts count from the restore: media has had no chance to arrive meanwhile.
            last_signal: now,
            shard: shard_of(&rec.call_id),
            legs: rec.legs.iter().map(|l| leg_of(l, created)).collect(),
            destroy_at: None,
            recording: rec.recording,
            record_open: false,
            metadata: rec.metadata.clone(),
            block_media: rec.block_media,
            target_refused: false,
            learning: None,
            created_from: None,
        };
        self.calls.insert(rec.call_id.clone(), call);
        self.totals.calls_created += 1;
        for (l, leg) in rec.legs.iter().enumerate() {
            for (i, m) in leg.medias.iter().enumerate() {
                let (rtp, rtcp) = self.new_stream_flows(&rec.call_id, l, i);
                let mut slot = slot_of(m, self.advertised(m), rtp, rtcp);
                // Whoever can write to Redis wrote these: they pass the checks an SDP's
                // endpoints pass (never the relay's own sockets, host services...).
                let via = slot.local.map(|p| p.local);
                let mut admit = |a: Option<SocketAddr>| {
                    a.and_then(|a| self.admit_target(now, &rec.call_id, a, via))
                };
                slot.remote_rtp = admit(slot.remote_rtp);
                slot.remote_rtcp = admit(slot.remote_rtcp);
                slot.rtp.learned = admit(slot.rtp.learned);
                slot.rtcp.learned = admit(slot.rtcp.learned);
                if let Some(leg) = self
                    .calls
                    .get_mut(&rec.call_id)
                    .and_then(|c| c.legs.get_mut(l))
                {
                    leg.medias.push(slot);
                }
            }
        }
        // Every pair of legs that exchange media, once.
        let mut pairs = BTreeSet::new();
        for (l, leg) in rec.legs.iter().enumerate() {
            if let Some(p) = leg.peer.filter(|&p| p != l) {
                pairs.insert((l.min(p), l.max(p)));
            }
        }
        for (a, b) in pairs {
            let n = rec.legs[a].medias.len().max(rec.legs[b].medias.len());
            self.sync_flows(&rec.call_id, a, b, n);
        }
        self.sync_recording(&rec.call_id);
    }

    /// The address SDP advertises for a restored pair: this relay's, as configured now.
    fn advertised(&self, m: &MediaRecord) -> Option<IpAddr> {
        let (local, stored, _) = m.local?;
        let now = self.cfg.interfaces.iter().find(|i| i.local == local);
        Some(now.map_or(stored, |i| i.sdp_address()))
    }
}

fn leg_of(l: &LegRecord, created: Now) -> Leg {
    Leg {
        tag: l.tag.clone(),
        label: l.label.clone(),
        created,
        branch: l.branch.clone(),
        created_by: l.created_by,
        peer: l.peer,
        interface: l.interface.clone(),
        medias: Vec::new(),
        sdp_version: None,
        first_names: None,
        has_sdp: l.last_sdp.is_some(),
        last_sdp: l.last_sdp.as_deref().map(Box::from),
        asymmetric: l.asymmetric,
        strict: l.strict,
        received_from: l.received_from,
        on_hold: l.on_hold,
        block_media: l.block_media,
    }
}

fn slot_of(
    m: &MediaRecord,
    advertised: Option<IpAddr>,
    rtp: crate::flow::FlowId,
    rtcp: crate::flow::FlowId,
) -> MediaSlot {
    let local = m.local.map(|(local, stored, rtp_port)| LocalPair {
        local,
        advertised: advertised.unwrap_or(stored),
        rtp_port,
    });
    let (dtls, ice) = m.webrtc.as_ref().map(|w| w.slots()).unwrap_or_default();
    MediaSlot {
        kind: m.kind.clone(),
        proto: m.proto.clone(),
        local,
        far_end: m.far_end,
        parked: Vec::new(),
        remote_rtp: m.remote_rtp,
        remote_rtcp: m.remote_rtcp,
        rtcp_mux: m.rtcp_mux,
        demuxed: m.demuxed,
        rejected: m.rejected,
        is_rtp: m.is_rtp,
        ptime: m.ptime,
        offered: None,
        echo: Echo::Relay,
        mid: m.mid.clone(),
        sdes: m.sdes.as_ref().map(|s| s.slot()).unwrap_or_default(),
        dtls,
        ice,
        rtp: stream_of(rtp, m.learned_rtp, &m.rtp_totals),
        rtcp: stream_of(rtcp, m.learned_rtcp, &m.rtcp_totals),
    }
}

fn stream_of(
    flow: crate::flow::FlowId,
    learned: Option<std::net::SocketAddr>,
    totals: &StreamTotals,
) -> Stream {
    let s = Stream::new(flow);
    totals.seed(&s.counters);
    Stream { learned, ..s }
}
