//! Ports that follow the far end: the pair a side sends to is tied to the endpoint its media is
//! relayed to. When a re-INVITE moves that endpoint (a new address or port), the side gets a
//! different pair, and moving back gives the old pair again, as rtpengine does. A far end that
//! stops receiving (sendonly, inactive, null address) keeps the current pair.

use std::net::SocketAddr;

use crate::session::actions::MediaAction;
use crate::session::call::LocalPair;
use crate::session::engine::Engine;
use crate::session::error::SessionError;
use crate::session::limits;

impl Engine {
    /// Points media slot `idx` of `leg` (the side that sends to us and whose packets go to the
    /// far end) at the pair for far-end endpoint `far`. `hold`: the far end will not receive.
    pub(crate) fn follow_far_end(
        &mut self,
        call_id: &str,
        leg: usize,
        idx: usize,
        far: Option<SocketAddr>,
        hold: bool,
    ) -> Result<(), SessionError> {
        let Some(call) = self.calls.get_mut(call_id) else {
            return Ok(());
        };
        let shard = call.shard;
        let room = limits::room_for_pair(call);
        let Some(slot) = call.legs.get_mut(leg).and_then(|l| l.medias.get_mut(idx)) else {
            return Ok(());
        };
        let Some(current) = slot.local else {
            return Ok(());
        };
        let new_key = match (slot.far_end, far) {
            (None, _) => {
                slot.far_end = far;
                return Ok(());
            }
            (Some(k), Some(f)) if k != f && !hold => f,
            _ => return Ok(()),
        };
        // A pair used for this far end before, if its ports were bound again; else a new one.
        let mut next = None;
        if let Some(pos) = slot.parked.iter().position(|(k, _)| *k == new_key) {
            let (_, pair) = slot.parked.remove(pos);
            if self.ports.unpark(pair.local, pair.rtp_port) {
                next = Some(pair);
            } else {
                self.ports.release(pair.local, pair.rtp_port);
            }
        }
        let next = match next {
            Some(pair) => pair,
            None => {
                // The new pair is one more for the call, unless a parked one makes room.
                if slot.parked.len() < limits::MAX_PARKED {
                    room?;
                }
                let port = self
                    .ports
                    .take(current.local)
                    .ok_or(SessionError::PortsExhausted)?;
                LocalPair {
                    rtp_port: port,
                    ..current
                }
            }
        };
        // The old pair stays reserved for this call; its sockets close with its flows, and the
        // daemon binds it again for a far end that comes back.
        self.ports.park(current.local, current.rtp_port);
        if let Some(old_key) = slot.far_end {
            slot.parked.push((old_key, current));
        }
        // Only the last few far ends keep their pairs: a re-INVITE storm that moves the far
        // end each time must not hold the port range.
        while slot.parked.len() > limits::MAX_PARKED {
            let (_, oldest) = slot.parked.remove(0);
            self.ports.release(oldest.local, oldest.rtp_port);
        }
        slot.local = Some(next);
        slot.far_end = Some(new_key);
        let old = [slot.rtp.flow, slot.rtcp.flow];
        let opened = [slot.rtp.opened, slot.rtcp.opened];
        for (flow, was_open) in old.into_iter().zip(opened) {
            self.flows.remove(&flow);
            if was_open {
                self.push(MediaAction::Close { shard, flow });
            }
        }
        let (rtp, rtcp) = self.new_stream_flows(call_id, leg, idx);
        if let Some(slot) = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.legs.get_mut(leg))
            .and_then(|l| l.medias.get_mut(idx))
        {
            for (stream, id) in [(&mut slot.rtp, rtp), (&mut slot.rtcp, rtcp)] {
                stream.flow = id;
                stream.opened = false;
                stream.learned = None;
            }
        }
        Ok(())
    }
}
