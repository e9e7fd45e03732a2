//! SRTP bridged by a worker on real sockets: A speaks SRTP (rtcp-mux), B plain RTP.

use super::*;
use crate::srtp::{Params, SrtpContext, Suite};

fn key(suite: Suite, seed: u8) -> Params {
    let k: Vec<u8> = (0..suite.master_key_len() as u8)
        .map(|i| i ^ seed)
        .collect();
    let s: Vec<u8> = (0..suite.master_salt_len() as u8)
        .map(|i| i.wrapping_mul(5) ^ seed)
        .collect();
    Params::new(suite, &k, &s)
}

fn ctx(p: &Params) -> SrtpContext {
    SrtpContext::new(p).expect("context")
}

fn protect(c: &mut SrtpContext, pkt: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + 64, 0);
    let n = if rtcp {
        c.protect_rtcp(&mut buf, pkt.len())
    } else {
        c.protect_rtp(&mut buf, pkt.len())
    }
    .expect("protect");
    buf.truncate(n);
    buf
}

#[test]
fn bridges_srtp_to_rtp_and_drops_forgeries_and_replays() {
    bridges_srtp_on(PlaneKind::Mmsg, SocketTuning::default());
}

/// The rewritten (longer or shorter) packets go out of connected sockets too.
#[test]
fn bridges_srtp_on_connected_sockets() {
    let connected = SocketTuning {
        connect_latched: true,
        uring_fixed_files: false,
    };
    bridges_srtp_on(PlaneKind::Mmsg, connected);
}

#[test]
fn bridges_srtp_on_connected_sockets_uring_fixed_files() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    let tuning = SocketTuning {
        connect_latched: true,
        uring_fixed_files: true,
    };
    bridges_srtp_on(PlaneKind::Uring, tuning);
}

#[test]
fn bridges_srtp_to_rtp_and_drops_forgeries_and_replays_uring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    bridges_srtp_on(PlaneKind::Uring, SocketTuning::default());
}

fn bridges_srtp_on(plane: PlaneKind, tuning: SocketTuning) {
    let (etx, _erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 1,
        cpus: None,
        plane,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning,
        dtls: None,
    })
    .expect("spawn");
    let (ca, cb) = (client(), client());
    let (ra, _ra_rtcp) = relay_pair();
    let (rb, _rb_rtcp) = relay_pair();
    let (to_a, to_b) = (addr(&ra), addr(&rb));
    // A's key (what A sends) and the relay's key toward A (what A receives).
    let (ka, ka2) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AeadAes128Gcm, 2),
    );
    let (ca_counters, cb_counters) = (Arc::default(), Arc::default());
    let mut flow_a = open(1, FlowKind::Rtp, ra, 2, addr(&ca), &ca_counters);
    if let FlowUpdate::Open { crypto, .. } = &mut flow_a {
        *crypto = FlowCrypto {
            inbound: Some(ka.clone()),
            outbound: Some(ka2.clone()),
            ..FlowCrypto::default()
        };
    }
    let flow_b = open(2, FlowKind::Rtp, rb, 1, addr(&cb), &cb_counters);
    w.send_batch(0, vec![flow_a, flow_b]);
    let a_counters: &Arc<StreamCounters> = &ca_counters;
    let (mut a_tx, mut a_rx) = (ctx(&ka), ctx(&ka2));

    // A → B: SRTP in, the clear RTP out.
    let mut first = Vec::new();
    for seq in 0..3u16 {
        let clear = rtp(100 + seq, 0xa);
        let sent = protect(&mut a_tx, &clear, false);
        ca.send_to(&sent, to_a).expect("send");
        let (got, from) = recv(&cb, Duration::from_secs(2)).expect("B gets RTP");
        assert_eq!((got, from), (clear, to_b));
        if seq == 0 {
            first = sent;
        }
    }
    // SRTCP on the RTP port (rtcp-mux): B gets the clear RTCP.
    let rr = rtcp_rr(0xa);
    ca.send_to(&protect(&mut a_tx, &rr, true), to_a)
        .expect("send");
    assert_eq!(recv(&cb, Duration::from_secs(2)).map(|r| r.0), Some(rr));

    // B → A: RTP in, SRTP under A's receiving key out.
    for seq in 0..3u16 {
        let clear = rtp(500 + seq, 0xb);
        cb.send_to(&clear, to_b).expect("send");
        let (mut got, from) = recv(&ca, Duration::from_secs(2)).expect("A gets SRTP");
        assert_eq!(from, to_a);
        assert_ne!(got, clear);
        let n = a_rx.unprotect_rtp(&mut got).expect("A authenticates it");
        assert_eq!(got[..n], clear[..]);
    }

    // A forged packet (wrong key) and a replay: dropped and counted, nothing reaches B.
    let forged = protect(
        &mut ctx(&key(Suite::AesCm128HmacSha1_80, 9)),
        &rtp(200, 0xa),
        false,
    );
    ca.send_to(&forged, to_a).expect("send");
    ca.send_to(&first, to_a).expect("send");
    eventually("the forgery and the replay counted", || {
        a_counters.srtp_auth_failures.load(Relaxed) == 1
            && a_counters.srtp_replays.load(Relaxed) == 1
    });
    assert!(
        recv(&cb, Duration::from_millis(150)).is_none(),
        "neither is forwarded"
    );
    assert_eq!(a_counters.packets.load(Relaxed), 3);
    assert_eq!(a_counters.rtcp_packets.load(Relaxed), 1);
    assert_eq!(a_counters.errors.load(Relaxed), 2);
    let totals = w.counters();
    assert_eq!((totals.srtp_auth_failures, totals.srtp_replays), (1, 1));
    // Good media goes on.
    let clear = rtp(103, 0xa);
    ca.send_to(&protect(&mut a_tx, &clear, false), to_a)
        .expect("send");
    assert_eq!(recv(&cb, Duration::from_secs(2)).map(|r| r.0), Some(clear));
}
