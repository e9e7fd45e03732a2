//! `block media` / `unblock media`: which participants' media the relay stops forwarding.
//!
//! As in rtpengine, the state is a flag on the call (everyone) and one per participant (leg),
//! and a leg's media is blocked when either is set. A participant is selected by `label`, else by
//! the address in its SDP (`address`), else by `from-tag`; without any of these, or with `all`,
//! the whole call is meant. Unblocking the whole call leaves participant blocks alone unless
//! `all` is given. The flags outlive re-INVITEs (legs persist).
//!
//! This is rtpengine 10.5, the reference (`tests/block_media.rs` passes against it too). From
//! 12.4 on rtpengine reads `from-tag` here only with the `directional` flag (a from-tag alone then
//! means the whole call), and `to-tag`/`to-label`/`all=offer-answer` narrow a block to flows of
//! `subscribe` forks, which this relay does not have; `directional` is accepted and changes
//! nothing, the others are ignored.
//!
//! The workers drop the RTP (or non-RTP media) a blocked flow receives after counting it as
//! received, and keep learning its endpoint, so unblocking resumes at once. RTCP and RFC 4733
//! DTMF events (the `telephone-event` payload types of the participant's or its peer's SDP)
//! still pass, as in rtpengine.

use crate::sdp::codec::payload_types;
use crate::session::actions::MediaAction;
use crate::session::call::{Call, Leg};
use crate::session::command::MediaSelect;
use crate::session::engine::Engine;
use crate::session::error::SessionError;
use crate::session::reply::Reply;

impl Engine {
    /// `block media` (`on`) and `unblock media`.
    pub(crate) fn block_media(&mut self, m: &MediaSelect, on: bool) -> Result<Reply, SessionError> {
        let call = self
            .calls
            .get_mut(&m.call.call_id)
            .ok_or(SessionError::UnknownCall)?;
        match select(call, m)? {
            Some(leg) => call.legs[leg].block_media = on,
            None => {
                call.block_media = on;
                if !on && m.all {
                    for l in &mut call.legs {
                        l.block_media = false;
                    }
                }
            }
        }
        tracing::info!(call_id = ?call.id, block = on, "media blocking changed");
        let actions = block_actions(call);
        for a in actions {
            self.push(a);
        }
        Ok(Reply::Ok)
    }
}

/// The participant `m` selects, or `None` for the whole call.
fn select(call: &Call, m: &MediaSelect) -> Result<Option<usize>, SessionError> {
    if m.all {
        return Ok(None);
    }
    let leg = if let Some(label) = &m.label {
        call.legs
            .iter()
            .position(|l| l.label.as_ref() == Some(label))
            .ok_or(SessionError::NoSuchLabel)?
    } else if let Some(addr) = m.address {
        call.legs
            .iter()
            .position(|l| {
                // Any address the participant's SDP gave, RTP's or RTCP's (a=rtcp), as
                // rtpengine matches any of its endpoints.
                l.medias.iter().any(|s| {
                    [s.remote_rtp, s.remote_rtcp]
                        .into_iter()
                        .flatten()
                        .any(|r| r.ip() == addr)
                })
            })
            .ok_or(SessionError::NoSuchAddress)?
    } else if let Some(tag) = &m.call.from_tag {
        call.leg_by_tag(tag).ok_or(SessionError::NoSuchTag)?
    } else {
        return Ok(None);
    };
    Ok(Some(leg))
}

/// The block state of every open flow that carries a participant's media (RTCP flows never
/// block). Sent for all of them: cheap, and the workers ignore what does not change.
fn block_actions(call: &Call) -> Vec<MediaAction> {
    let mut out = Vec::new();
    for (i, l) in call.legs.iter().enumerate() {
        let states = block_states(call, i);
        for (s, block) in l.medias.iter().zip(states) {
            if s.rtp.opened {
                out.push(MediaAction::Block {
                    shard: call.shard,
                    flow: s.rtp.flow,
                    block,
                });
            }
        }
    }
    out
}

/// Per media of `leg`: `None` when what it sends is relayed, else the RTP payload types that
/// still pass the block (bit n = type n): its DTMF events, `telephone-event` in its own SDP or
/// its peer's (an endpoint may use either numbering).
pub(crate) fn block_states(call: &Call, leg: usize) -> Vec<Option<u128>> {
    let Some(l) = call.legs.get(leg) else {
        return Vec::new();
    };
    if !call.blocks(leg) {
        return vec![None; l.medias.len()];
    }
    let own = l.last_body();
    let peer = l
        .peer
        .and_then(|p| call.legs.get(p))
        .and_then(Leg::last_body);
    (0..l.medias.len())
        .map(|i| {
            let mask = [own.as_ref(), peer.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|b| b.media(i))
                .flat_map(payload_types)
                .filter(|pt| pt.pt < 128 && pt.encoding.as_deref().is_some_and(is_dtmf))
                .fold(0u128, |m, pt| m | 1 << pt.pt);
            Some(mask)
        })
        .collect()
}

/// An rtpmap encoding (`telephone-event/8000`) that names RFC 4733 events.
fn is_dtmf(encoding: &str) -> bool {
    encoding
        .split('/')
        .next()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case("telephone-event"))
}
