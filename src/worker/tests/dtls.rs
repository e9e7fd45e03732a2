//! A browser's flow on real sockets: ICE check and DTLS handshake with the relay's flow socket,
//! then its SRTP bridged to a plain RTP peer.

use super::*;
use crate::dtls::{
    CertCipher, Certificate, DtlsContext, DtlsEndpoint, DtlsOptions, DtlsState, Role,
};
use crate::flow::{FlowDtls, FlowIce};
use crate::ice::Credentials;
use crate::srtp::SrtpContext;
use crate::stun::{Class, Message, MessageBuilder, BINDING};
use crate::time::Millis;

const RELAY_UFRAG: &str = "relayufr";
const RELAY_PWD: &str = "relaypasswordrelaypasswd";
const PEER_UFRAG: &str = "peerufrg";

fn dtls_ctx() -> Arc<DtlsContext> {
    let cert = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("cert");
    DtlsContext::new(cert, DtlsOptions::default(), std::time::Instant::now()).expect("ctx")
}

fn check() -> Vec<u8> {
    let mut m = MessageBuilder::new(Class::Request, BINDING, &[5; 12]);
    m.username(&format!("{RELAY_UFRAG}:{PEER_UFRAG}"))
        .priority(0x6e00_1eff)
        .ice_controlling(42)
        .use_candidate();
    m.integrity(RELAY_PWD.as_bytes());
    m.fingerprint()
}

fn protect(c: &mut SrtpContext, pkt: &[u8]) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + 64, 0);
    let n = c.protect_rtp(&mut buf, pkt.len()).expect("protect");
    buf.truncate(n);
    buf
}

#[test]
fn a_browser_checks_shakes_hands_and_its_srtp_is_bridged() {
    browser_call_on(PlaneKind::Mmsg);
}

#[test]
fn a_browser_checks_shakes_hands_and_its_srtp_is_bridged_uring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    browser_call_on(PlaneKind::Uring);
}

fn browser_call_on(plane: PlaneKind) {
    let relay = dtls_ctx();
    let browser = dtls_ctx();
    let (etx, erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 1,
        cpus: None,
        plane,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning: SocketTuning::default(),
        dtls: Some(relay.clone()),
    })
    .expect("spawn");
    let (ca, cb) = (client(), client());
    let (ra, _ra_rtcp) = relay_pair();
    let (rb, _rb_rtcp) = relay_pair();
    let (to_a, to_b) = (addr(&ra), addr(&rb));
    let (ca_counters, cb_counters) = (Arc::default(), Arc::default());
    // The browser's SDP names another port than it sends from: ICE decides.
    let sdp_a = SocketAddr::new(LO, 9);
    let mut flow_a = open(1, FlowKind::Rtp, ra, 2, sdp_a, &ca_counters);
    if let FlowUpdate::Open { crypto, .. } = &mut flow_a {
        *crypto = FlowCrypto {
            dtls: Some(FlowDtls {
                role: Role::Passive,
                fingerprint: Some(browser.certificate().fingerprint().clone()),
            }),
            ice: Some(FlowIce {
                local: Credentials {
                    ufrag: RELAY_UFRAG.into(),
                    pwd: RELAY_PWD.into(),
                },
                remote: Some(Credentials {
                    ufrag: PEER_UFRAG.into(),
                    pwd: "peerpasswordpeerpassword".into(),
                }),
                component: 1,
                full: None,
            }),
            ..FlowCrypto::default()
        };
    }
    let flow_b = open(2, FlowKind::Rtp, rb, 1, addr(&cb), &cb_counters);
    w.send_batch(0, vec![flow_a, flow_b]);

    // Before anything: B's media does not reach the browser (no keys, no peer).
    cb.send_to(&rtp(1, 0xb), to_b).expect("send");
    assert!(recv(&ca, Duration::from_millis(150)).is_none());

    // The ICE check, answered from the flow's socket.
    ca.send_to(&check(), to_a).expect("send");
    let (answer, from) = recv(&ca, Duration::from_secs(2)).expect("STUN answer");
    assert_eq!(from, to_a);
    let m = Message::parse(&answer).expect("STUN");
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.xor_mapped_address(), Some(addr(&ca)));

    // The handshake, the browser active.
    let start = Instant::now();
    let now = || Millis(start.elapsed().as_millis() as u64);
    let mut client_ep = DtlsEndpoint::new(
        browser.clone(),
        Role::Active,
        Some(relay.certificate().fingerprint().clone()),
        now(),
    );
    while client_ep.state() != DtlsState::Connected {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "handshake stalled"
        );
        while let Some(d) = client_ep.poll_transmit() {
            ca.send_to(&d, to_a).expect("send");
        }
        if let Some((d, from)) = recv(&ca, Duration::from_millis(100)) {
            assert_eq!(from, to_a);
            let _ = client_ep.handle_datagram(&d, now());
        } else if client_ep.poll_timeout().is_some_and(|t| t <= now()) {
            let _ = client_ep.handle_timeout(now());
        }
        assert!(!matches!(client_ep.state(), DtlsState::Failed(_)));
    }
    let keys = client_ep.srtp_keys().expect("keys").clone();
    eventually("the relay counts the handshake", || {
        w.counters().dtls_handshakes == 1
    });
    assert!(w.counters().stun_answered >= 1);
    // Control hears of it: ICE named the peer, then DTLS connected.
    let events: Vec<FlowEvent> = erx.try_iter().collect();
    assert!(
        events.iter().any(|e| matches!(e,
            FlowEvent::Handshake { id: FlowId(1), state } if state.dtls == Some(DtlsState::Connected))),
        "{events:?}"
    );
    assert!(events.contains(&FlowEvent::Learned {
        id: FlowId(1),
        addr: addr(&ca)
    }));

    // Browser → B: SRTP in, clear RTP out.
    let mut tx = SrtpContext::new(&keys.local).expect("ctx");
    for seq in 0..3u16 {
        let clear = rtp(100 + seq, 0xa);
        ca.send_to(&protect(&mut tx, &clear), to_a).expect("send");
        let (got, from) = recv(&cb, Duration::from_secs(2)).expect("B gets RTP");
        assert_eq!((got, from), (clear, to_b));
    }
    // B → browser: protected, to the address that passed the check (not the SDP one).
    let mut rx = SrtpContext::new(&keys.remote).expect("ctx");
    let clear = rtp(500, 0xb);
    cb.send_to(&clear, to_b).expect("send");
    let (mut got, from) = recv(&ca, Duration::from_secs(2)).expect("browser gets SRTP");
    assert_eq!(from, to_a);
    let n = rx
        .unprotect_rtp(&mut got)
        .expect("browser authenticates it");
    assert_eq!(got[..n], clear[..]);
    let a: &Arc<StreamCounters> = &ca_counters;
    assert_eq!(a.srtp_auth_failures.load(Relaxed), 0);
    w.shutdown();
}
