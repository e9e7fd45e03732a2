//! Turns a received SDP into the one we send on, following rtpengine's output conventions so
//! that its users (and its test-suite) see the same text: our addresses and ports, attributes
//! we interpret regenerated in a fixed order after the ones we pass through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::sdp::codec::{parse_rtpmap, payload_types, split_pt_params, CodecFilter, PayloadType};
use crate::sdp::model::{Attribute, Direction, Media, MediaLine, SessionDescription, SessionLine};
use crate::sdp::query::ICE_ATTRS;

/// What to change in an SDP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RewritePlan {
    /// `replace: origin`: set the o= address (and IP4/IP6) to this.
    pub origin_address: Option<IpAddr>,
    /// `replace: SDP version`: write this version number in o=.
    pub origin_version: Option<u64>,
    /// `replace: session-connection`: rewrite the session c= even when every media has its
    /// own c= (otherwise it is rewritten only when some media relies on it).
    pub session_connection: bool,
    /// `ICE: remove`: drop ice-ufrag/ice-pwd/ice-options/ice-lite/candidate/remote-candidates
    /// at session and media level (`a=end-of-candidates` stays).
    pub strip_ice: bool,
    /// `strip extmap`: drop `a=extmap` at session and media level.
    pub strip_extmap: bool,
    /// `original sendrecv`: a null address keeps the direction it came with (otherwise it turns
    /// receiving off: sendrecv becomes sendonly, recvonly inactive).
    pub original_sendrecv: bool,
    /// `replace: username`: write this user name in o=.
    pub origin_username: Option<String>,
    /// `replace: session-name`: write this as the s= line's text.
    pub session_name: Option<String>,
    /// Write `a=ice-lite` at session level: the relay does ICE (as a lite agent) in some media.
    pub ice_lite: bool,
    /// One per m= line, same order. Media without a plan are left untouched.
    pub media: Vec<MediaPlan>,
}

/// What to write for one m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlan {
    /// Local (advertised) address for the c= lines of this media.
    pub address: IpAddr,
    /// Write the null address of `address`'s family instead of `address` (input c= was null,
    /// no `replace: zero address`, no trickle ICE). The direction is derived from the input
    /// independently: a null input address always turns off receiving, as rtpengine does.
    pub keep_null: bool,
    /// Local RTP port; ignored for rejected media (port 0 stays 0).
    pub port: u16,
    /// `Some(p)` → `a=rtcp:p`; `None` → no a=rtcp line. Only written for RTP media.
    pub rtcp_port: Option<u16>,
    /// Write `a=rtcp-mux` (RTP media only).
    pub rtcp_mux: bool,
    /// `Some(n)`: the input's `a=ptime` lines go and `a=ptime:n` is written after the RTCP
    /// attributes (RTP media only). `None`: an input `a=ptime` (one that is not a positive
    /// number) stays where it was.
    pub ptime: Option<u32>,
    /// The `a=mid` to write (the input's go).
    pub mid: Option<String>,
    pub codecs: CodecFilter,
    /// `Some(p)`: write `p` as the m= line's protocol (`transport-protocol`, SRTP bridging).
    pub proto: Option<String>,
    /// `Some(lines)`: the input's `a=crypto` lines go and these (the relay's own, see
    /// `session/sdes.rs`) are written after the RTCP attributes; `None` leaves them alone.
    pub crypto: Option<Vec<Attribute>>,
    /// The input's `a=fingerprint`, `a=setup`, `a=tls-id` go (the relay terminates DTLS, or the
    /// profile is no DTLS one); with any media doing so, the session-level ones go too.
    pub strip_dtls: bool,
    /// The relay's own DTLS lines (`a=fingerprint`, `a=setup`), written after the crypto lines.
    pub dtls: Vec<Attribute>,
    /// `Some(lines)`: the relay's ICE lines (credentials, candidates, end-of-candidates),
    /// written last; the input's ICE lines go whatever `strip_ice` says.
    pub ice: Option<Vec<Attribute>>,
}

/// The input attributes of DTLS-SRTP (RFC 5763, RFC 8842).
const DTLS_ATTRS: &[&str] = &["fingerprint", "setup", "tls-id"];

impl MediaPlan {
    /// The address for c=.
    fn connection_ip(&self) -> IpAddr {
        match (self.keep_null, self.address) {
            (false, ip) => ip,
            (true, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (true, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

const DIRECTIONS: &[&str] = &["sendrecv", "sendonly", "recvonly", "inactive"];

/// Applies `plan` to `sd` in place.
pub fn rewrite(sd: &mut SessionDescription, plan: &RewritePlan) {
    // Everything derived from the input is computed before anything changes.
    let directions: Vec<Direction> = (0..sd.media.len())
        .map(|i| {
            let d = sd.requested_direction(i);
            if sd.is_null_address(i) && !sd.is_trickle_ice(i) && !plan.original_sendrecv {
                d.without_recv()
            } else {
                d
            }
        })
        .collect();

    let original_session_conn = sd.connection.clone();

    if let Some(o) = &mut sd.origin {
        if let Some(ip) = plan.origin_address {
            o.address.set_ip(ip);
        }
        if let Some(v) = plan.origin_version {
            o.version = v.to_string();
        }
        if let Some(u) = &plan.origin_username {
            o.username.clone_from(u);
        }
    }
    if let Some(name) = &plan.session_name {
        for l in &mut sd.lines {
            if let SessionLine::Other(line) = l {
                if line.kind == 's' {
                    line.value.clone_from(name);
                }
            }
        }
    }

    let session_conn_used =
        plan.session_connection || sd.media.iter().any(|m| m.connection.is_none());
    if let (Some(c), Some(first), true) =
        (&mut sd.connection, plan.media.first(), session_conn_used)
    {
        c.readdress(first.connection_ip());
    }

    let strip_dtls = plan.media.iter().any(|m| m.strip_dtls);
    sd.lines.retain(|line| match line {
        SessionLine::Attribute(a) => {
            !(drop_session_attr(a, plan) || (strip_dtls && DTLS_ATTRS.contains(&a.name.trim_end())))
        }
        _ => true,
    });
    if plan.ice_lite {
        // Session attributes go after the last session line (before the first m=).
        sd.lines
            .push(SessionLine::Attribute(Attribute::new("ice-lite", None)));
    }

    for (idx, m) in sd.media.iter_mut().enumerate() {
        let (Some(mp), Some(dir)) = (plan.media.get(idx), directions.get(idx)) else {
            continue;
        };
        if m.kind.trim() == "message" {
            // Not relayed by us: left alone, but made self-contained with the peer's own
            // session address, since the session c= now points at us. (rtpengine ends this
            // line with LF whatever the body uses; it keeps the session line's ending here.)
            if let (None, Some(c)) = (&m.connection, &original_session_conn) {
                m.connection = Some(c.clone());
                // Where rtpengine puts it: before the first a=, b= or k= line.
                let at = m
                    .lines
                    .iter()
                    .position(|l| match l {
                        MediaLine::Attribute(_) => true,
                        MediaLine::Other(o) => matches!(o.kind, 'b' | 'k'),
                        MediaLine::Connection => false,
                    })
                    .unwrap_or(m.lines.len());
                m.lines.insert(at, MediaLine::Connection);
            }
            continue;
        }
        rewrite_media(m, mp, *dir, plan);
    }
}

fn drop_session_attr(a: &Attribute, plan: &RewritePlan) -> bool {
    let name = a.name.trim_end();
    DIRECTIONS.contains(&name)
        || (name == "group" && a.value_trimmed().split_whitespace().next() == Some("BUNDLE"))
        || (plan.strip_ice && ICE_ATTRS.contains(&name))
        || (plan.strip_extmap && name == "extmap")
}

/// Media-level attributes we regenerate (or drop) rather than pass through.
fn is_interpreted(a: &Attribute, m_is_rtp: bool, mp: &MediaPlan, plan: &RewritePlan) -> bool {
    let name = a.name.trim_end();
    match name {
        "rtcp" | "rtcp-mux" | "mid" | "end-of-candidates" => true,
        n if DIRECTIONS.contains(&n) => true,
        // An rtpmap rtpengine cannot read stays where it is (its type gets the static one).
        "rtpmap" => m_is_rtp && a.value.as_deref().and_then(parse_rtpmap).is_some(),
        "fmtp" => m_is_rtp,
        // `a=rtcp-fb:*` applies to all payload types and is passed through.
        "rtcp-fb" => m_is_rtp && a.value_trimmed().split_whitespace().next() != Some("*"),
        "ptime" => mp.ptime.is_some(),
        "crypto" => mp.crypto.is_some(),
        "extmap" => plan.strip_extmap,
        n if mp.strip_dtls && DTLS_ATTRS.contains(&n) => true,
        n => (plan.strip_ice || mp.ice.is_some()) && ICE_ATTRS.contains(&n),
    }
}

fn rewrite_media(m: &mut Media, mp: &MediaPlan, dir: Direction, plan: &RewritePlan) {
    let is_rtp = m.is_rtp();
    let active = !m.is_rejected();
    let end_of_candidates = m.has_attribute("end-of-candidates");

    // Codec parameters are collected before the attribute list is rebuilt.
    let mut codec_lines = Vec::new();
    if is_rtp && active {
        let pts = payload_types(m);
        let keep = mp.codecs.apply(&pts);
        for pt in pts.iter().filter(|p| keep.contains(&p.pt)) {
            codec_attrs(m, pt, &mut codec_lines);
        }
        m.formats.retain(|f| match f.trim().parse::<u8>() {
            Ok(n) => keep.contains(&n),
            // Empty tokens (stray spaces) go; anything else non-numeric stays.
            Err(_) => !f.trim().is_empty(),
        });
    }

    if active {
        m.port = mp.port;
    }
    if let Some(proto) = &mp.proto {
        m.proto.clone_from(proto);
    }
    if let Some(c) = &mut m.connection {
        c.readdress(mp.connection_ip());
    }

    let mut lines: Vec<MediaLine> = std::mem::take(&mut m.lines)
        .into_iter()
        .filter(|l| match l {
            MediaLine::Attribute(a) => !is_interpreted(a, is_rtp, mp, plan),
            _ => true,
        })
        .collect();
    let mut push = |name: &str, value: Option<String>| {
        lines.push(MediaLine::Attribute(Attribute::new(name, value)));
    };
    if let Some(mid) = &mp.mid {
        push("mid", Some(mid.clone()));
    }
    if active {
        for (name, value) in codec_lines {
            push(name, Some(value));
        }
        push(dir.as_str(), None);
        if is_rtp {
            if let Some(p) = mp.rtcp_port {
                push("rtcp", Some(p.to_string()));
            }
            if mp.rtcp_mux {
                push("rtcp-mux", None);
            }
            for a in mp.crypto.iter().flatten().chain(&mp.dtls) {
                push(a.name.as_str(), a.value.clone());
            }
            if let Some(p) = mp.ptime {
                push("ptime", Some(p.to_string()));
            }
        }
    }
    match &mp.ice {
        Some(ice) if active => {
            for a in ice {
                push(a.name.as_str(), a.value.clone());
            }
        }
        _ if end_of_candidates => push("end-of-candidates", None),
        _ => {}
    }
    m.lines = lines;
}

/// `a=rtpmap`, `a=fmtp`, `a=rtcp-fb` lines for one payload type. A type with no known
/// encoding gets none. As rtpengine reads them: one fmtp per type (the last), every rtcp-fb.
/// (rtpengine 10.5 writes `a=rtpmap:<pt> /0` for a type it knows nothing of: not copied.)
fn codec_attrs(m: &Media, pt: &PayloadType, out: &mut Vec<(&'static str, String)>) {
    let Some(enc) = &pt.encoding else {
        return;
    };
    out.push(("rtpmap", format!("{} {}", pt.pt, enc)));
    let of_type = |name: &'static str| {
        m.attributes()
            .filter(move |a| a.is(name))
            .filter_map(|a| a.value.as_deref().and_then(split_pt_params))
            .filter(|(n, rest)| *n == pt.pt && !rest.trim().is_empty())
            .map(move |(n, rest)| (name, format!("{n} {rest}")))
    };
    out.extend(of_type("fmtp").last());
    out.extend(of_type("rtcp-fb"));
}
