//! What an offer or answer records on the media of both sides besides ports and endpoints, as
//! rtpengine keeps it per media: the packet time, the media ID, the `media echo` mode, and what
//! an offer gave the receiver (for its answer). The SDP sent later is written from this state,
//! so a side that stops announcing something still gets what the other side announced.

use crate::sdp::codec::payload_types;
use crate::sdp::{Body, RewritePlan};
use crate::session::call::{Call, Echo, Offered};
use crate::session::command::{MediaEcho, OfferAnswer};

/// Records what the SDP `sd` that `sender` sent to `receiver` sets on both sides.
pub(crate) fn note_sdp(
    call: &mut Call,
    sender: usize,
    receiver: usize,
    sd: &Body,
    p: &OfferAnswer,
    is_offer: bool,
) {
    let n = sd.media_count();
    if let Some(mode) = p.media_echo {
        // Named from this message: its receiver, then its sender.
        let (to_receiver, to_sender) = match mode {
            MediaEcho::Forward => (Echo::Echo, Echo::Blackhole),
            MediaEcho::Backwards => (Echo::Blackhole, Echo::Echo),
            MediaEcho::Both => (Echo::Echo, Echo::Echo),
            MediaEcho::Blackhole => (Echo::Blackhole, Echo::Blackhole),
        };
        for (leg, echo) in [(receiver, to_receiver), (sender, to_sender)] {
            if let Some(l) = call.legs.get_mut(leg) {
                for slot in l.medias.iter_mut().take(n) {
                    slot.echo = echo;
                }
            }
        }
    }
    for (i, m) in sd.medias().enumerate() {
        // a=ptime: whoever announces one sets it for both sides.
        if let Some(ptime) = m.ptime() {
            for leg in [sender, receiver] {
                if let Some(slot) = call.legs.get_mut(leg).and_then(|l| l.medias.get_mut(i)) {
                    slot.ptime = Some(ptime);
                }
            }
        }
        // a=mid: only offers change it (an answer's must match the offer's anyway).
        if !is_offer {
            continue;
        }
        let Some(s) = call.legs.get_mut(sender).and_then(|l| l.medias.get_mut(i)) else {
            continue;
        };
        if let Some(mid) = m.mid() {
            s.mid = Some(mid.to_owned());
        }
        let from_sender = s.mid.clone();
        if let Some(r) = call
            .legs
            .get_mut(receiver)
            .and_then(|l| l.medias.get_mut(i))
        {
            if r.mid.is_none() {
                r.mid = from_sender.or_else(|| p.flags.generate_mid.then(|| (i + 1).to_string()));
            }
        }
    }
}

/// Records, for `receiver`'s answer, what the offer `input` (as its sender wrote it) became
/// (`sent`, rewritten with `plan`): the codecs listed and the clock rates the filter touched.
pub(crate) fn note_offered(
    call: &mut Call,
    receiver: usize,
    input: &Body,
    sent: &Body,
    plan: &RewritePlan,
) {
    let Some(leg) = call.legs.get_mut(receiver) else {
        return;
    };
    for (i, (out, m)) in sent.medias().zip(input.medias()).enumerate() {
        let Some(slot) = leg.medias.get_mut(i) else {
            continue;
        };
        slot.offered = m.is_rtp().then(|| Offered {
            formats: out.formats.clone(),
            touched: plan
                .media
                .get(i)
                .map(|mp| mp.codecs.touched(&payload_types(m)))
                .unwrap_or_default(),
        });
    }
}
