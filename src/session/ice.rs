//! ICE as the session layer negotiates it: whether the relay does ICE with a side, the
//! credentials it uses there (stable across re-INVITEs), and the lines it writes.
//!
//! The relay is an ICE-lite agent (RFC 8445 §2.5) towards every side it does ICE with: it writes
//! `a=ice-lite` at session level, its ufrag and password, and one host candidate per relay
//! socket of the media (component 1 for RTP, 2 for RTCP unless muxed). The peer, always the
//! controlling agent then, checks those candidates and nominates; the worker answers the checks
//! and takes media only from the address that passed one (`crate::flow::FlowIce`).
//!
//! When: `ICE=force` (and `force-relay`: the relay's candidates are relay candidates from the
//! peer's point of view anyway) towards the receiver of the message; without an `ICE` key (or
//! `optional`), when the other side's SDP had ICE (an offer's sender, an answer's offerer), as
//! rtpengine does, so that two browsers can call each other without flags. A peer's own
//! candidates are never passed on: the relay answers for the media path and they would route
//! around it. A side whose SDP came without ICE (an answer that declined it) gets none from the
//! relay's flows either: media from it is latched as usual.

use crate::flow::FlowIce;
use crate::ice::{candidate_priority, Credentials};
use crate::sdp::ice::{Candidate, CandidateType, IceAttributes, Transport};
use crate::sdp::model::Attribute;
use crate::session::call::LocalPair;
use crate::session::command::{IceMode, OfferAnswer};
use crate::session::keys::KeySource;

/// Host candidates, highest local preference.
const HOST_TYPE_PREF: u32 = 126;
const LOCAL_PREF: u16 = 65535;

/// The ICE state of one media of one leg.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IceSlot {
    /// The side's ufrag and password from its last SDP.
    pub theirs: Option<Credentials>,
    /// The relay's towards this side (made the first time ICE is written to it).
    pub ours: Option<Credentials>,
    /// The relay does ICE with this side.
    pub enabled: bool,
    /// The side is an ICE-lite agent too: nobody sends checks (RFC 8445 §6.1.1), so its media
    /// is latched as without ICE.
    pub their_lite: bool,
    /// The side has sent an SDP: `theirs` says whether it does ICE at all.
    pub their_sdp: bool,
}

impl std::fmt::Debug for IceSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceSlot")
            .field("theirs", &self.theirs.as_ref().map(|c| &c.ufrag))
            .field("ours", &self.ours.as_ref().map(|c| &c.ufrag))
            .field("enabled", &self.enabled)
            .field("their_lite", &self.their_lite)
            .field("their_sdp", &self.their_sdp)
            .finish()
    }
}

impl IceSlot {
    /// Takes the side's credentials from its SDP (none: it does no ICE, or stopped).
    pub fn note_sdp(&mut self, ice: &IceAttributes) {
        self.theirs = match (&ice.ufrag, &ice.pwd) {
            (Some(ufrag), Some(pwd)) => Some(Credentials {
                ufrag: ufrag.clone(),
                pwd: pwd.clone(),
            }),
            _ => None,
        };
        self.their_lite = ice.lite;
        self.their_sdp = true;
    }

    /// What the side's flow of `component` runs.
    pub fn flow_ice(&self, component: u16) -> Option<FlowIce> {
        // A side that answered (or offered) without ICE never sends a check.
        if !self.enabled || self.their_lite || (self.their_sdp && self.theirs.is_none()) {
            return None;
        }
        self.ours.as_ref().map(|local| FlowIce {
            local: local.clone(),
            remote: self.theirs.clone(),
            component,
        })
    }
}

/// The ICE lines of one RTP media section towards `receiver` (whose relay sockets are
/// `local`): `None` when the relay does no ICE with it (the input's lines are then removed).
/// `other_side_ice`: the other side's SDP had ICE (the offer's sender, or the answer's offerer),
/// which is what the default follows.
pub fn towards(
    p: &OfferAnswer,
    receiver: &mut IceSlot,
    local: Option<LocalPair>,
    rtcp_mux: bool,
    other_side_ice: bool,
    keys: &mut dyn KeySource,
) -> Option<Vec<Attribute>> {
    let wanted = match p.ice {
        IceMode::Force | IceMode::ForceRelay => true,
        IceMode::Default | IceMode::Optional => other_side_ice,
        IceMode::Remove => false,
    };
    let Some(local) = local.filter(|_| wanted) else {
        receiver.enabled = false;
        return None;
    };
    if receiver.ours.is_none() {
        let mut bytes = [0u8; Credentials::RANDOM_BYTES];
        if !keys.fill(&mut bytes) {
            tracing::warn!("no key source: ICE credentials not made, ICE removed");
            receiver.enabled = false;
            return None;
        }
        receiver.ours = Some(Credentials::from_random_bytes(&bytes));
    }
    receiver.enabled = true;
    let creds = receiver.ours.as_ref()?;
    let mut out = vec![
        Attribute::new("ice-ufrag", Some(creds.ufrag.clone())),
        Attribute::new("ice-pwd", Some(creds.pwd.clone())),
    ];
    let components: &[(u16, u16)] = if rtcp_mux {
        &[(1, 0)]
    } else {
        &[(1, 0), (2, 1)]
    };
    for &(component, offset) in components {
        let c = Candidate {
            foundation: "1".into(),
            component,
            transport: Transport::Udp,
            priority: candidate_priority(HOST_TYPE_PREF, LOCAL_PREF, component),
            address: local.advertised.to_string(),
            port: local.rtp_port.wrapping_add(offset),
            typ: CandidateType::Host,
            raddr: None,
            rport: None,
            tcptype: None,
            generation: None,
            extensions: Vec::new(),
        };
        out.push(c.to_attribute());
    }
    out.push(Attribute::new("end-of-candidates", None));
    Some(out)
}
