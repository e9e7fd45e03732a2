//! A two-party call through the relay for the loopback integration tests: caller A and callee B each bind
//! an RTP socket (and an RTCP socket on port+1) from the test's `PortBlock`, A offers, B answers, and the
//! relay ports each side was given are read back from the rewritten SDPs. Also small readers for `query`
//! counters and helpers to check a received RTP stream.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::bencode::{get_str, Dict, Value};
use super::media::{MediaEndpoint, RtpPacket};
use super::ng::{expect_ok, random_cookie, NgClient};
use super::ports::PortBlock;
use super::sdp::{sdp_answer, sdp_media_endpoint, sdp_offer};

pub const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One side of a call: its RTP and RTCP sockets (RTCP = RTP port + 1, as its SDP implies).
pub struct Party {
    pub rtp: MediaEndpoint,
    pub rtcp: MediaEndpoint,
    pub tag: String,
}

impl Party {
    /// Binds spare ports `i` and `i+1` of the block.
    pub fn bind(ports: &PortBlock, i: u16, tag: &str) -> Party {
        let at = |p| SocketAddr::from((LO, ports.port(p)));
        Party {
            rtp: MediaEndpoint::bind(at(i)).unwrap_or_else(|e| panic!("bind {tag} RTP: {e}")),
            rtcp: MediaEndpoint::bind(at(i + 1)).unwrap_or_else(|e| panic!("bind {tag} RTCP: {e}")),
            tag: tag.to_owned(),
        }
    }

    pub fn port(&self) -> u16 {
        self.rtp.local_addr().port()
    }
}

/// An answered call: A sends to `a_to` (from the answer's SDP), B sends to `b_to` (from the offer's SDP).
pub struct Call {
    pub id: String,
    pub a: Party,
    pub b: Party,
    pub a_to: SocketAddr,
    pub b_to: SocketAddr,
    pub offer_sdp: String,
    pub answer_sdp: String,
}

impl Call {
    /// Offer from A (spare ports 0/1) and answer from B (spare ports 2/3), both plain PCMU, with `flags`.
    pub fn setup(ng: &NgClient, ports: &PortBlock, flags: &[&str]) -> Call {
        Call::setup_sdp(ng, ports, flags, sdp_offer, sdp_answer)
    }

    /// As `setup`, for a second call in the same block: A on spare ports `first`/`first+1`, B on
    /// `first+2`/`first+3`.
    pub fn setup_at(ng: &NgClient, ports: &PortBlock, first: u16, flags: &[&str]) -> Call {
        Call::build(ng, ports, first, flags, sdp_offer, sdp_answer)
    }

    /// As `setup`, with the SDP builders given (e.g. adding `a=rtcp-mux`).
    pub fn setup_sdp(
        ng: &NgClient,
        ports: &PortBlock,
        flags: &[&str],
        offer: impl Fn(Ipv4Addr, u16) -> String,
        answer: impl Fn(Ipv4Addr, u16) -> String,
    ) -> Call {
        Call::build(ng, ports, 0, flags, offer, answer)
    }

    fn build(
        ng: &NgClient,
        ports: &PortBlock,
        first: u16,
        flags: &[&str],
        offer: impl Fn(Ipv4Addr, u16) -> String,
        answer: impl Fn(Ipv4Addr, u16) -> String,
    ) -> Call {
        let a = Party::bind(ports, first, "tag-a");
        let b = Party::bind(ports, first + 2, "tag-b");
        let id = format!("call-{}", random_cookie());
        let o = expect_ok(ng.offer(&id, &a.tag, &offer(LO, a.port()), flags), "offer");
        let offer_sdp = get_str(&o, "sdp").expect("offer reply has sdp").to_owned();
        let b_to = sdp_media_endpoint(&offer_sdp).expect("endpoint in offer reply");
        let r = expect_ok(
            ng.answer(&id, &a.tag, &b.tag, &answer(LO, b.port()), flags),
            "answer",
        );
        let answer_sdp = get_str(&r, "sdp").expect("answer reply has sdp").to_owned();
        let a_to = sdp_media_endpoint(&answer_sdp).expect("endpoint in answer reply");
        Call {
            id,
            a,
            b,
            a_to,
            b_to,
            offer_sdp,
            answer_sdp,
        }
    }

    /// `query` for this call, as a `Value` for `path` look-ups.
    pub fn query(&self, ng: &NgClient) -> Value {
        Value::Dict(expect_ok(ng.query(&self.id), "query"))
    }
}

/// The same SDP with `a=rtcp-mux` added after `a=sendrecv`.
pub fn with_rtcp_mux(sdp: String) -> String {
    sdp.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp-mux\r\n")
}

/// An integer at `keys` in a reply, panicking with the reply if it is missing.
pub fn int_at(v: &Value, keys: &[&str]) -> i64 {
    v.path(keys)
        .and_then(Value::as_int)
        .unwrap_or_else(|| panic!("no integer at {keys:?} in {v:?}"))
}

/// `totals.<kind>.<field>` of a `query` reply (`kind` = `RTP`/`RTCP`, `field` = `packets`/`bytes`/`errors`).
pub fn total(q: &Value, kind: &str, field: &str) -> i64 {
    int_at(q, &["totals", kind, field])
}

/// The `stats` dicts of every RTP/RTCP stream of every tag in a `query` reply, with the stream's local port.
pub fn stream_stats(q: &Value) -> Vec<(u16, Dict)> {
    let mut out = Vec::new();
    let Some(tags) = q.path(&["tags"]).and_then(Value::as_dict) else {
        return out;
    };
    for tag in tags.values() {
        let medias = tag
            .path(&["medias"])
            .and_then(Value::as_list)
            .unwrap_or(&[]);
        for m in medias {
            let streams = m.path(&["streams"]).and_then(Value::as_list).unwrap_or(&[]);
            for s in streams {
                let port = s.path(&["local port"]).and_then(Value::as_int).unwrap_or(0);
                if let Some(st) = s.path(&["stats"]).and_then(Value::as_dict) {
                    out.push((u16::try_from(port).unwrap_or(0), st.clone()));
                }
            }
        }
    }
    out
}

/// The `stats.<field>` of the stream whose local port is `port`.
pub fn port_stat(q: &Value, port: u16, field: &str) -> i64 {
    stream_stats(q)
        .into_iter()
        .find(|(p, _)| *p == port)
        .and_then(|(_, st)| st.get(field.as_bytes()).and_then(Value::as_int))
        .unwrap_or_else(|| panic!("no stream with local port {port} in {q:?}"))
}

/// Receives RTP on `ep` until `count` packets of stream `ssrc` arrived or `timeout` passed; other datagrams
/// (another SSRC, non-RTP) are skipped. Returns the packets with their source.
pub fn recv_stream(
    ep: &MediaEndpoint,
    ssrc: u32,
    count: usize,
    timeout: Duration,
) -> Vec<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((data, from)) = ep.recv_timeout(left) else {
            break;
        };
        if RtpPacket::parse(&data).is_some_and(|p| p.ssrc == ssrc) {
            got.push((data, from));
        }
    }
    got
}

/// Asserts that nothing arrives on `ep` within `wait`.
/// Sends `pkts` from `from` to `to`, then checks they all arrive on `at` within `wait`, in
/// order, byte for byte, from the relay address `src`, and nothing more.
#[allow(dead_code)]
pub fn relay_and_expect(
    from: &MediaEndpoint,
    to: SocketAddr,
    pkts: &[Vec<u8>],
    at: &MediaEndpoint,
    src: SocketAddr,
    wait: Duration,
    what: &str,
) {
    for p in pkts {
        from.send_to(p, to).expect("send");
    }
    let got = at.collect(pkts.len(), wait);
    assert_eq!(got.len(), pkts.len(), "{what}: packets delivered");
    for (i, ((data, from), sent)) in got.iter().zip(pkts).enumerate() {
        assert_eq!(data, sent, "{what}: packet {i} changed");
        assert_eq!(
            *from, src,
            "{what}: packet {i} came from the wrong relay port"
        );
    }
    assert_silent(at, Duration::from_millis(50), &format!("{what}: extras"));
}

pub fn assert_silent(ep: &MediaEndpoint, wait: Duration, what: &str) {
    if let Some((data, from)) = ep.recv_timeout(wait) {
        panic!(
            "{what}: got {} bytes from {from} (first bytes {:02x?})",
            data.len(),
            &data[..data.len().min(12)]
        );
    }
}

/// A minimal RTCP receiver report (RFC 3550 RR, no report blocks) from `ssrc`.
pub fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut b = vec![0x80, 201, 0, 1];
    b.extend_from_slice(&ssrc.to_be_bytes());
    b
}

/// A minimal RTCP sender report (RFC 3550 SR, no report blocks) from `ssrc`, tagged by `n` in its RTP
/// timestamp.
pub fn rtcp_sr(ssrc: u32, n: u32) -> Vec<u8> {
    let mut b = vec![0x80, 200, 0, 6];
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&[0u8; 8]); // NTP timestamp
    b.extend_from_slice(&n.to_be_bytes()); // RTP timestamp
    b.extend_from_slice(&n.to_be_bytes()); // packet count
    b.extend_from_slice(&(n * 160).to_be_bytes()); // octet count
    b
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
