//! Call recording, as the session layer sees it: which flows are recorded, and what the spool
//! entry of a call holds (its streams and their codecs). The daemon turns the resulting
//! [`MediaAction`]s into taps on the workers' flows and work for the spool writer thread.

use crate::sdp::codec::payload_types;
use crate::session::actions::{CodecInfo, MediaAction, RecordStream, StreamInfo};
use crate::session::call::Call;
use crate::session::command::CallRef;
use crate::session::engine::Engine;
use crate::session::error::SessionError;
use crate::session::reply::Reply;

/// What an NG recording command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordOp {
    Start,
    Stop,
    Pause,
}

impl Engine {
    /// `start recording`, `stop recording`, `pause recording`.
    pub(crate) fn recording_command(
        &mut self,
        c: &CallRef,
        op: RecordOp,
    ) -> Result<Reply, SessionError> {
        let call = self
            .calls
            .get_mut(&c.call_id)
            .ok_or(SessionError::UnknownCall)?;
        let on = op == RecordOp::Start;
        let changed = call.recording != on;
        call.recording = on;
        let mut out = Vec::new();
        match op {
            RecordOp::Start => {
                call.record_open = true;
                out.push(record_action(call));
            }
            RecordOp::Stop if call.record_open => {
                call.record_open = false;
                out.push(MediaAction::RecordEnd {
                    call_id: call.id.clone(),
                });
            }
            _ => {}
        }
        if changed {
            // Taps first on start (the entry exists before packets come), last on stop.
            let taps = tap_actions(call, on);
            if on {
                out.extend(taps);
            } else {
                out.splice(0..0, taps);
            }
        }
        for a in out {
            self.push(a);
        }
        Ok(Reply::Ok)
    }

    /// After an offer/answer: a recorded call's spool entry learns its new streams and codecs.
    pub(crate) fn sync_recording(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if !call.recording {
            return;
        }
        call.record_open = true;
        let a = record_action(call);
        self.push(a);
    }
}

fn tap_actions(call: &Call, record: bool) -> Vec<MediaAction> {
    call.legs
        .iter()
        .flat_map(|l| &l.medias)
        .filter(|m| m.is_rtp && m.rtp.opened)
        .map(|m| MediaAction::Tap {
            shard: call.shard,
            flow: m.rtp.flow,
            record,
        })
        .collect()
}

/// The call's streams as the spool entry describes them: per leg and media, what that leg sends.
fn record_action(call: &Call) -> MediaAction {
    let mut streams = Vec::new();
    // A leg joins once it has a tag (the callee's comes with the answer): the spool names
    // streams by tag. Its packets before that are not recorded.
    for leg in call.legs.iter().filter(|l| l.tag.is_some()) {
        for (i, slot) in leg.medias.iter().enumerate() {
            let Some(local) = slot.local else { continue };
            if !slot.is_rtp || !slot.rtp.opened {
                continue;
            }
            // The payload types this leg described for its media (its own SDP), else its peer's.
            let own = leg.last_body();
            let peer = leg
                .peer
                .and_then(|p| call.legs.get(p))
                .and_then(|p| p.last_body());
            let media = own
                .as_ref()
                .and_then(|b| b.media(i))
                .or_else(|| peer.as_ref().and_then(|b| b.media(i)));
            let codecs = media
                .map(|m| {
                    payload_types(m)
                        .iter()
                        .filter_map(|pt| {
                            let enc = pt.encoding.as_deref()?;
                            let mut parts = enc.split('/');
                            let name = parts.next()?.trim();
                            let rate = parts.next()?.trim().parse().ok()?;
                            let channels = parts
                                .next()
                                .and_then(|c| c.trim().parse().ok())
                                .unwrap_or(1);
                            let mut c = CodecInfo::new(pt.pt, name, rate);
                            c.channels = channels;
                            Some(c)
                        })
                        .collect()
                })
                .unwrap_or_default();
            streams.push(RecordStream {
                flow: slot.rtp.flow,
                local: local.rtp(),
                info: StreamInfo {
                    tag: leg.tag.clone().unwrap_or_default(),
                    label: leg.label.clone().unwrap_or_default(),
                    media: slot.kind.clone(),
                    codecs,
                },
            });
        }
    }
    MediaAction::Record {
        call_id: call.id.clone(),
        metadata: call.metadata.clone().unwrap_or_default(),
        streams,
    }
}
