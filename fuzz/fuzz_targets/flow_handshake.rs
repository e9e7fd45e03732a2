//! A flow table flow with DTLS-SRTP (passive) and ICE (lite, or full) fed arbitrary datagrams from three
//! sources, with timer polls between them, never panics, never forwards before keys exist, and
//! keeps its outbox bounded. The input is split by a source byte and a 2-byte length before
//! each datagram; the first byte chooses whether a valid nominating check comes first (so the
//! DTLS path is reached) and whether the peer's fingerprint is known.
#![no_main]
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use rtprelay::dtls::{CertCipher, Certificate, DtlsContext, DtlsOptions, Fingerprint, Role};
use rtprelay::flow::latch::LatchConfig;
use rtprelay::flow::table::{Decision, FlowSpec, FlowTable, MAX_OUTBOX};
use rtprelay::flow::{FlowCrypto, FlowDtls, FlowIce, FlowId, FlowKind, FullIce};
use rtprelay::guard::TargetPolicy;
use rtprelay::ice::Credentials;
use rtprelay::stun::{Class, MessageBuilder, BINDING};
use rtprelay::time::Millis;

const PWD: &str = "relaypasswordrelaypasswd";

fn ctx() -> Arc<DtlsContext> {
    static CTX: OnceLock<Arc<DtlsContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        // The endpoint catches dimpl's panics on peer input and fails itself; libFuzzer's hook
        // would abort on that caught panic (see the dtls_endpoint target).
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dimpl = info
                .location()
                .is_some_and(|l| l.file().contains("/dimpl-"));
            if !in_dimpl {
                fuzzer_hook(info);
            }
        }));
        let cert = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("cert");
        DtlsContext::new(cert, DtlsOptions::default(), Instant::now()).expect("ctx")
    })
    .clone()
}

fn check() -> Vec<u8> {
    let mut m = MessageBuilder::new(Class::Request, BINDING, &[1; 12]);
    m.username("relayufr:peerufrg").priority(1).use_candidate();
    m.integrity(PWD.as_bytes());
    m.fingerprint()
}

fuzz_target!(|data: &[u8]| {
    let [mode, input @ ..] = data else {
        return;
    };
    let mut rest: &[u8] = input;
    let srcs: [SocketAddr; 3] = [
        "198.51.100.3:2000".parse().expect("addr"),
        "198.51.100.77:61000".parse().expect("addr"),
        "203.0.113.66:4000".parse().expect("addr"),
    ];
    static PEER: OnceLock<Fingerprint> = OnceLock::new();
    let peer_fp = (mode & 2 != 0).then(|| {
        PEER.get_or_init(|| {
            Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000)
                .expect("cert")
                .fingerprint()
                .clone()
        })
        .clone()
    });
    let mut t: FlowTable<u64> = FlowTable::default();
    t.set_dtls(Some(ctx()));
    let crypto = FlowCrypto {
        dtls: Some(FlowDtls {
            role: Role::Passive,
            fingerprint: peer_fp,
        }),
        ice: Some(FlowIce {
            local: Credentials {
                ufrag: "relayufr".into(),
                pwd: PWD.into(),
            },
            // Bit 4 of the mode: full ICE (controlling with bit 8) with the peer's credentials
            // and its SDP candidate at the first source, so the relay's own checks go out and
            // whatever arrives is read as answers to them too.
            remote: (mode & 4 != 0).then(|| Credentials {
                ufrag: "peerufrg".into(),
                pwd: "peerpasswordpeerpassword".into(),
            }),
            component: 1,
            full: (mode & 4 != 0).then(|| FullIce {
                controlling: mode & 8 != 0,
                tie_breaker: 7,
                seed: [3; 32],
                candidates: vec!["1 1 udp 2130706431 198.51.100.3 2000 typ host"
                    .parse()
                    .expect("candidate")],
                end_of_candidates: mode & 16 != 0,
            }),
        }),
        ..FlowCrypto::default()
    };
    for (id, egress, crypto) in [(1, 2, crypto), (2, 1, FlowCrypto::default())] {
        let spec = FlowSpec {
            kind: FlowKind::Rtp,
            egress: Some(FlowId(egress)),
            rtcp_egress: None,
            latch: LatchConfig {
                expected: Some(srcs[0]),
                ..LatchConfig::default()
            },
            counters: Arc::default(),
            record: None,
            local: Some("192.0.2.1:30000".parse().expect("addr")),
            crypto,
        };
        t.open(FlowId(id), spec, id, Millis(0));
    }
    let policy = TargetPolicy::permissive();
    let mut now = 1u64;
    let feed = |t: &mut FlowTable<u64>, pkt: &[u8], src: SocketAddr, now: u64| {
        let Some(mut run) = t.run(1, Millis(now), &policy, |io| *io) else {
            return;
        };
        let mut slot = pkt.to_vec();
        slot.resize(pkt.len() + 64, 0);
        let d = run.packet_mut(&mut slot, pkt.len(), src);
        run.finish();
        if let Decision::Forward { len, .. } = d {
            assert!(len <= slot.len());
            // Only SRTP that authenticated under handshake keys may pass.
            let st = t.handshake_state(1).expect("handshake");
            assert!(st.suite.is_some(), "forwarded before keys");
        }
    };
    if mode & 1 != 0 {
        feed(&mut t, &check(), srcs[1], now);
    }
    while let &[sel, hi, lo, ref tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([hi, lo])).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        rest = next;
        now += u64::from(sel >> 2) * 10;
        feed(&mut t, pkt, srcs[usize::from(sel & 3) % 3], now);
        t.poll_handshakes(Millis(now));
        assert!(t.pending_transmits() <= MAX_OUTBOX);
        if sel & 0x80 != 0 {
            while t.pop_transmit().is_some() {}
        }
    }
});
