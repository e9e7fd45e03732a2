//! Helpers of the session scenarios: an engine on a fake clock with a binder that accepts every
//! port (driven as the daemon drives it, see [`Drive`]), SDP bodies, NG parameters and reply
//! fields.

use std::time::Duration;

use crate::config::Interface;
use crate::session::actions::MediaAction;
use crate::session::command::{CallRef, Command, OfferAnswer};
use crate::session::ports::AcceptAll;
use crate::session::{Engine, EngineConfig, Reply};
use crate::time::{Millis, Now};

/// Commands and ticks as the daemon runs them, with the port binding around each.
pub(crate) trait Drive {
    fn command(&mut self, now: Now, cmd: Command, b: &mut AcceptAll) -> Reply;
    fn tick_with(&mut self, now: Now, b: &mut AcceptAll);
}

impl Drive for Engine {
    fn command(&mut self, now: Now, cmd: Command, b: &mut AcceptAll) -> Reply {
        self.plan_ports(&cmd);
        self.sync_ports(b);
        let reply = self.handle(now, cmd);
        self.sync_ports(b);
        reply
    }

    fn tick_with(&mut self, now: Now, b: &mut AcceptAll) {
        self.tick(now);
        self.sync_ports(b);
    }
}

pub(crate) fn iface(name: &str, ip: &str) -> Interface {
    Interface {
        name: name.into(),
        local: ip.parse().unwrap(),
        advertised: None,
    }
}

pub(crate) fn engine() -> Engine {
    Engine::new(EngineConfig {
        interfaces: vec![
            iface("default", "203.0.113.1"),
            iface("default", "2001:db8:4321::1"),
            iface("pub", "198.51.100.9"),
        ],
        port_min: 30000,
        port_max: 30099,
        delete_delay: Duration::from_secs(30),
        timeout: Duration::from_secs(60),
        offer_timeout: Duration::from_secs(120),
        ..EngineConfig::default()
    })
}

pub(crate) fn at(secs: u64) -> Now {
    Now {
        mono: Millis(secs * 1000),
        unix_us: 1_700_000_000_000_000 + secs * 1_000_000,
    }
}

pub(crate) fn sdp(addr: &str, port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1545997027 1 IN IP4 {addr}\r\ns=tester\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
    .into_bytes()
}

/// An SDP from `addr` with one `m=` line per entry of `media` (text after `m=`, plus its
/// attribute lines).
pub(crate) fn body(addr: &str, media: &[&str]) -> Vec<u8> {
    let mut s = format!("v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n");
    for m in media {
        s.push_str("m=");
        s.push_str(m);
    }
    s.into_bytes()
}

pub(crate) fn oa(
    call: &str,
    from: &str,
    to: Option<&str>,
    branch: Option<&str>,
    body: Vec<u8>,
) -> OfferAnswer {
    OfferAnswer {
        call: CallRef {
            call_id: call.into(),
            from_tag: Some(from.into()),
            to_tag: to.map(Into::into),
            via_branch: branch.map(Into::into),
        },
        sdp: body,
        ..OfferAnswer::default()
    }
}

/// A text field of a reply, by its rtpengine key: `result`, `sdp`, `error-reason`, `warning`,
/// `message`.
pub(crate) fn text(r: &Reply, key: &str) -> String {
    match (key, r) {
        ("result", r) => r.result().to_owned(),
        ("sdp", Reply::Sdp(s))
        | ("error-reason", Reply::Error(s))
        | ("warning", Reply::Warning(s))
        | ("message", Reply::LoadLimit(s)) => s.clone(),
        _ => panic!("no {key} in {r:?}"),
    }
}

/// The port on the first m= line of an SDP reply.
pub(crate) fn media_port(reply: &Reply) -> u16 {
    let s = text(reply, "sdp");
    let line = s.lines().find(|l| l.starts_with("m=")).expect("m= line");
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

pub(crate) fn offer(e: &mut Engine, b: &mut AcceptAll, now: Now, p: OfferAnswer) -> Reply {
    e.command(now, Command::Offer(p), b)
}

pub(crate) fn answer(e: &mut Engine, b: &mut AcceptAll, now: Now, p: OfferAnswer) -> Reply {
    e.command(now, Command::Answer(p), b)
}

pub(crate) fn actions(e: &mut Engine) -> Vec<MediaAction> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

/// An engine as [`engine`] makes it, whose target policy is a production one: it knows its NG
/// socket 127.0.0.1:22222, its host (203.0.113.1, 127.0.0.1) and the pairs it holds.
pub(crate) fn production() -> Engine {
    use crate::guard::{PolicyInputs, RelayPorts, TargetPolicy};
    let local: std::net::IpAddr = "203.0.113.1".parse().expect("ip");
    let policy = TargetPolicy::new(
        &PolicyInputs {
            control: vec!["127.0.0.1:22222".parse().expect("addr")],
            locals: vec![local],
            port_min: 30000,
            port_max: 30099,
            host: vec![local, "127.0.0.1".parse().expect("ip")],
            ..PolicyInputs::default()
        },
        std::sync::Arc::new(RelayPorts::new([local])),
    );
    let mut e = Engine::new(EngineConfig {
        policy: crate::guard::share(policy),
        ..engine().cfg.clone()
    });
    e.poll_action();
    e
}
