//! DTLS-SRTP (RFC 5763, RFC 5764) as the session layer negotiates it: which side the relay
//! terminates DTLS with, in which role, and the `a=fingerprint`/`a=setup` lines it writes.
//!
//! The relay terminates DTLS on each side that speaks a `UDP/TLS/...` profile: towards such a
//! side it writes its own certificate's fingerprint and an `a=setup` of its own, and the side's
//! flows run the handshake (`crate::flow::FlowDtls`). Like rtpengine it also offers DTLS next
//! to SDES (`RTP/SAVP(F)`, or `a=crypto` on `RTP/AVP`; after the `a=crypto` lines): an answer
//! with a fingerprint picks DTLS, one with `a=crypto` only SDES; an SRTP offerer that gave a
//! fingerprint is answered with DTLS and no `a=crypto` (rtpengine favours DTLS too). What a
//! side sent of DTLS never reaches the other side: the input's `a=fingerprint`, `a=setup` and `a=tls-id` lines are dropped whenever
//! the relay writes its own or the profile towards the receiver is not DTLS at all. With
//! `DTLS=off` (or no certificate) towards a `UDP/TLS` receiver they are passed on untouched.
//!
//! Roles (RFC 5763 §5): an offer towards a DTLS side says `actpass` (or `passive`/`active` when
//! the call or `--dtls-passive` asks); the relay is provisionally passive after an `actpass`,
//! so a ClientHello that beats the answer is taken, and settles on the answer's `a=setup`. An
//! answer towards a DTLS offerer is `active` unless the offerer said `active`, or the call asks
//! for `passive` (`DTLS=passive` in the answer, `DTLS-reverse=passive` in the offer,
//! `--dtls-passive`); a re-offer's `actpass` without a `DTLS` key keeps the role already settled.

use crate::dtls::{DtlsContext, Fingerprint, HashFunc, Role};
use crate::flow::FlowDtls;
use crate::sdp::model::{Attribute, Media, SessionDescription};
use crate::session::command::{DtlsMode, OfferAnswer, Profile};

/// An `a=setup` value (RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
    HoldConn,
}

impl Setup {
    pub fn parse(s: &str) -> Option<Setup> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// The DTLS state of one media of one leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtlsSlot {
    /// The side's `a=fingerprint` from its last SDP (media level, else session level); one
    /// that does not parse or names an unknown hash is ignored.
    pub their_fingerprint: Option<Fingerprint>,
    /// The side's `a=setup` from its last SDP.
    pub their_setup: Option<Setup>,
    /// The relay terminates DTLS-SRTP with this side, in this role.
    pub role: Option<Role>,
    /// The role this side's own offer asked the relay to take when answering it
    /// (`DTLS-reverse`), if the side says `actpass`.
    pub reverse: Option<Role>,
    /// The fingerprint hash an offer towards this side asked for (`DTLS-fingerprint`): later
    /// offers and answers without the key keep announcing it.
    pub hash: Option<HashFunc>,
}

impl DtlsSlot {
    /// What this side's flows run: the handshake, once a role is set.
    pub fn flow_dtls(&self) -> Option<FlowDtls> {
        self.role.map(|role| FlowDtls {
            role,
            fingerprint: self.their_fingerprint.clone(),
        })
    }

    /// Takes what a side's SDP says of DTLS for one media section.
    pub fn note_sdp(&mut self, session: Option<&SessionDescription>, m: &Media) {
        let first = |name: &str| {
            m.attributes()
                .find(|a| a.is(name))
                .or_else(|| session.and_then(|s| s.attribute(name)))
                .map(|a| a.value_trimmed().to_owned())
        };
        self.their_fingerprint = first("fingerprint").and_then(|v| match Fingerprint::parse(&v) {
            Ok(fp) => Some(fp),
            Err(error) => {
                tracing::debug!(%error, "a=fingerprint ignored");
                None
            }
        });
        self.their_setup = first("setup").and_then(|v| Setup::parse(&v));
    }
}

/// What to write for one m= line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtlsOut {
    /// Drop the input's DTLS lines (media and session level).
    pub strip: bool,
    /// The relay's own lines, written after the RTCP attributes.
    pub attributes: Vec<Attribute>,
}

/// The hash of the fingerprint the relay announces to a side: `DTLS-fingerprint`, else the one
/// an earlier offer to it asked for, else `--dtls-signature`.
fn our_fingerprint(p: &OfferAnswer, ctx: &DtlsContext, side: &DtlsSlot) -> Fingerprint {
    let hash = p
        .dtls_fingerprint
        .or(side.hash)
        .unwrap_or(ctx.options().signature);
    ctx.certificate().fingerprint_with(hash)
}

fn lines(p: &OfferAnswer, ctx: &DtlsContext, side: &DtlsSlot, setup: Setup) -> Vec<Attribute> {
    // rtpengine's order: a=setup, then a=fingerprint.
    vec![
        Attribute::new("setup", Some(setup.name().to_owned())),
        Attribute::new(
            "fingerprint",
            Some(our_fingerprint(p, ctx, side).to_string()),
        ),
    ]
}

/// Whether the relay terminates DTLS towards a side with profile `out`: any SRTP profile, as
/// rtpengine 10.5 does (a plain `RTP/SAVP` offer carries DTLS lines next to its `a=crypto`
/// ones, and the answerer picks either).
fn terminates(p: &OfferAnswer, out: Option<Profile>, ctx: Option<&DtlsContext>) -> bool {
    ctx.is_some() && p.dtls != DtlsMode::Off && out.is_some_and(Profile::is_srtp)
}

/// The offer of one RTP media section towards `receiver`, whose profile will be `out`.
pub fn offer(
    p: &OfferAnswer,
    out: Option<Profile>,
    offerer: &mut DtlsSlot,
    receiver: &mut DtlsSlot,
    ctx: Option<&DtlsContext>,
) -> DtlsOut {
    offerer.reverse = p.dtls_reverse;
    let Some(ctx) = ctx.filter(|_| terminates(p, out, ctx)) else {
        receiver.role = None;
        return DtlsOut {
            strip: out.is_some_and(|o| !o.is_dtls()),
            attributes: Vec::new(),
        };
    };
    let setup = match p.dtls {
        DtlsMode::Active => Setup::Active,
        DtlsMode::Passive => Setup::Passive,
        _ if ctx.options().passive => Setup::Passive,
        _ => Setup::ActPass,
    };
    // A re-offer keeps a settled role; a first offer is passive until the answer says.
    receiver.role = match setup {
        Setup::Active => Some(Role::Active),
        Setup::Passive => Some(Role::Passive),
        _ => receiver.role.or(Some(Role::Passive)),
    };
    if p.dtls_fingerprint.is_some() {
        receiver.hash = p.dtls_fingerprint;
    }
    DtlsOut {
        strip: true,
        attributes: lines(p, ctx, receiver, setup),
    }
}

/// The answer of one RTP media section from `answerer` back to `offerer`, whose profile will be
/// `out`. Settles the relay's role with both.
pub fn answer(
    p: &OfferAnswer,
    out: Option<Profile>,
    answerer: &mut DtlsSlot,
    offerer: &mut DtlsSlot,
    ctx: Option<&DtlsContext>,
) -> DtlsOut {
    // The answerer: the relay offered it DTLS; its a=setup decides (none: active, RFC 4145).
    let with_answerer = answerer.role.is_some();
    if with_answerer {
        answerer.role = if answerer.their_fingerprint.is_none() {
            None
        } else {
            Some(match answerer.their_setup {
                Some(Setup::Passive) => Role::Active,
                _ => Role::Passive,
            })
        };
    }
    let Some(ctx) = ctx.filter(|_| terminates(p, out, ctx) && offerer.their_fingerprint.is_some())
    else {
        offerer.role = None;
        return DtlsOut {
            strip: with_answerer || out.is_some_and(|o| !o.is_dtls()),
            attributes: Vec::new(),
        };
    };
    let default = if ctx.options().passive {
        Role::Passive
    } else {
        Role::Active
    };
    // A re-offer's `actpass` keeps the role the association has (RFC 5763 §5: changing it
    // needs a new association, which the browser does not start for a re-INVITE).
    let role = match (offerer.their_setup, p.dtls) {
        (Some(Setup::Active), _) => Role::Passive,
        (Some(Setup::Passive), _) => Role::Active,
        (_, DtlsMode::Passive) => Role::Passive,
        (_, DtlsMode::Active) => Role::Active,
        _ => offerer.role.or(offerer.reverse).unwrap_or(default),
    };
    offerer.role = Some(role);
    if p.dtls_fingerprint.is_some() {
        offerer.hash = p.dtls_fingerprint;
    }
    let setup = match role {
        Role::Active => Setup::Active,
        Role::Passive => Setup::Passive,
    };
    DtlsOut {
        strip: true,
        attributes: lines(p, ctx, offerer, setup),
    }
}

/// The hash a `DTLS-fingerprint` value names.
pub fn hash_named(name: &str) -> Option<HashFunc> {
    HashFunc::from_name(name.trim())
}
