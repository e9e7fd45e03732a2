//! The DTLS and ICE state of one media of one leg, as stored (schema 2, optional): the role the
//! relay plays, the peer's fingerprint and credentials, and the relay's ICE credentials. A
//! restored call's flows expect the same handshake and checks again, so what arrives from a
//! WebRTC side is never forwarded unauthenticated after a failover; the browser's DTLS
//! association itself (its keys) is not stored, so media resumes after the peer's next
//! handshake (an ICE restart or re-INVITE). Secret: the ICE passwords.

use serde::{Deserialize, Serialize};

use crate::dtls::{Fingerprint, Role};
use crate::ice::Credentials;
use crate::session::dtls::{DtlsSlot, Setup};
use crate::session::ice::IceSlot;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebrtcRecord {
    /// `active` or `passive`: the relay terminates DTLS with this side.
    pub dtls_role: Option<String>,
    /// The side's `a=fingerprint` value.
    pub their_fingerprint: Option<String>,
    pub their_setup: Option<String>,
    /// `DTLS-reverse` of the side's offer, waiting for the answer.
    #[serde(default)]
    pub dtls_reverse: Option<String>,
    /// `DTLS-fingerprint` an offer to the side asked for (`sha-1`...).
    #[serde(default)]
    pub dtls_hash: Option<String>,
    /// (ufrag, pwd) of the side and of the relay.
    pub ice_theirs: Option<(String, String)>,
    pub ice_ours: Option<(String, String)>,
    pub ice: bool,
    /// The side is ICE-lite itself.
    #[serde(default)]
    pub ice_their_lite: bool,
    /// The side has sent an SDP (without `ice_theirs`: one without ICE).
    #[serde(default)]
    pub ice_their_sdp: bool,
    /// The relay runs full ICE with the side (records without it: ICE-lite, as before).
    #[serde(default)]
    pub ice_full: bool,
    #[serde(default)]
    pub ice_controlling: bool,
    #[serde(default)]
    pub ice_tie_breaker: u64,
    /// The secret seed of the relay's STUN transaction ids, hex.
    #[serde(default)]
    pub ice_seed: Option<String>,
    /// The side's admitted candidates, `a=candidate` values.
    #[serde(default)]
    pub ice_candidates: Vec<String>,
    #[serde(default)]
    pub ice_end_of_candidates: bool,
    #[serde(default)]
    pub ice_their_trickle: bool,
}

/// Most candidates read back from a record (as many as an SDP may give).
const MAX_STORED_CANDIDATES: usize = crate::sdp::ice::MAX_CANDIDATES;

fn creds(c: &Option<Credentials>) -> Option<(String, String)> {
    c.as_ref().map(|c| (c.ufrag.clone(), c.pwd.clone()))
}

fn creds_back(c: &Option<(String, String)>) -> Option<Credentials> {
    c.as_ref().and_then(|(ufrag, pwd)| {
        (crate::sdp::ice::check_ufrag(ufrag).is_ok() && crate::sdp::ice::check_pwd(pwd).is_ok())
            .then(|| Credentials {
                ufrag: ufrag.clone(),
                pwd: pwd.clone(),
            })
    })
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Active => "active",
        Role::Passive => "passive",
    }
}

fn role_back(s: &str) -> Option<Role> {
    match s {
        "active" => Some(Role::Active),
        "passive" => Some(Role::Passive),
        _ => None,
    }
}

/// 64 hex digits back to the seed; anything else is no seed.
fn seed_back(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl WebrtcRecord {
    /// `None` for a media without DTLS or ICE state.
    pub fn of(d: &DtlsSlot, i: &IceSlot) -> Option<WebrtcRecord> {
        if *d == DtlsSlot::default() && *i == IceSlot::default() {
            return None;
        }
        Some(WebrtcRecord {
            dtls_role: d.role.map(|r| role_name(r).to_owned()),
            their_fingerprint: d.their_fingerprint.as_ref().map(ToString::to_string),
            their_setup: d.their_setup.map(|s| s.name().to_owned()),
            dtls_reverse: d.reverse.map(|r| role_name(r).to_owned()),
            dtls_hash: d.hash.map(|h| h.name().to_owned()),
            ice_theirs: creds(&i.theirs),
            ice_ours: creds(&i.ours),
            ice: i.enabled,
            ice_their_lite: i.their_lite,
            ice_their_sdp: i.their_sdp,
            ice_full: !i.lite,
            ice_controlling: i.controlling,
            ice_tie_breaker: i.tie_breaker,
            ice_seed: Some(i.seed.iter().map(|b| format!("{b:02x}")).collect()),
            ice_candidates: i.candidates.iter().map(ToString::to_string).collect(),
            ice_end_of_candidates: i.their_end_of_candidates,
            ice_their_trickle: i.their_trickle,
        })
    }

    /// The slots back; what does not parse is dropped (a DTLS role without a usable
    /// fingerprint still drops the side's media until a new SDP, as it should).
    pub fn slots(&self) -> (DtlsSlot, IceSlot) {
        let dtls = DtlsSlot {
            their_fingerprint: self
                .their_fingerprint
                .as_deref()
                .and_then(|f| Fingerprint::parse(f).ok()),
            their_setup: self.their_setup.as_deref().and_then(Setup::parse),
            role: self.dtls_role.as_deref().and_then(role_back),
            reverse: self.dtls_reverse.as_deref().and_then(role_back),
            hash: self
                .dtls_hash
                .as_deref()
                .and_then(crate::session::dtls::hash_named),
        };
        let ours = creds_back(&self.ice_ours);
        let ice = IceSlot {
            theirs: creds_back(&self.ice_theirs),
            enabled: self.ice && ours.is_some(),
            their_lite: self.ice_their_lite,
            their_sdp: self.ice_their_sdp,
            ours,
            lite: !self.ice_full,
            controlling: self.ice_controlling,
            tie_breaker: self.ice_tie_breaker,
            seed: self
                .ice_seed
                .as_deref()
                .and_then(seed_back)
                .unwrap_or_default(),
            candidates: self
                .ice_candidates
                .iter()
                .take(MAX_STORED_CANDIDATES)
                .filter_map(|c| c.parse().ok())
                .collect(),
            their_end_of_candidates: self.ice_end_of_candidates,
            their_trickle: self.ice_their_trickle,
        };
        (dtls, ice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtls_and_ice_state_survive_and_bad_stored_values_are_dropped() {
        let d = DtlsSlot {
            their_fingerprint: Some(
                Fingerprint::parse(
                    "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33",
                )
                .unwrap(),
            ),
            their_setup: Some(Setup::ActPass),
            role: Some(Role::Passive),
            reverse: Some(Role::Passive),
            hash: Some(crate::dtls::HashFunc::Sha1),
        };
        let i = IceSlot {
            theirs: Some(Credentials {
                ufrag: "W77c".into(),
                pwd: "9VEM3zWAsygAj4umZwbAYA+U".into(),
            }),
            ours: Some(Credentials {
                ufrag: "abcdEFGH".into(),
                pwd: "0123456789abcdefghijklmn".into(),
            }),
            enabled: true,
            their_lite: true,
            their_sdp: true,
            lite: false,
            controlling: true,
            tie_breaker: 0x0123_4567_89ab_cdef,
            seed: [0xa5; 32],
            candidates: vec!["1 1 UDP 2130706431 192.0.2.7 4000 typ host"
                .parse()
                .unwrap()],
            their_end_of_candidates: true,
            their_trickle: true,
        };
        let r = WebrtcRecord::of(&d, &i).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: WebrtcRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.slots(), (d.clone(), i.clone()));
        assert!(WebrtcRecord::of(&DtlsSlot::default(), &IceSlot::default()).is_none());

        let hostile = WebrtcRecord {
            their_fingerprint: Some("sha-256 nonsense".into()),
            ice_ours: Some(("a b".into(), "short".into())),
            ice: true,
            ice_candidates: vec!["not a candidate".into(); 100],
            ice_seed: Some("zz".repeat(32)),
            dtls_reverse: Some("sideways".into()),
            dtls_hash: Some("md5".into()),
            ..back
        };
        let (d2, i2) = hostile.slots();
        assert_eq!((d2.their_fingerprint, d2.role), (None, Some(Role::Passive)));
        assert_eq!(
            (d2.reverse, d2.hash),
            (None, None),
            "unknown role and hash dropped"
        );
        assert!(
            i2.ours.is_none() && !i2.enabled,
            "ICE without usable credentials is off"
        );
        assert!(i2.candidates.is_empty(), "unparsable candidates dropped");
        assert_eq!(i2.seed, [0; 32], "a seed that is not hex is none");
        let old: WebrtcRecord = serde_json::from_str(r#"{"ice":true}"#).unwrap();
        assert!(old.slots().1.lite, "records from before full ICE stay lite");
    }
}
