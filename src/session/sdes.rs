//! SDES (RFC 4568) bridging as rtpengine does it: which `a=crypto` lines the relay writes into
//! the SDP it passes on, which suite each side ends up with, and the SRTP parameters every flow
//! gets ([`SdesSlot::flow_crypto`]).
//!
//! Each side's `a=crypto` key is the key that side sends with. The relay's lines towards a side
//! are the keys the relay sends to it with:
//!
//! - An offer towards an SRTP side (the offerer's profile, or `transport-protocol: RTP/SAVP`,
//!   or OSRTP) carries the offerer's own usable lines first (same tag, same key: what rtpengine
//!   calls offering "with the same options"), then one new line per other suite in rtpengine's
//!   order ([`Suite::ALL`]), numbered on from the highest tag, unless `SDES-nonew`. `no-`/`only-`
//!   filter both kinds; `order:` moves suites to the front without renumbering.
//! - The answer towards the offerer carries one line: the offerer's suite (`offerer_pref`
//!   first, else the suite the answerer took if the offerer offered it, else the offerer's
//!   first), under the offerer's tag, with the answerer's key when both use the same suite and a
//!   key of the relay's otherwise.
//! - A side that speaks plain RTP gets no `a=crypto` (the relay decrypts for it).
//!
//! Keys the relay generates are kept per side and suite ([`SdesSlot::generated`]), so a
//! re-INVITE offers and answers the same keys and the workers keep their SRTP state (ROC,
//! replay window); a key changes only when the peer's does. Lines that do not parse, name a suite
//! we do not implement or carry a key of the wrong length are skipped, never fatal.

use crate::flow::FlowCrypto;
use crate::sdp::crypto::{crypto_attributes, Crypto, KeyParam, Lifetime};
use crate::sdp::model::{Attribute, Media};
use crate::session::command::{OfferAnswer, Profile, Sdes, TransportProtocol};
use crate::session::keys::KeySource;
use crate::srtp::Suite;

/// The `SDES-lifetime` value: 2^31 packets.
const LIFETIME_EXPONENT: u8 = 31;

/// The SDES state of one media of one leg. Its `Debug` shows no key material (the lines' own
/// `Debug` hides theirs; generated keys show as their suites).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SdesSlot {
    /// This side's usable `a=crypto` lines (its sending keys) from its last SDP, after the
    /// offer's suite filters.
    pub theirs: Vec<Crypto>,
    /// The lines the relay last wrote towards this side.
    pub ours: Vec<Crypto>,
    /// Key and salt the relay generated towards this side, per suite (stable across
    /// re-INVITEs).
    pub generated: Vec<(Suite, Vec<u8>)>,
    /// Negotiated: the line this side sends with (what arrives from it is decrypted with it).
    pub their_key: Option<Crypto>,
    /// Negotiated: the relay's line towards this side (what goes to it is encrypted with it).
    pub our_key: Option<Crypto>,
    /// `SDES-offerer_pref` of the offer this side made, for the answer towards it.
    pub offerer_pref: Vec<String>,
}

impl std::fmt::Debug for SdesSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdesSlot")
            .field("theirs", &self.theirs)
            .field("ours", &self.ours)
            .field(
                "generated",
                &self.generated.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            )
            .field("their_key", &self.their_key)
            .field("our_key", &self.our_key)
            .field("offerer_pref", &self.offerer_pref)
            .finish()
    }
}

impl SdesSlot {
    /// The SRTP parameters of this side's flows (RTP and RTCP alike): plain when nothing was
    /// negotiated with this side.
    pub fn flow_crypto(&self) -> FlowCrypto {
        FlowCrypto {
            inbound: self.their_key.as_ref().and_then(|c| c.srtp_params().ok()),
            outbound: self.our_key.as_ref().and_then(|c| c.srtp_params().ok()),
            ..FlowCrypto::default()
        }
    }

    /// The suite in effect with this side, for `query`.
    pub fn suite(&self) -> Option<Suite> {
        self.our_key
            .as_ref()
            .or(self.their_key.as_ref())
            .and_then(Crypto::suite)
    }
}

/// What to write for one m= line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaOut {
    /// A new m= protocol, if it changes.
    pub proto: Option<String>,
    /// The `a=crypto` lines replacing the input's; `None` leaves the input's alone.
    pub crypto: Option<Vec<Attribute>>,
    /// The profile the m= line ends up with (`None`: not an RTP profile of ours).
    pub out_profile: Option<Profile>,
}

/// The usable `a=crypto` lines of a media section; the others are logged and skipped.
pub fn usable_lines(m: &Media) -> Vec<Crypto> {
    crypto_attributes(m)
        .filter_map(|c| match c.and_then(|c| c.srtp_params().map(|_| c)) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!(error = %e, "a=crypto line skipped");
                None
            }
        })
        .collect()
}

fn has_crypto(m: &Media) -> bool {
    m.attributes().any(|a| a.is("crypto"))
}

/// Whether `suite` passes `no-`/`only-` (`only-` wins).
fn allowed(s: &Sdes, suite: &str) -> bool {
    if !s.only.is_empty() {
        return s.only.iter().any(|o| o.eq_ignore_ascii_case(suite));
    }
    !s.no.iter().any(|n| n.eq_ignore_ascii_case(suite))
}

/// The session parameters of a line the relay writes: `base`'s, with the flags' overrides.
fn session_params(base: &[String], s: &Sdes) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for (name, want) in [
        ("UNENCRYPTED_SRTP", s.unencrypted_srtp),
        ("UNENCRYPTED_SRTCP", s.unencrypted_srtcp),
        ("UNAUTHENTICATED_SRTP", s.unauthenticated_srtp),
    ] {
        match want {
            Some(true) if !out.iter().any(|p| p.eq_ignore_ascii_case(name)) => {
                out.push(name.to_owned());
            }
            Some(false) => out.retain(|p| !p.eq_ignore_ascii_case(name)),
            _ => {}
        }
    }
    out
}

/// The relay's key and salt for `suite` towards a side: the one generated before, else a new
/// one (`None` when the key source has none).
fn key_for(slot: &mut SdesSlot, suite: Suite, keys: &mut dyn KeySource) -> Option<Vec<u8>> {
    if let Some((_, k)) = slot.generated.iter().find(|(s, _)| *s == suite) {
        return Some(k.clone());
    }
    let mut k = vec![0u8; suite.inline_key_len()];
    if !keys.fill(&mut k) {
        tracing::warn!(
            suite = suite.name(),
            "no key source: SDES suite not offered"
        );
        return None;
    }
    slot.generated.push((suite, k.clone()));
    Some(k)
}

/// An `inline:` key parameter as rtpengine writes it: no `=` padding unless `SDES-pad`, the
/// lifetime 2^31 with `SDES-lifetime`.
fn inline_key(key_salt: &[u8], s: &Sdes) -> KeyParam {
    let mut k = KeyParam::inline(key_salt);
    k.key_text = key_text(key_salt, s.pad);
    if s.lifetime {
        k.lifetime = Some(Lifetime::PowerOfTwo(LIFETIME_EXPONENT));
    }
    k
}

/// Base64 of key and salt, `=` padding only when asked for.
fn key_text(key_salt: &[u8], pad: bool) -> String {
    let mut t = KeyParam::inline(key_salt).key_text;
    if !pad {
        let trimmed = t.trim_end_matches('=').len();
        t.truncate(trimmed);
    }
    t
}

/// A key parameter passed on: the same key, written as the relay writes its own (rtpengine
/// decodes and re-encodes it, so padding follows `SDES-pad`), lifetime and MKI kept.
fn reencoded(k: &KeyParam, s: &Sdes) -> KeyParam {
    match k.key_salt() {
        Ok(key_salt) => KeyParam {
            key_text: key_text(&key_salt, s.pad),
            ..k.clone()
        },
        Err(_) => k.clone(),
    }
}

fn profile_of(m: &Media) -> Option<Profile> {
    Profile::from_name(&m.proto)
}

/// The `offer` of one RTP media section from `sender` to `receiver`: updates both slots and says
/// what the outgoing m= section gets. `kept` is the receiver's own profile when a re-offer
/// keeps it (see `negotiate::kept_profile`); `transport-protocol` still wins.
pub fn offer(
    p: &OfferAnswer,
    input: &Media,
    kept: Option<Profile>,
    sender: &mut SdesSlot,
    receiver: &mut SdesSlot,
    keys: &mut dyn KeySource,
) -> MediaOut {
    let Some(in_profile) = profile_of(input).filter(|_| input.is_rtp()) else {
        return MediaOut::default();
    };
    let usable = usable_lines(input);
    let s = &p.sdes;
    let set = match p.transport_protocol {
        Some(TransportProtocol::Set(pf)) => Some(pf),
        _ => None,
    };
    let out_profile = set.or(kept).unwrap_or(in_profile);
    // Opportunistic SRTP: a plain profile with a=crypto.
    let osrtp_in = !in_profile.is_srtp() && !usable.is_empty();
    let out_srtp =
        !s.off && (out_profile.is_srtp() || (set.is_none() && osrtp_in) || p.osrtp.offer);

    // The offerer's lines the answer towards it may pick from: filtered, or the first one when
    // the filters leave none (rtpengine keeps it for the answer, not for the recipient).
    let filtered: Vec<Crypto> = usable
        .iter()
        .filter(|c| allowed(s, &c.suite_name))
        .cloned()
        .collect();
    sender.theirs = if filtered.is_empty() {
        usable.iter().take(1).cloned().collect()
    } else {
        filtered.clone()
    };
    sender.offerer_pref.clone_from(&s.offerer_pref);

    let proto = (out_profile != in_profile).then(|| out_profile.name().to_owned());
    if !out_srtp {
        receiver.ours.clear();
        return MediaOut {
            proto,
            crypto: has_crypto(input).then(Vec::new),
            out_profile: Some(out_profile),
        };
    }
    let mut lines: Vec<Crypto> = filtered
        .iter()
        .map(|c| Crypto {
            keys: c.keys.iter().map(|k| reencoded(k, s)).collect(),
            session_params: session_params(&c.session_params, s),
            ..c.clone()
        })
        .collect();
    // A re-offer: the line negotiated with the receiver comes first, same tag and key, unless
    // the offerer offers that suite itself (its lines keep their order then, as in rtpengine).
    if let Some(neg) = receiver
        .our_key
        .clone()
        .filter(|c| allowed(s, &c.suite_name))
    {
        if !lines
            .iter()
            .any(|c| c.suite_name.eq_ignore_ascii_case(&neg.suite_name))
        {
            lines.insert(0, neg);
        }
    }
    if !s.nonew {
        let mut next_tag = lines.iter().map(|c| c.tag).max().unwrap_or(0);
        for suite in Suite::ALL {
            if !allowed(s, suite.name()) || lines.iter().any(|c| c.suite() == Some(suite)) {
                continue;
            }
            let Some(k) = key_for(receiver, suite, keys) else {
                continue;
            };
            next_tag = next_tag.saturating_add(1);
            let mut c = Crypto::new(next_tag, suite, inline_key(&k, s));
            c.session_params = session_params(&[], s);
            lines.push(c);
        }
    }
    if !s.order.is_empty() {
        let rank = |c: &Crypto| {
            s.order
                .iter()
                .position(|o| o.eq_ignore_ascii_case(&c.suite_name))
                .unwrap_or(usize::MAX)
        };
        lines.sort_by_key(rank);
    }
    let attrs = lines.iter().map(Crypto::to_attribute).collect();
    receiver.ours = lines;
    MediaOut {
        proto,
        crypto: Some(attrs),
        out_profile: Some(out_profile),
    }
}

/// The `answer` of one RTP media section from `answerer` back to `offerer`; `offered_proto` is
/// the protocol the offerer used. Settles the keys of both sides.
pub fn answer(
    p: &OfferAnswer,
    input: &Media,
    offered_proto: &str,
    answerer: &mut SdesSlot,
    offerer: &mut SdesSlot,
    keys: &mut dyn KeySource,
) -> MediaOut {
    let Some(in_profile) = profile_of(input).filter(|_| input.is_rtp()) else {
        return MediaOut::default();
    };
    let s = &p.sdes;
    let usable = usable_lines(input);
    answerer.theirs.clone_from(&usable);
    // The answerer's choice: its line whose tag (and suite) is one the relay offered it.
    let chosen = usable.iter().find_map(|c| {
        answerer
            .ours
            .iter()
            .find(|o| o.tag == c.tag && o.suite_name.eq_ignore_ascii_case(&c.suite_name))
            .or_else(|| {
                answerer
                    .ours
                    .iter()
                    .find(|o| o.suite_name.eq_ignore_ascii_case(&c.suite_name))
            })
            .map(|o| (c.clone(), o.clone()))
    });
    let keep = s.static_keys && answerer.their_key.is_some();
    if !keep {
        match chosen {
            Some((theirs, ours)) => {
                answerer.their_key = Some(theirs);
                answerer.our_key = Some(ours);
            }
            None => {
                answerer.their_key = None;
                answerer.our_key = None;
            }
        }
    }
    let answerer_suite = answerer.their_key.as_ref().and_then(Crypto::suite);

    // The profile towards the offerer: the one it offered, unless told otherwise.
    let out_profile = match p.transport_protocol {
        Some(TransportProtocol::Set(pf)) => pf,
        Some(TransportProtocol::Accept) => in_profile,
        None => Profile::from_name(offered_proto).unwrap_or(in_profile),
    };
    let proto = (out_profile != in_profile).then(|| out_profile.name().to_owned());
    let offerer_srtp = out_profile.is_srtp()
        || (!offerer.theirs.is_empty() && (answerer_suite.is_some() || p.osrtp.accept_rfc));
    if s.off || !offerer_srtp || offerer.theirs.is_empty() {
        if out_profile.is_srtp() && offerer.theirs.is_empty() && !s.off {
            tracing::info!("SRTP offerer without a usable a=crypto line: answered without one");
        }
        if !(keep && offerer.their_key.is_some()) {
            offerer.their_key = None;
            offerer.our_key = None;
        }
        offerer.ours.clear();
        return MediaOut {
            proto,
            crypto: Some(Vec::new()),
            out_profile: Some(out_profile),
        };
    }
    if !(keep && offerer.their_key.is_some()) {
        let pick = offerer
            .offerer_pref
            .iter()
            .find_map(|want| {
                offerer
                    .theirs
                    .iter()
                    .find(|c| c.suite_name.eq_ignore_ascii_case(want))
            })
            .or_else(|| {
                offerer
                    .theirs
                    .iter()
                    .find(|c| answerer_suite.is_some() && c.suite() == answerer_suite)
            })
            .or(offerer.theirs.first())
            .cloned();
        let Some(theirs) = pick else {
            return MediaOut {
                proto,
                crypto: Some(Vec::new()),
                out_profile: Some(out_profile),
            };
        };
        let suite = theirs.suite();
        // Same suite on both sides: the answerer's own key goes back, as rtpengine does.
        let ours = match (&answerer.their_key, suite) {
            (Some(a), Some(_)) if a.suite() == suite => Some(Crypto {
                tag: theirs.tag,
                suite_name: theirs.suite_name.clone(),
                keys: a.keys.clone(),
                session_params: session_params(&theirs.session_params, s),
            }),
            (_, Some(suite)) => key_for(offerer, suite, keys).map(|k| Crypto {
                tag: theirs.tag,
                suite_name: theirs.suite_name.clone(),
                keys: vec![inline_key(&k, s)],
                session_params: session_params(&theirs.session_params, s),
            }),
            _ => None,
        };
        offerer.their_key = ours.is_some().then_some(theirs);
        offerer.our_key = ours;
    }
    offerer.ours = offerer.our_key.iter().cloned().collect();
    MediaOut {
        proto,
        crypto: Some(offerer.ours.iter().map(Crypto::to_attribute).collect()),
        out_profile: Some(out_profile),
    }
}
