//! The cost of one run of the program (ignored: a measurement).

#![allow(clippy::unwrap_used)]

use super::*;

/// Run the program `repeat` times on `frame` in the kernel: mean ns per run.
fn cost(prog: &ProgramMut<'_>, frame: &[u8], ifindex: u32, repeat: u32) -> (u32, u64) {
    let len = u32::try_from(frame.len()).unwrap();
    let mut ctx = Vec::with_capacity(24);
    for w in [0, len, 0, ifindex, 0, 0] {
        ctx.extend_from_slice(&u32::to_ne_bytes(w));
    }
    let input = ProgramInput {
        context_in: Some(&mut ctx),
        data_in: Some(frame),
        repeat,
        ..Default::default()
    };
    let output = prog.test_run(input).unwrap();
    (output.return_value, output.duration.as_nanos() as u64)
}

/// What one packet costs the program, by path (`cargo test --lib xdp_cost -- --ignored
/// --nocapture` as root). A measuring aid, not a pass/fail test.
#[test]
#[ignore]
fn xdp_cost() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            let rules = topology_rules(table);
            let (local, _, _) = rules[0];
            let src = sa("192.0.2.2:4000");
            let fwd = udp_frame(RELAY_MAC, PEER_A_MAC, false, src, local, &rtp());
            let mut nocsum = fwd.clone();
            nocsum[40..42].copy_from_slice(&[0, 0]);
            let miss = udp_frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src,
                sa("192.0.2.1:40000"),
                &rtp(),
            );
            let (l6, _, _) = rules[3];
            let fwd6 = udp_frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                sa("[2001:db8:1::2]:4000"),
                l6,
                &rtp(),
            );
            for (name, f) in [
                ("forward v4", &fwd),
                ("forward v4, no UDP checksum", &nocsum),
                ("forward v6", &fwd6),
                ("no rule (pass)", &miss),
            ] {
                let mut runs: Vec<u64> = (0..5).map(|_| cost(prog, f, veth0, 200_000).1).collect();
                runs.sort_unstable();
                let (action, _) = cost(prog, f, veth0, 1);
                eprintln!("{name}: action {action}, median {} ns/run", runs[2]);
            }
        })
    });
}
