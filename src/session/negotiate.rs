//! `offer` and `answer`: update the sender's side from its SDP, make sure both sides have local
//! ports, and rewrite the SDP for the receiver with the receiver's local ports.

use std::net::{IpAddr, SocketAddr};

use crate::config::Interface;
use crate::flow::latch::LatchConfig;
use crate::flow::{FlowCrypto, FlowKind};
use crate::sdp::ice::IceAttributes;
use crate::sdp::Family;
use crate::sdp::{
    self, Attribute, Body, CodecFilter, Direction, MediaPlan, RewritePlan, SessionLine,
};
use crate::session::actions::MediaAction;
use crate::session::block::block_states;
use crate::session::call::{Call, Echo, Leg, LocalPair, MediaSlot, Offered, Stream};
use crate::session::command::OfferAnswer;
use crate::session::command::Profile;
use crate::session::engine::{shard_of, Engine};
use crate::session::error::SessionError;
use crate::session::interfaces::{self, interface_address};
use crate::session::keys::KeySource;
use crate::session::limits;
use crate::session::media_state;
use crate::session::reply::Reply;
use crate::session::sdes::{self, MediaOut};
use crate::session::{dtls, ice};
use crate::time::Now;

/// The session attribute `loop-protect` adds (`a=rtpengine:<instance id>`, as rtpengine does).
const LOOP_ATTRIBUTE: &str = "rtpengine";

/// More m= lines than this in one SDP is refused (each costs two port pairs).
pub(crate) const MAX_MEDIA: usize = 32;

impl Engine {
    pub(crate) fn offer(&mut self, now: Now, p: OfferAnswer) -> Result<Reply, SessionError> {
        let sd = parse_sdp(&p)?;
        if let Some(reply) = self.looped(&p, &sd) {
            return Ok(reply);
        }
        check_streams(&p, &sd)?;
        let call_id = p.call.call_id.clone();
        // An empty name (no `direction`, or one of from-/to-interface given alone) means the
        // default interface; see interfaces.rs for how names become interface entries.
        let (from_if, to_if) = p.direction.clone().unwrap_or_default();
        self.note_unknown_interface(now, &call_id, &from_if);
        self.note_unknown_interface(now, &call_id, &to_if);
        let is_new = !self.calls.contains_key(&call_id);
        if is_new {
            if self.draining {
                return Err(SessionError::Draining);
            }
            if self.cfg.max_sessions >= 0 && self.calls.len() as i64 >= self.cfg.max_sessions {
                self.totals.rejected_session_limit += 1;
                return Err(SessionError::SessionLimit);
            }
            let mut call = new_call(&call_id, now);
            call.created_from = p.proxy;
            self.calls.insert(call_id.clone(), call);
        }
        let call = self
            .calls
            .get_mut(&call_id)
            .ok_or(SessionError::UnknownCall)?;
        let from_tag = p.call.from_tag.clone().unwrap_or_default();
        let legs = leg_by_tag_or_new(call, &from_tag, &from_if, now).and_then(|sender| {
            let receiver = find_receiver(
                call,
                sender,
                p.call.to_tag.as_deref(),
                p.call.via_branch.as_deref(),
                &to_if,
                now,
            )?;
            Ok((sender, receiver))
        });
        let result = legs.and_then(|(sender, receiver)| {
            self.negotiate(now, &call_id, sender, receiver, sd, &p, true)
        });
        match (&result, is_new) {
            // A call that failed its first offer leaves nothing behind: no entry, no ports.
            (Err(_), true) => self.discard(&call_id),
            (Ok(_), true) => {
                self.totals.calls_created += 1;
                tracing::info!(call_id = ?call_id, "new call");
            }
            _ => {}
        }
        result
    }

    pub(crate) fn answer(&mut self, now: Now, p: OfferAnswer) -> Result<Reply, SessionError> {
        let sd = parse_sdp(&p)?;
        if let Some(reply) = self.looped(&p, &sd) {
            return Ok(reply);
        }
        check_streams(&p, &sd)?;
        let call_id = p.call.call_id.clone();
        let call = self
            .calls
            .get_mut(&call_id)
            .ok_or(SessionError::UnknownCall)?;
        let from_tag = p.call.from_tag.clone().unwrap_or_default();
        // The answer's from-tag is the offerer: it receives the rewritten answer.
        let receiver = call.leg_by_tag(&from_tag).ok_or(SessionError::UnknownTag)?;
        let iface = call.legs[receiver].interface.clone();
        let sender = match p.call.to_tag.as_deref() {
            Some(t) => match call.leg_by_tag(t) {
                Some(l) => l,
                None => {
                    let l = find_receiver(
                        call,
                        receiver,
                        None,
                        p.call.via_branch.as_deref(),
                        &iface,
                        now,
                    )?;
                    call.legs[l].tag = Some(t.to_owned());
                    l
                }
            },
            None => find_receiver(call, receiver, None, p.call.via_branch.as_deref(), "", now)?,
        };
        self.negotiate(now, &call_id, sender, receiver, sd, &p, false)
    }

    /// With `loop-protect`, an SDP that already carries this relay's mark passed through it
    /// once: it goes back untouched instead of being relayed a second time.
    fn looped(&self, p: &OfferAnswer, sd: &Body) -> Option<Reply> {
        if !p.flags.loop_protect {
            return None;
        }
        let ours = sd.session_attributes().any(|a| {
            a.name == LOOP_ATTRIBUTE && a.value.as_deref() == Some(self.cfg.instance_id.as_str())
        });
        if !ours {
            return None;
        }
        tracing::info!(call_id = ?p.call.call_id, "SDP already passed this relay (loop-protect): not rewritten");
        Some(Reply::Sdp(String::from_utf8_lossy(&p.sdp).into_owned()))
    }

    /// rtpengine answers `ok` for an interface name it does not have and uses one it has;
    /// so do we, and say so in the log (rate-limited: every offer of a misconfigured proxy
    /// would repeat it). The legacy names `internal` and `external` are a feature, not a
    /// mistake: not logged, as in rtpengine.
    fn note_unknown_interface(&mut self, now: Now, call_id: &str, name: &str) {
        if !interfaces::is_unknown(&self.cfg.interfaces, name) || interfaces::is_legacy(name) {
            return;
        }
        if self.interface_log.allow(now.mono) {
            let suppressed = std::mem::take(&mut self.interface_log.suppressed);
            tracing::warn!(
                call_id = ?call_id,
                interface = name,
                suppressed,
                "interface not found, using the default"
            );
        }
    }

    /// The interface entry media on `name` uses for `family`.
    fn pick_interface(&self, name: &str, family: Option<Family>) -> Option<Interface> {
        interfaces::pick(&self.cfg.interfaces, name, family).cloned()
    }

    #[allow(clippy::too_many_arguments)]
    fn negotiate(
        &mut self,
        now: Now,
        call_id: &str,
        sender: usize,
        receiver: usize,
        mut sd: Body,
        p: &OfferAnswer,
        is_offer: bool,
    ) -> Result<Reply, SessionError> {
        if sd.media_count() > MAX_MEDIA {
            return Err(SessionError::TooManyMedia);
        }
        if sd.has_unwritable_session() {
            tracing::info!(call_id = ?call_id, "SDP has a session without media");
            return Err(SessionError::SdpRewrite);
        }
        // An answer: the offer as its sender wrote it (for the definitions of its codecs).
        let offer = if is_offer {
            None
        } else {
            self.calls
                .get(call_id)
                .and_then(|c| c.legs.get(receiver))
                .and_then(|l| l.last_body())
        };
        let offered: Vec<Option<Offered>> = match self.leg(call_id, sender) {
            Ok(leg) if !is_offer => leg.medias.iter().map(|m| m.offered.clone()).collect(),
            _ => Vec::new(),
        };
        if let Some(offer) = &offer {
            for (i, a) in sd.medias_mut().enumerate() {
                // What this side was offered; the offerer's own list for a call from before.
                let formats = match offered.get(i) {
                    Some(Some(o)) => Some(o.formats.as_slice()),
                    _ => offer
                        .media(i)
                        .filter(|m| m.is_rtp())
                        .map(|m| m.formats.as_slice()),
                };
                if let Some(formats) = formats {
                    sdp::align_answer_codecs(formats, a);
                }
            }
        }
        let input = sd.clone();
        let version = sdp_version(&mut sd, &self.calls, call_id, sender);
        // Allocate first (a failure must leave no half-built state behind beyond free ports).
        let n = sd.media_count();
        let sender_if = self.leg(call_id, sender)?.interface.clone();
        let receiver_if = self.leg(call_id, receiver)?.interface.clone();
        let source = source_override(p);
        // Where the sender's media goes, per m= line (RTP, RTCP), once the policy admitted it.
        let mut targets: Vec<(Option<SocketAddr>, Option<SocketAddr>)> = vec![(None, None); n];
        // The sender's ICE lines per m= line, and which of its candidates the relay may check.
        let mut ice_in: Vec<IceAttributes> = Vec::with_capacity(n);
        for i in 0..n {
            self.ensure_slot(call_id, sender, i, &sd);
            self.ensure_slot(call_id, receiver, i, &sd);
            ice_in.push(
                sd.media(i)
                    .map(|m| IceAttributes::from_media(sd.session_of(i), m))
                    .unwrap_or_default(),
            );
            if sd.media(i).is_none_or(|m| m.is_rejected()) {
                continue;
            }
            let sender_family = sd.media_family(i);
            let receiver_family = p.address_family.or(sender_family);
            // The receiver's side first, as rtpengine allocates: the offer's output port is
            // the lower one on a fresh range.
            self.ensure_ports(call_id, receiver, i, &receiver_if, receiver_family)?;
            self.ensure_ports(call_id, sender, i, &sender_if, sender_family)?;
            let hold = sd.is_null_address(i)
                || sd.media(i).is_some_and(|m| {
                    matches!(
                        m.direction(),
                        Some(Direction::SendOnly | Direction::Inactive)
                    )
                });
            let via = self
                .leg(call_id, sender)?
                .medias
                .get(i)
                .and_then(|m| m.local)
                .map(|l| l.local);
            let is_rtp = sd.media(i).is_some_and(|m| m.is_rtp());
            let (rtp, rtcp) = if sd.is_null_address(i) {
                (None, None)
            } else {
                (
                    sd.rtp_endpoint(i).map(|a| with_ip(a, source)),
                    sd.rtcp_endpoint(i)
                        .filter(|_| is_rtp)
                        .map(|a| with_ip(a, source)),
                )
            };
            let rtp = rtp.and_then(|a| self.admit_target(now, call_id, a, via));
            let rtcp = rtcp.and_then(|a| self.admit_target(now, call_id, a, via));
            if let Some(attrs) = ice_in.last_mut() {
                self.keep_admitted_candidates(&mut attrs.candidates, via);
            }
            if let Some(t) = targets.get_mut(i) {
                *t = (rtp, rtcp);
            }
            // A null (hold) address still names the far end's port, as before the checks.
            let far = if sd.is_null_address(i) {
                sd.rtp_endpoint(i)
            } else {
                rtp
            };
            self.follow_far_end(call_id, receiver, i, far, hold)?;
        }

        let strict = self.cfg.strict_source || p.flags.strict_source;
        let dtls_ctx = self.cfg.dtls.clone();
        let dtls_ctx = dtls_ctx.as_deref();
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or(SessionError::UnknownCall)?;
        call.last_signal = now;
        call.recording |= p.flags.record_call;
        if p.endpoint_learning.is_some() {
            call.learning = p.endpoint_learning;
        }
        if p.metadata.is_some() {
            call.metadata.clone_from(&p.metadata);
        }
        let receiver_mux_before: Vec<bool> = call.legs[receiver]
            .medias
            .iter()
            .map(|m| m.rtcp_mux)
            .collect();
        let sender_proto_before: Vec<String> = call.legs[sender]
            .medias
            .iter()
            .map(|m| m.proto.clone())
            .collect();
        {
            let leg = &mut call.legs[sender];
            leg.has_sdp = true;
            leg.asymmetric = p.flags.asymmetric && !p.flags.symmetric;
            leg.strict = strict;
            if p.received_from.is_some() {
                leg.received_from = p.received_from;
            }
            if p.label.is_some() {
                leg.label.clone_from(&p.label);
            }
            leg.sdp_version = Some(version);
            if leg.first_names.is_none() {
                leg.first_names = Some(crate::session::origin::names(&input));
            }
            leg.last_sdp = Some(input.to_string().into_boxed_str());
            leg.on_hold = false;
            for (i, m) in sd.medias().enumerate() {
                let null = sd.is_null_address(i);
                let slot = &mut leg.medias[i];
                let session = sd.session_of(i);
                slot.dtls.note_sdp(session, m);
                if let Some(attrs) = ice_in.get_mut(i) {
                    slot.ice.note_sdp(attrs);
                }
                slot.kind.clone_from(&m.kind);
                slot.proto.clone_from(&m.proto);
                slot.rejected = m.is_rejected();
                slot.is_rtp = m.is_rtp();
                slot.rtcp_mux = m.has_rtcp_mux();
                let (rtp, rtcp) = targets.get(i).copied().unwrap_or_default();
                slot.remote_rtp = if null || slot.rejected { None } else { rtp };
                slot.remote_rtcp = if null || slot.rejected {
                    None
                } else if slot.rtcp_mux {
                    slot.remote_rtp
                } else {
                    rtcp
                };
                if null
                    || matches!(
                        m.direction(),
                        Some(Direction::SendOnly | Direction::RecvOnly | Direction::Inactive)
                    )
                {
                    leg.on_hold = true;
                }
            }
        }

        media_state::note_sdp(call, sender, receiver, &sd, p, is_offer);
        // `ICE-lite` (offers only) says towards which sides the relay is lite from now on.
        if let Some(lite) = p.ice_lite.filter(|_| is_offer) {
            let (forward, backward) = lite.sides();
            for (leg, lite) in [(receiver, forward), (sender, backward)] {
                for slot in &mut call.legs[leg].medias {
                    slot.ice.lite = lite;
                }
            }
        } else {
            // A media added later follows the mode its leg's ICE already runs in.
            for leg in [receiver, sender] {
                let medias = &mut call.legs[leg].medias;
                let running = medias.iter().find(|m| m.ice.ours.is_some());
                if let Some(lite) = running.map(|m| m.ice.lite) {
                    for slot in medias.iter_mut().filter(|m| m.ice.ours.is_none()) {
                        slot.ice.lite = lite;
                    }
                }
            }
        }

        // Build the rewrite plan from the receiver's local ports.
        let mut plan = RewritePlan {
            origin_address: None,
            origin_version: p.replace.sdp_version.then_some(version.1),
            session_connection: p.replace.session_connection,
            strip_ice: true,
            strip_extmap: p.flags.strip_extmap,
            original_sendrecv: p.flags.original_sendrecv,
            ice_lite: false,
            origin_username: None,
            session_name: None,
            media: Vec::with_capacity(n),
        };
        if let Some((user, session)) = &call.legs[sender].first_names {
            if p.replace.username {
                plan.origin_username.clone_from(user);
            }
            if p.replace.session_name {
                plan.session_name.clone_from(session);
            }
        }
        for (i, m) in sd.medias().enumerate() {
            let local = call.legs[receiver].medias[i].local;
            // Rejected media have no ports but still get the interface address in c=.
            let family = p.address_family.or(sd.media_family(i));
            let address = p
                .media_address
                .or(local.map(|l| l.advertised))
                .or_else(|| interface_address(&self.cfg.interfaces, &receiver_if, family))
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            // rtcp-mux towards the receiver. Offer: passed on unless demuxed, or forced. Answer:
            // confirmed to the offerer if it offered mux and the answerer took it, or if the
            // relay demuxed this branch (then the relay itself muxes towards the offerer).
            let sender_mux = call.legs[sender].medias[i].rtcp_mux;
            let mux_out = if is_offer {
                let out =
                    (sender_mux && !p.rtcp_mux.demux) || p.rtcp_mux.offer || p.rtcp_mux.require;
                call.legs[receiver].medias[i].demuxed = sender_mux && !out;
                out
            } else {
                let offered = receiver_mux_before.get(i).copied().unwrap_or(false);
                let demuxed = call.legs[sender].medias[i].demuxed;
                offered && (sender_mux || demuxed || p.rtcp_mux.accept) && !p.rtcp_mux.demux
            };
            let kept = kept_profile(call, sender, receiver, i, m, &sender_proto_before, is_offer);
            // What the receiver negotiated last time, before this message changes it: a re-offer
            // offers only the SRTP keying it settled on (SDES or DTLS), as rtpengine does.
            let before = call.legs[receiver].medias.get(i);
            let sdes_settled =
                before.is_some_and(|s| s.sdes.their_key.is_some() && s.dtls.role.is_none());
            let dtls_settled =
                before.is_some_and(|s| s.dtls.role.is_some() && s.dtls.their_fingerprint.is_some());
            let mut srtp = sdes_media(
                call,
                sender,
                receiver,
                i,
                (m, kept),
                p,
                is_offer,
                &mut *self.keys,
            );
            // SDES settled with the receiver stays SDES on a plain SRTP profile (offers carry no
            // DTLS lines, answers take none), unless SDES is switched off.
            let out_dtls = srtp.out_profile.is_some_and(Profile::is_dtls);
            let keep_sdes = sdes_settled && !out_dtls && !p.sdes.off;
            let dtls = dtls_media(
                call,
                sender,
                receiver,
                i,
                p,
                is_offer,
                // An opportunistic SRTP offer (a=crypto on RTP/AVP) gets DTLS lines too.
                srtp.out_profile.map(|o| {
                    let osrtp = is_offer && srtp.crypto.as_ref().is_some_and(|c| !c.is_empty());
                    if osrtp && !o.is_srtp() {
                        Profile::RtpSavp
                    } else {
                        o
                    }
                }),
                dtls_ctx.filter(|_| !keep_sdes),
            );
            if is_offer && dtls_settled && !out_dtls && !dtls.attributes.is_empty() {
                srtp.crypto = Some(Vec::new());
                // Nothing of SDES was offered: an a=crypto answer cannot pick a line.
                if let Some(s) = call.legs[receiver].medias.get_mut(i) {
                    s.sdes.ours.clear();
                    s.sdes.our_key = None;
                }
            }
            // An answer that takes DTLS on a plain SRTP profile gives no SDES key as well.
            if !is_offer && !dtls.attributes.is_empty() {
                srtp.crypto = Some(Vec::new());
                if let Some(s) = call.legs[receiver].medias.get_mut(i) {
                    s.sdes.our_key = None;
                    s.sdes.their_key = None;
                }
            }
            // The default follows the offer's ICE: its sender's in an offer, the offerer's
            // (the receiver of the answer) in an answer.
            let had_ice = |leg: usize| {
                call.legs
                    .get(leg)
                    .and_then(|l| l.medias.get(i))
                    .is_some_and(|s| s.ice.theirs.is_some())
            };
            let other_side_ice = had_ice(if is_offer { sender } else { receiver });
            let ice = call.legs[receiver].medias.get_mut(i).and_then(|slot| {
                let mux = mux_out && m.is_rtp();
                let lines = ice::towards(
                    p,
                    is_offer,
                    &mut slot.ice,
                    local.filter(|_| m.is_rtp()),
                    mux,
                    other_side_ice,
                    &mut *self.keys,
                );
                plan.ice_lite |= lines.is_some() && slot.ice.lite;
                lines
            });
            let rtp_port = local.map_or(0, |l| l.rtp_port);
            let rtcp_port = m.is_rtp().then(|| {
                if mux_out && !is_offer {
                    rtp_port
                } else {
                    rtp_port.wrapping_add(1)
                }
            });
            plan.media.push(MediaPlan {
                address,
                keep_null: sd.is_null_address(i)
                    && !sd.is_trickle_ice(i)
                    && !p.replace.zero_address,
                port: if m.is_rejected() { 0 } else { rtp_port },
                rtcp_port,
                rtcp_mux: mux_out,
                ptime: call.legs[receiver].medias[i].ptime,
                mid: call.legs[receiver].medias[i].mid.clone(),
                codecs: CodecFilter {
                    strip: p.codec.strip.clone(),
                    mask: p.codec.mask.clone(),
                    except: p.codec.except.clone(),
                },
                proto: srtp.proto,
                crypto: srtp.crypto,
                strip_dtls: dtls.strip,
                dtls: dtls.attributes,
                ice,
            });
            if !is_offer {
                // The offerer asked for mux and the answer confirms it: the offerer muxes.
                call.legs[receiver].medias[i].rtcp_mux = mux_out;
            }
        }
        if p.replace.origin {
            plan.origin_address = plan.media.first().map(|m| m.address);
        }
        if let Some(offer) = &offer {
            for (i, a) in sd.medias_mut().enumerate() {
                if let (Some(o), Some(Some(off))) = (offer.media(i), offered.get(i)) {
                    sdp::supplementals_after_touch(o, a, &off.touched);
                }
            }
        }
        sd.rewrite(&plan);
        if is_offer {
            media_state::note_offered(call, receiver, &input, &sd, &plan);
        }
        if p.flags.loop_protect {
            if let Some(first) = sd.first_mut() {
                first.lines.push(SessionLine::Attribute(Attribute::new(
                    LOOP_ATTRIBUTE,
                    Some(self.cfg.instance_id.clone()),
                )));
            }
        }
        let text = sd.to_string();
        self.sync_flows(call_id, sender, receiver, n);
        self.sync_recording(call_id);

        Ok(Reply::Sdp(text))
    }

    fn leg(&self, call_id: &str, leg: usize) -> Result<&Leg, SessionError> {
        self.calls
            .get(call_id)
            .and_then(|c| c.legs.get(leg))
            .ok_or(SessionError::UnknownCall)
    }

    /// Makes sure `leg` has a media slot at `idx`.
    fn ensure_slot(&mut self, call_id: &str, leg: usize, idx: usize, sd: &Body) {
        let have = self
            .calls
            .get(call_id)
            .and_then(|c| c.legs.get(leg))
            .map_or(usize::MAX, |l| l.medias.len());
        let Some(media) = sd.media(idx) else { return };
        if have == usize::MAX || have > idx {
            return;
        }
        let (kind, proto, is_rtp) = (media.kind.clone(), media.proto.clone(), media.is_rtp());
        for i in have..=idx {
            let (rtp, rtcp) = self.new_stream_flows(call_id, leg, i);
            let slot = MediaSlot {
                kind: kind.clone(),
                proto: proto.clone(),
                local: None,
                far_end: None,
                parked: Vec::new(),
                remote_rtp: None,
                remote_rtcp: None,
                rtcp_mux: false,
                demuxed: false,
                rejected: false,
                is_rtp,
                ptime: None,
                offered: None,
                echo: Echo::Relay,
                mid: None,
                sdes: Default::default(),
                dtls: Default::default(),
                ice: Default::default(),
                rtp: Stream::new(rtp),
                rtcp: Stream::new(rtcp),
            };
            if let Some(l) = self
                .calls
                .get_mut(call_id)
                .and_then(|c| c.legs.get_mut(leg))
            {
                l.medias.push(slot);
            }
        }
    }

    /// Allocates the local pair of a slot if it has none.
    fn ensure_ports(
        &mut self,
        call_id: &str,
        leg: usize,
        idx: usize,
        iface: &str,
        family: Option<Family>,
    ) -> Result<(), SessionError> {
        let has = self
            .calls
            .get(call_id)
            .and_then(|c| c.legs.get(leg))
            .and_then(|l| l.medias.get(idx))
            .is_some_and(|m| m.local.is_some());
        if has {
            return Ok(());
        }
        let intf = self
            .pick_interface(iface, family)
            .ok_or_else(|| SessionError::UnknownInterface(iface.to_owned()))?;
        if let Some(call) = self.calls.get(call_id) {
            limits::room_for_pair(call)?;
        }
        let port = self
            .ports
            .take(intf.local)
            .ok_or(SessionError::PortsExhausted)?;
        if let Some(slot) = self
            .calls
            .get_mut(call_id)
            .and_then(|c| c.legs.get_mut(leg))
            .and_then(|l| l.medias.get_mut(idx))
        {
            slot.local = Some(LocalPair {
                local: intf.local,
                advertised: intf.sdp_address(),
                rtp_port: port,
            });
        }
        Ok(())
    }

    /// Tells the workers about every flow of the two legs' first `n` media.
    pub(crate) fn sync_flows(&mut self, call_id: &str, a: usize, b: usize, n: usize) {
        let window = self.cfg.learning_window;
        let mut out = Vec::new();
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let learning = call.learning.unwrap_or(self.cfg.endpoint_learning);
        let shard = call.shard;
        let recording = call.recording;
        for (this, other) in [(a, b), (b, a)] {
            for i in 0..n {
                let (peer_rtp, peer_rtcp) = match call.legs.get(other).and_then(|l| l.medias.get(i))
                {
                    Some(o) if o.local.is_some() => (
                        Some(o.rtp.flow),
                        Some(if o.rtcp_mux { o.rtp.flow } else { o.rtcp.flow }),
                    ),
                    _ => (None, None),
                };
                let blocked = if call.blocks(this) {
                    block_states(call, this).get(i).copied().flatten()
                } else {
                    None
                };
                let leg = &mut call.legs[this];
                let (asymmetric, strict) = (leg.asymmetric, leg.strict);
                let signalled_from = leg.received_from;
                let Some(slot) = leg.medias.get_mut(i) else {
                    continue;
                };
                let Some(local) = slot.local else { continue };
                // `media echo`: this leg's media goes back out of its own sockets to itself
                // (muxed RTCP too), or nowhere.
                let (peer_rtp, peer_rtcp) = match slot.echo {
                    Echo::Relay => (peer_rtp, peer_rtcp),
                    Echo::Echo => (
                        Some(slot.rtp.flow),
                        Some(if slot.rtcp_mux {
                            slot.rtp.flow
                        } else {
                            slot.rtcp.flow
                        }),
                    ),
                    Echo::Blackhole => (None, None),
                };
                let media_kind = if slot.is_rtp {
                    FlowKind::Rtp
                } else {
                    FlowKind::Opaque
                };
                let record_rtp = recording && slot.is_rtp;
                // RTP and RTCP (muxed or not) share the media's SRTP keys; with DTLS-SRTP
                // each runs its own handshake (RFC 5764 §4.1: one association per component).
                let mut crypto = slot.sdes.flow_crypto();
                if let Some(dtls) = slot.dtls.flow_dtls() {
                    crypto.inbound = None;
                    crypto.outbound = None;
                    crypto.dtls = Some(dtls);
                }
                let rtcp_crypto = FlowCrypto {
                    ice: slot.ice.flow_ice(2),
                    ..crypto.clone()
                };
                crypto.ice = slot.ice.flow_ice(1);
                // Block state lives in the worker's flow: a flow of a blocked participant
                // learns it (again: the DTMF payload types may have changed) right after its
                // open or update, in the same batch.
                // RTCP this side multiplexes on its RTP port goes to the other side's RTCP port
                // when that side does not multiplex. (Only then: such a flow stays out of the
                // kernel path.)
                let rtcp_out = peer_rtcp.filter(|r| slot.rtcp_mux && Some(*r) != peer_rtp);
                for (stream, kind, expected, (egress, rtcp_egress), addr, record, block, crypto) in [
                    (
                        &mut slot.rtp,
                        media_kind,
                        slot.remote_rtp,
                        (peer_rtp, rtcp_out),
                        local.rtp(),
                        record_rtp,
                        blocked,
                        crypto,
                    ),
                    (
                        &mut slot.rtcp,
                        FlowKind::Rtcp,
                        slot.remote_rtcp,
                        (peer_rtcp, None),
                        local.rtcp(),
                        false,
                        None,
                        rtcp_crypto,
                    ),
                ] {
                    let latch = LatchConfig {
                        expected,
                        learning,
                        strict,
                        asymmetric,
                        window,
                        signalled_from,
                        sdp_unreachable: expected.is_some_and(|e| {
                            crate::guard::unreachable_from(e.ip(), local.advertised)
                        }),
                        // A stream opened with a source already learnt is a restored one.
                        restored: if stream.opened { None } else { stream.learned },
                    };
                    if stream.opened {
                        out.push(MediaAction::Update {
                            shard,
                            flow: stream.flow,
                            kind,
                            egress,
                            rtcp_egress,
                            latch,
                            record,
                            crypto,
                        });
                    } else {
                        stream.opened = true;
                        out.push(MediaAction::Open {
                            shard,
                            flow: stream.flow,
                            kind,
                            local: addr,
                            egress,
                            rtcp_egress,
                            latch,
                            counters: stream.counters.clone(),
                            record,
                            crypto,
                        });
                    }
                    if block.is_some() {
                        out.push(MediaAction::Block {
                            shard,
                            flow: stream.flow,
                            block,
                        });
                    }
                }
            }
        }
        for a in out {
            self.push(a);
        }
    }
}

/// The DTLS part of one media section (see `dtls.rs`): both legs' slots are updated; what the
/// outgoing m= section gets of DTLS is returned. `out` is the profile it ends up with.
#[allow(clippy::too_many_arguments)]
fn dtls_media(
    call: &mut Call,
    sender: usize,
    receiver: usize,
    i: usize,
    p: &OfferAnswer,
    is_offer: bool,
    out: Option<crate::session::command::Profile>,
    ctx: Option<&crate::dtls::DtlsContext>,
) -> dtls::DtlsOut {
    if sender == receiver {
        return dtls::DtlsOut::default();
    }
    let take = |call: &mut Call, leg: usize| {
        call.legs
            .get_mut(leg)
            .and_then(|l| l.medias.get_mut(i))
            .map(|s| std::mem::take(&mut s.dtls))
    };
    let (Some(mut from), Some(mut to)) = (take(call, sender), take(call, receiver)) else {
        return dtls::DtlsOut::default();
    };
    let out = if is_offer {
        dtls::offer(p, out, &mut from, &mut to, ctx)
    } else {
        dtls::answer(p, out, &mut from, &mut to, ctx)
    };
    for (leg, slot) in [(sender, from), (receiver, to)] {
        if let Some(s) = call.legs.get_mut(leg).and_then(|l| l.medias.get_mut(i)) {
            s.dtls = slot;
        }
    }
    out
}

/// The profile a re-offer keeps towards its receiver: the receiver's own, from its last SDP,
/// while the offerer's profile is the one it had before (rtpengine keeps a media's transport
/// protocol that way: a re-INVITE without `transport-protocol` does not turn an SRTP trunk's
/// stream plain, nor a phone's into a browser's). An offerer that changes its profile is
/// followed; a receiver that never sent SDP has nothing to keep.
fn kept_profile(
    call: &Call,
    sender: usize,
    receiver: usize,
    i: usize,
    m: &sdp::Media,
    sender_proto_before: &[String],
    is_offer: bool,
) -> Option<Profile> {
    let before = sender_proto_before.get(i)?;
    let receiving = call.legs.get(receiver).filter(|l| l.has_sdp)?;
    let theirs = &receiving.medias.get(i)?.proto;
    (is_offer && sender != receiver && before.eq_ignore_ascii_case(&m.proto))
        .then(|| Profile::from_name(theirs))
        .flatten()
}

/// The SDES part of one media section (see `sdes.rs`): both legs' slots are updated, the
/// outgoing m= line gets the protocol and `a=crypto` lines returned.
#[allow(clippy::too_many_arguments)]
fn sdes_media(
    call: &mut Call,
    sender: usize,
    receiver: usize,
    i: usize,
    (m, kept): (&sdp::Media, Option<Profile>),
    p: &OfferAnswer,
    is_offer: bool,
    keys: &mut dyn KeySource,
) -> MediaOut {
    if sender == receiver {
        return MediaOut::default();
    }
    let take = |call: &mut Call, leg: usize| {
        call.legs
            .get_mut(leg)
            .and_then(|l| l.medias.get_mut(i))
            .map(|s| std::mem::take(&mut s.sdes))
    };
    let (Some(mut from), Some(mut to)) = (take(call, sender), take(call, receiver)) else {
        return MediaOut::default();
    };
    let out = if is_offer {
        sdes::offer(p, m, kept, &mut from, &mut to, keys)
    } else {
        let offered = call
            .legs
            .get(receiver)
            .and_then(|l| l.medias.get(i))
            .map(|s| s.proto.clone())
            .unwrap_or_default();
        sdes::answer(p, m, &offered, &mut from, &mut to, keys)
    };
    for (leg, slot) in [(sender, from), (receiver, to)] {
        if let Some(s) = call.legs.get_mut(leg).and_then(|l| l.medias.get_mut(i)) {
            s.sdes = slot;
        }
    }
    out
}

fn parse_sdp(p: &OfferAnswer) -> Result<Body, SessionError> {
    Body::parse(&p.sdp).map_err(|e| {
        tracing::info!(call_id = ?p.call.call_id, error = %e, "failed to parse SDP");
        SessionError::SdpParse
    })
}

/// What rtpengine refuses after parsing, before it looks at the call.
fn check_streams(p: &OfferAnswer, sd: &Body) -> Result<(), SessionError> {
    match sd.incomplete() {
        Some(why) => {
            tracing::info!(call_id = ?p.call.call_id, why, "incomplete SDP");
            Err(SessionError::SdpIncomplete)
        }
        None => Ok(()),
    }
}

fn new_call(call_id: &str, now: Now) -> Call {
    Call {
        id: call_id.to_owned(),
        created: now,
        last_signal: now,
        shard: shard_of(call_id),
        legs: Vec::new(),
        destroy_at: None,
        recording: false,
        record_open: false,
        block_media: false,
        metadata: None,
        target_refused: false,
        learning: None,
        created_from: None,
    }
}

fn leg_by_tag_or_new(
    call: &mut Call,
    tag: &str,
    iface: &str,
    now: Now,
) -> Result<usize, SessionError> {
    if let Some(l) = call.leg_by_tag(tag) {
        return Ok(l);
    }
    limits::room_for_leg(call)?;
    call.legs
        .push(Leg::new(Some(tag.to_owned()), iface.to_owned(), now));
    Ok(call.legs.len() - 1)
}

/// The leg an offer from `sender` goes to: the tagged one, else the branch the sender already
/// offered to, else its current peer (a re-offer), else a new untagged leg.
fn find_receiver(
    call: &mut Call,
    sender: usize,
    to_tag: Option<&str>,
    branch: Option<&str>,
    iface: &str,
    now: Now,
) -> Result<usize, SessionError> {
    let found = if let Some(t) = to_tag {
        call.leg_by_tag(t)
    } else {
        None
    };
    let found = found
        .or_else(|| {
            call.legs.iter().position(|l| {
                l.created_by == Some(sender) && l.tag.is_none() && l.branch.as_deref() == branch
            })
        })
        .or_else(|| {
            // A to-tag names a specific leg: an unknown one is a new leg, not the current peer.
            if to_tag.is_some() {
                return None;
            }
            let peer = call.legs[sender].peer?;
            let pl = &call.legs[peer];
            (branch.is_none() || pl.branch.as_deref() == branch || pl.tag.is_some()).then_some(peer)
        });
    let idx = match found {
        Some(i) => i,
        None => {
            limits::room_for_leg(call)?;
            let mut leg = Leg::new(to_tag.map(str::to_owned), iface.to_owned(), now);
            leg.branch = branch.map(str::to_owned);
            leg.created_by = Some(sender);
            call.legs.push(leg);
            call.legs.len() - 1
        }
    };
    if let (Some(t), None) = (to_tag, &call.legs[idx].tag) {
        call.legs[idx].tag = Some(t.to_owned());
    }
    if idx != sender {
        call.legs[sender].peer = Some(idx);
        call.legs[idx].peer = Some(sender);
    }
    Ok(idx)
}

/// The o= version to send for this SDP: the first one seen, bumped by one whenever the rest of
/// the sender's SDP changes. Returns (digest of the masked text, version); a non-numeric
/// version counts as 0.
fn sdp_version(
    sd: &mut Body,
    calls: &std::collections::HashMap<String, Call>,
    call_id: &str,
    sender: usize,
) -> (u64, u64) {
    use std::hash::{Hash, Hasher};
    let incoming = sd.replace_versions("0");
    // A fixed-key hasher: the digest only has to stay stable within this process.
    let mut h = std::hash::DefaultHasher::new();
    sd.to_string().hash(&mut h);
    let masked = h.finish();
    // Every session's o= gets the version of the first one.
    let number = sd_version_number(incoming.first().and_then(Option::as_deref).unwrap_or("0"));
    sd.restore_versions(incoming);
    let previous = calls
        .get(call_id)
        .and_then(|c| c.legs.get(sender))
        .and_then(|l| l.sdp_version);
    match previous {
        None => (masked, number),
        Some((text, v)) if text == masked => (text, v),
        Some((_, v)) => (masked, v.saturating_add(1)),
    }
}

fn sd_version_number(v: &str) -> u64 {
    v.trim().parse().unwrap_or(0)
}

/// With `SIP-source-address` (and no `trust-address`), media goes to the SIP source address.
fn source_override(p: &OfferAnswer) -> Option<IpAddr> {
    (p.flags.sip_source_address && !p.flags.trust_address)
        .then_some(p.received_from)
        .flatten()
}

fn with_ip(a: SocketAddr, ip: Option<IpAddr>) -> SocketAddr {
    ip.map_or(a, |ip| SocketAddr::new(ip, a.port()))
}
