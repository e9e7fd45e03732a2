//! The stage of the adversarial suite: a namespace topology (relay, caller, callee, injector on one
//! LAN; see `netns`) with the relay under attack in the `relay` namespace (ours, or Debian's
//! rtpengine when `RTPRELAY_E2E_RELAY=rtpengine`), a victim call that streams beside every attack,
//! and an NG helper that sends offers and answers the way Kamailio does (with `received-from`).
//!
//! Against rtpengine the suite is informative: `Stage::verdict` prints whether the attack worked and
//! asserts nothing. Against rtprelay it asserts that the attack failed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::bencode::{dict, get_str, str_list, Dict, Value};
use super::media::{MediaEndpoint, RtpPacket};
use super::netns::{Family, Role, Topology};
use super::ng::{expect_ok, random_cookie, NgClient};
use super::ns_relay::{ns_client, ns_relay_args, NsRelay, NG_PORT, PORT_MAX, PORT_MIN};
use super::process::Proc;
use super::relay::RelayKind;

/// The relay under attack.
pub enum Relay {
    Ours(NsRelay),
    Reference { proc: Proc, ng: NgClient },
}

/// A topology with a relay in it.
pub struct Stage {
    pub kind: RelayKind,
    // Field order: the relay stops before the topology goes.
    pub relay: Relay,
    pub topo: Topology,
}

/// Where a two-party call's media goes: each party's socket and the relay port it sends to.
pub struct Legs {
    pub id: String,
    pub caller: MediaEndpoint,
    pub callee: MediaEndpoint,
    /// Where the caller sends (the port in the answer reply).
    pub caller_to: SocketAddr,
    /// Where the callee sends (the port in the offer reply).
    pub callee_to: SocketAddr,
}

/// An SDP body for one media line at `addr:port`.
pub fn sdp(addr: IpAddr, port: u16, media: &str) -> String {
    let fam = if addr.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=- 1 1 IN {fam} {addr}\r\ns=-\r\nc=IN {fam} {addr}\r\nt=0 0\r\n{}\r\n",
        media.replace("PORT", &port.to_string())
    )
}

/// An audio line (PCMU) for [`sdp`].
pub const AUDIO: &str = "m=audio PORT RTP/AVP 0\r\na=sendrecv";
/// A T.38 line for [`sdp`].
pub const T38: &str = "m=image PORT udptl t38\r\na=T38FaxVersion:0";

impl Stage {
    /// A fresh topology and relay (ours with `extra` options), or `None` when the machine cannot
    /// build namespaces (a failure under `RTPRELAY_E2E=1`).
    pub fn start(extra: &[&str]) -> Option<Stage> {
        Stage::start_wrapped(&[], extra)
    }

    /// As [`Stage::start`], with our relay started through `wrapper` (e.g. `env VAR=1`).
    pub fn start_wrapped(wrapper: &[&str], extra: &[&str]) -> Option<Stage> {
        let topo = Topology::new()?;
        let kind = RelayKind::from_env();
        let relay = match kind {
            RelayKind::Rtprelay => Relay::Ours(
                NsRelay::start_wrapped(&topo, wrapper, extra).unwrap_or_else(|e| panic!("{e}")),
            ),
            RelayKind::Rtpengine => {
                let ns = topo.ns(Role::Relay);
                let args: Vec<String> = [
                    "--config-file=none",
                    "--table=-1",
                    "-i",
                    &topo.v4(Role::Relay).to_string(),
                    "-n",
                    &format!("127.0.0.1:{NG_PORT}"),
                    "-m",
                    &PORT_MIN.to_string(),
                    "-M",
                    &PORT_MAX.to_string(),
                    "--delete-delay=0",
                    "-f",
                    "-E",
                    "-L",
                    "7",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let proc = topo.spawn_in(&ns, "rtpengine", &PathBuf::from("rtpengine"), &args);
                let mut ng = ns_client(&ns);
                let deadline = Instant::now() + Duration::from_secs(10);
                ng.timeout = Duration::from_millis(200);
                while ng
                    .ping()
                    .map_or(true, |r| get_str(&r, "result") != Some("pong"))
                {
                    assert!(
                        Instant::now() < deadline,
                        "rtpengine did not start:\n{}",
                        proc.log_tail(30)
                    );
                }
                ng.timeout = Duration::from_secs(1);
                Relay::Reference { proc, ng }
            }
        };
        Some(Stage { kind, relay, topo })
    }

    pub fn ng(&self) -> &NgClient {
        match &self.relay {
            Relay::Ours(r) => r.ng(),
            Relay::Reference { ng, .. } => ng,
        }
    }

    pub fn ours(&self) -> Option<&NsRelay> {
        match &self.relay {
            Relay::Ours(r) => Some(r),
            Relay::Reference { .. } => None,
        }
    }

    pub fn log_text(&self) -> String {
        match &self.relay {
            Relay::Ours(r) => r.log_text(),
            Relay::Reference { proc, .. } => proc.log_text(),
        }
    }

    /// The relay's address on the LAN.
    pub fn relay_ip(&self) -> IpAddr {
        self.topo.v4(Role::Relay).into()
    }

    pub fn ip(&self, role: Role) -> IpAddr {
        self.topo.v4(role).into()
    }

    /// A media socket of `role` on `port` (0: any).
    pub fn endpoint(&self, role: Role, port: u16) -> MediaEndpoint {
        self.topo.media(role, Family::V4, port)
    }

    /// Records the outcome of attack `name`: against rtprelay it must have failed (`exposed` false);
    /// against rtpengine the outcome is printed for the README's table.
    pub fn verdict(&self, name: &str, exposed: bool, detail: &str) {
        let line = format!(
            "ATTACK {name} vs {}: {} ({detail})",
            self.kind.name(),
            if exposed { "EXPOSED" } else { "refused" }
        );
        println!("{line}");
        if self.kind == RelayKind::Rtprelay {
            assert!(!exposed, "{line}\nrelay log tail:\n{}", self.log_text());
        }
    }

    /// Sends an offer from `from_tag` as Kamailio does, with `received-from` = `sip_from`.
    pub fn offer(&self, call: &str, from_tag: &str, body: &str, sip_from: IpAddr) -> Dict {
        self.ng()
            .request(dict([
                ("command", "offer".into()),
                ("call-id", call.into()),
                ("from-tag", from_tag.into()),
                ("sdp", body.into()),
                ("received-from", str_list(&["IP4", &sip_from.to_string()])),
            ]))
            .unwrap_or_else(|e| panic!("offer {call}: {e}"))
    }

    /// Sends an answer from `to_tag`, with `received-from` = `sip_from`.
    pub fn answer(
        &self,
        call: &str,
        from_tag: &str,
        to_tag: &str,
        body: &str,
        sip_from: IpAddr,
    ) -> Dict {
        self.ng()
            .request(dict([
                ("command", "answer".into()),
                ("call-id", call.into()),
                ("from-tag", from_tag.into()),
                ("to-tag", to_tag.into()),
                ("sdp", body.into()),
                ("received-from", str_list(&["IP4", &sip_from.to_string()])),
            ]))
            .unwrap_or_else(|e| panic!("answer {call}: {e}"))
    }

    /// An answered call between `caller` and `callee` whose SDPs are `offer_sdp` and `answer_sdp`;
    /// the relay ports come from the replies.
    pub fn call(
        &self,
        id: &str,
        caller: MediaEndpoint,
        callee: MediaEndpoint,
        offer_sdp: &str,
        answer_sdp: &str,
    ) -> Legs {
        let o = expect_ok(
            Ok(self.offer(id, "A", offer_sdp, self.ip(Role::Caller))),
            "offer",
        );
        let callee_to = endpoint(get_str(&o, "sdp").unwrap_or(""));
        let a = expect_ok(
            Ok(self.answer(id, "A", "B", answer_sdp, self.ip(Role::Callee))),
            "answer",
        );
        let caller_to = endpoint(get_str(&a, "sdp").unwrap_or(""));
        Legs {
            id: id.to_owned(),
            caller,
            callee,
            caller_to,
            callee_to,
        }
    }

    /// A plain call between the caller and callee namespaces on `port` (each side's SDP is its
    /// own address).
    pub fn plain_call(&self, id: &str, port: u16) -> Legs {
        let caller = self.endpoint(Role::Caller, port);
        let callee = self.endpoint(Role::Callee, port);
        self.call(
            id,
            caller,
            callee,
            &sdp(self.ip(Role::Caller), port, AUDIO),
            &sdp(self.ip(Role::Callee), port, AUDIO),
        )
    }
}

/// The address and port of the first media line of an SDP (its own c=, else the session's).
pub fn endpoint(body: &str) -> SocketAddr {
    let lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    let conn =
        |l: &str| -> Option<IpAddr> { l.strip_prefix("c=IN ")?.split(' ').nth(1)?.parse().ok() };
    let mut session: Option<IpAddr> = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some(m) = line.strip_prefix("m=") {
            let port = m.split(' ').nth(1).and_then(|p| p.parse::<u16>().ok());
            let media = lines.get(i + 1).and_then(|l| conn(l));
            if let (Some(ip), Some(port)) = (media.or(session), port) {
                return SocketAddr::new(ip, port);
            }
            break;
        }
        session = conn(line).or(session);
    }
    panic!("no media endpoint in SDP:\n{body}")
}

impl Legs {
    /// Streams `n` packets each way (20 ms apart, interleaved) and returns how many of them
    /// arrived, each way. Every packet must come from the relay.
    pub fn stream(&self, n: u16, ssrc: u32) -> (usize, usize) {
        for k in 0..n {
            let _ = self
                .caller
                .send_to(&RtpPacket::pcmu(ssrc, k).to_bytes(), self.caller_to);
            let _ = self
                .callee
                .send_to(&RtpPacket::pcmu(ssrc + 1, k).to_bytes(), self.callee_to);
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = |ep: &MediaEndpoint, want: u32| {
            ep.collect(usize::from(n), Duration::from_secs(2))
                .into_iter()
                .filter(|(p, _)| RtpPacket::parse(p).is_some_and(|r| r.ssrc == want))
                .count()
        };
        (got(&self.callee, ssrc), got(&self.caller, ssrc + 1))
    }

    /// Asserts (for any relay) that a stream of `n` packets each way arrives whole.
    pub fn assert_whole(&self, n: u16, ssrc: u32, what: &str) {
        let (to_callee, to_caller) = self.stream(n, ssrc);
        assert_eq!(
            (to_callee, to_caller),
            (usize::from(n), usize::from(n)),
            "{what}: the victim call lost media"
        );
    }
}

/// A fresh call-id.
pub fn call_id(what: &str) -> String {
    format!("{what}-{}", random_cookie())
}

/// 12 bytes of RTP header without a space byte (so that, followed by a space and a bencoded dict,
/// it reads as an NG cookie).
pub fn rtp_cookie() -> Vec<u8> {
    vec![
        0x80, 0x00, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 0x33, 0x33, 0x33, 0x33,
    ]
}

/// Waits up to `within` for the first datagram on `ep` that satisfies `f`.
pub fn wait_for(
    ep: &MediaEndpoint,
    within: Duration,
    f: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match ep.recv_timeout(left) {
            Some((p, _)) if f(&p) => return Some(p),
            Some(_) => {}
            None => return None,
        }
    }
    None
}

/// The address a loopback-bound service on the relay host listens on.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `Value` of a bencoded integer in a reply path, 0 when missing.
pub fn int_at(v: &Dict, path: &[&str]) -> i64 {
    Value::Dict(v.clone())
        .path(path)
        .and_then(Value::as_int)
        .unwrap_or(0)
}
