//! The flow table with SRTP on both sides never panics on any packet in any slot: what arrives
//! on a flow that unprotects is hostile bytes, then the table protects toward the other side in
//! a slot whose room the input chooses; a forward never claims more than the slot holds.
#![no_main]
use std::net::SocketAddr;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rtprelay::flow::latch::LatchConfig;
use rtprelay::flow::table::{Decision, FlowSpec, FlowTable};
use rtprelay::flow::{FlowCrypto, FlowId, FlowKind};
use rtprelay::guard::TargetPolicy;
use rtprelay::srtp::{Params, Suite};
use rtprelay::time::Millis;

fn params(sel: u8, seed: u8) -> Params {
    let suite = Suite::ALL[usize::from(sel) % Suite::ALL.len()];
    let key: Vec<u8> = (0..suite.master_key_len() as u8)
        .map(|b| b ^ seed)
        .collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8)
        .map(|b| b ^ 0x5a)
        .collect();
    let mut p = Params::new(suite, &key, &salt);
    if sel & 0x80 != 0 {
        p.mki = vec![9, 9];
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let [sel, kind, room, rest @ ..] = data else {
        return;
    };
    let kind = match kind % 3 {
        0 => FlowKind::Rtp,
        1 => FlowKind::Rtcp,
        _ => FlowKind::Opaque,
    };
    let peer: SocketAddr = "198.51.100.3:2000".parse().expect("addr");
    let mut t: FlowTable<u64> = FlowTable::default();
    for (id, egress, crypto) in [
        (
            1,
            2,
            FlowCrypto {
                inbound: Some(params(*sel, 1)),
                ..FlowCrypto::default()
            },
        ),
        (
            2,
            1,
            FlowCrypto {
                outbound: Some(params(sel.rotate_left(3), 2)),
                ..FlowCrypto::default()
            },
        ),
    ] {
        let spec = FlowSpec {
            kind,
            egress: Some(FlowId(egress)),
            rtcp_egress: None,
            latch: LatchConfig {
                expected: Some(peer),
                ..LatchConfig::default()
            },
            counters: Arc::default(),
            record: None,
            local: None,
            crypto,
        };
        t.open(FlowId(id), spec, id, Millis(0));
    }
    let policy = TargetPolicy::permissive();
    // The same bytes, first as they are, then protected toward flow 2's peer by a forward.
    let mut slot = rest.to_vec();
    slot.resize(rest.len() + usize::from(*room % 64), 0);
    for token in [1, 2] {
        let Some(mut run) = t.run(token, Millis(1), &policy, |io| *io) else {
            return;
        };
        let mut buf = slot.clone();
        if let Decision::Forward { len, .. } = run.packet_mut(&mut buf, rest.len(), peer) {
            assert!(len <= buf.len());
        }
        let _ = run.packet(rest, peer);
        run.finish();
    }
});
