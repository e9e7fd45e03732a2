//! ICE as the session layer negotiates it: whether the relay does ICE with a side, the
//! credentials it uses there (stable across re-INVITEs), its role, and the lines it writes.
//!
//! The relay is a full ICE agent (RFC 8445) towards every side it does ICE with, as rtpengine
//! is: it writes its ufrag and password and one host candidate per relay socket of the media
//! (component 1 for RTP, 2 for RTCP unless muxed), answers the side's checks and checks the
//! side's candidates itself. It controls (nominates) towards the side it sent the offer to, and
//! towards an ICE-lite side; the side that sent the offer controls otherwise. `ICE-lite`
//! (offers only, remembered) makes it an ICE-lite agent towards the offer's receiver
//! (`forward`), its sender (`backward`) or both: `a=ice-lite`, and only the side's checks are
//! answered. Either way the worker takes media only from an address that passed a check
//! (`crate::flow::FlowIce`).
//!
//! When: `ICE=force` (and `force-relay`: the relay's candidates are relay candidates from the
//! peer's point of view anyway) towards the receiver of the message; `optional` too, except in
//! an answer to an offer without ICE; without an `ICE` key, when the other side's SDP had ICE
//! (an offer's sender, an answer's offerer) or ICE already runs with the receiver, as rtpengine
//! does, so that two browsers can call each other without flags. A side's own
//! candidates are never passed on to the other side (the relay answers for the media path and
//! they would route around it); the relay checks those the target policy admits. A side whose
//! SDP came without ICE (an answer that declined it) gets none from the relay's flows either:
//! media from it is latched as usual; so is a side that is ICE-lite when the relay is too.

use crate::flow::{FlowIce, FullIce};
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
    /// The relay is an ICE-lite agent towards this side (`ICE-lite`); else it runs full ICE.
    pub lite: bool,
    /// Full ICE: the relay controls towards this side (it sent the first offer with ICE).
    pub controlling: bool,
    /// The relay's tie breaker towards this side (random, made with `ours`).
    pub tie_breaker: u64,
    /// Secret seed of the relay's STUN transaction ids towards this side (random, made with
    /// `ours`; never sent: the ufrag, password and tie breaker all reach the peer).
    pub seed: [u8; 32],
    /// The side's candidates from its last SDP that the target policy admitted.
    pub candidates: Vec<Candidate>,
    /// The side's last SDP said `a=end-of-candidates`.
    pub their_end_of_candidates: bool,
    /// The side's last SDP announced trickle ICE (`a=ice-options:trickle`).
    pub their_trickle: bool,
}

impl std::fmt::Debug for IceSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceSlot")
            .field("theirs", &self.theirs.as_ref().map(|c| &c.ufrag))
            .field("ours", &self.ours.as_ref().map(|c| &c.ufrag))
            .field("enabled", &self.enabled)
            .field("their_lite", &self.their_lite)
            .field("their_sdp", &self.their_sdp)
            .field("lite", &self.lite)
            .field("controlling", &self.controlling)
            .field("candidates", &self.candidates.len())
            .finish()
    }
}

impl IceSlot {
    /// Takes the side's credentials from its SDP (none: it does no ICE, or stopped), and its
    /// candidates (the caller kept only those the target policy admits).
    pub fn note_sdp(&mut self, ice: &mut IceAttributes) {
        self.theirs = match (&ice.ufrag, &ice.pwd) {
            (Some(ufrag), Some(pwd)) => Some(Credentials {
                ufrag: ufrag.clone(),
                pwd: pwd.clone(),
            }),
            _ => None,
        };
        self.their_lite = ice.lite;
        self.their_sdp = true;
        self.candidates = std::mem::take(&mut ice.candidates);
        // Without trickle, the SDP holds every candidate the side will give.
        self.their_end_of_candidates = ice.end_of_candidates || !ice.trickle();
        self.their_trickle = ice.trickle();
    }

    /// What the side's flow of `component` runs.
    pub fn flow_ice(&self, component: u16) -> Option<FlowIce> {
        // A side that answered (or offered) without ICE never sends a check; nor do two
        // ICE-lite agents (RFC 8445 §6.1.1).
        if !self.enabled
            || (self.their_sdp && self.theirs.is_none())
            || (self.lite && self.their_lite)
        {
            return None;
        }
        let full = (!self.lite).then(|| FullIce {
            controlling: self.controlling || self.their_lite,
            tie_breaker: self.tie_breaker,
            seed: self.seed,
            candidates: self
                .candidates
                .iter()
                .filter(|c| c.component == component)
                .cloned()
                .collect(),
            end_of_candidates: self.their_end_of_candidates,
        });
        self.ours.as_ref().map(|local| FlowIce {
            local: local.clone(),
            remote: self.theirs.clone(),
            component,
            full,
        })
    }
}

/// The ICE lines of one RTP media section towards `receiver` (whose relay sockets are
/// `local`): `None` when the relay does no ICE with it (the input's lines are then removed).
/// `other_side_ice`: the other side's SDP had ICE (the offer's sender, or the answer's offerer),
/// which is what the default follows. `is_offer`: the message is an offer (the relay then
/// offers to `receiver`, which makes it the controlling agent there when ICE starts).
pub fn towards(
    p: &OfferAnswer,
    is_offer: bool,
    receiver: &mut IceSlot,
    local: Option<LocalPair>,
    rtcp_mux: bool,
    other_side_ice: bool,
    keys: &mut dyn KeySource,
) -> Option<Vec<Attribute>> {
    let wanted = match p.ice {
        IceMode::Force | IceMode::ForceRelay => true,
        // `optional` generates ICE for a plain offer too (rtpengine then adds itself to the
        // side's candidates; the relay lists only its own), but answers an offer without ICE
        // without it.
        IceMode::Optional => is_offer || receiver.theirs.is_some(),
        // ICE that runs with a side goes on in a re-offer without the key, as in rtpengine.
        IceMode::Default => other_side_ice || (receiver.enabled && receiver.theirs.is_some()),
        IceMode::Remove => false,
    };
    let Some(local) = local.filter(|_| wanted) else {
        receiver.enabled = false;
        return None;
    };
    if receiver.ours.is_none() {
        let mut bytes = [0u8; Credentials::RANDOM_BYTES];
        let mut tie_breaker = [0u8; 8];
        let mut seed = [0u8; 32];
        if !keys.fill(&mut bytes) || !keys.fill(&mut tie_breaker) || !keys.fill(&mut seed) {
            tracing::warn!("no key source: ICE credentials not made, ICE removed");
            receiver.enabled = false;
            return None;
        }
        receiver.ours = Some(Credentials::from_random_bytes(&bytes));
        receiver.tie_breaker = u64::from_le_bytes(tie_breaker);
        receiver.seed = seed;
        receiver.controlling = is_offer;
    }
    receiver.enabled = true;
    let creds = receiver.ours.as_ref()?;
    let mut out = vec![
        Attribute::new("ice-ufrag", Some(creds.ufrag.clone())),
        Attribute::new("ice-pwd", Some(creds.pwd.clone())),
    ];
    // Trickle support is announced back to a side that announced it (as rtpengine does), or
    // in an offer with `trickle ICE`. The relay's own candidates are all in this SDP; a side's
    // later ones reach it as peer-reflexive from that side's checks.
    let trickle = receiver.their_trickle || (is_offer && p.flags.trickle_ice);
    if trickle {
        out.push(Attribute::new("ice-options", Some("trickle".into())));
    }
    let components: &[(u16, u16)] = if rtcp_mux {
        &[(1, 0)]
    } else {
        &[(1, 0), (2, 1)]
    };
    for &(component, offset) in components {
        let c = Candidate {
            foundation: foundation(local.advertised),
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
    // With trickle, say that these are all (RFC 8840); without, the SDP is complete anyway.
    if trickle {
        out.push(Attribute::new("end-of-candidates", None));
    }
    Some(out)
}

/// A host candidate's foundation (RFC 8445 §5.1.1.3: the same for candidates of one type on
/// one base address): 16 letters and digits derived from the address, the form rtpengine
/// writes.
fn foundation(addr: std::net::IpAddr) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("rtprelay host foundation {addr}").as_bytes());
    crate::ice::letters_and_digits(&digest)
}
