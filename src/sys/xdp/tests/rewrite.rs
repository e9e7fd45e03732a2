//! The full rewrite against a FIB in a namespace, and the cached next hop.

#![allow(clippy::unwrap_used)]

use super::*;

/// Check a forwarded frame byte by byte against the input and the rule.
fn check_rewrite(input: &[u8], out: &[u8], rule: &Rule, dmac: [u8; 6], smac: [u8; 6]) {
    assert_eq!(out.len(), input.len());
    let i = parse_udp(input).unwrap();
    let o = parse_udp(out).unwrap();
    assert_eq!(o.dmac, dmac);
    assert_eq!(o.smac, smac);
    assert_eq!(o.src, rule.source);
    assert_eq!(o.dst, rule.dest);
    assert_eq!(o.ttl, i.ttl - 1);
    assert!(o.ip_ok, "IP header checksum");
    assert!(o.udp_ok, "UDP checksum");
    // Everything else is untouched: the payload, and the IP header beyond what changed.
    let l3 = if input[12] == 0x81 { 18 } else { 14 };
    if input[l3 - 2] == 0x08 {
        let changed = [8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
        for k in 0..20 {
            if !changed.contains(&k) {
                assert_eq!(out[l3 + k], input[l3 + k], "IPv4 header byte {k}");
            }
        }
        assert_eq!(out[l3 + 28..], input[l3 + 28..], "payload");
    } else {
        assert_eq!(out[l3..l3 + 7], input[l3..l3 + 7], "IPv6 header");
        assert_eq!(out[l3 + 48..], input[l3 + 48..], "payload");
    }
}

#[test]
fn rewrites_v4_and_v6_with_fib_next_hop() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let rules = topology_rules(table);
            // With forwarding off, bpf_fib_lookup() refuses; the next hop is the one the rule's
            // install copied from the kernel's route and neighbour entry (`peers`).
            for (local, rule, src, dmac, smac, action) in [
                (
                    rules[0].0,
                    rules[0].1,
                    "192.0.2.2:4000",
                    PEER_B_MAC,
                    RELAY_MAC,
                    XDP_TX,
                ),
                (
                    rules[1].0,
                    rules[1].1,
                    "192.0.2.2:4000",
                    PEER_C_MAC,
                    RELAY2_MAC,
                    XDP_REDIRECT,
                ),
                (
                    rules[3].0,
                    rules[3].1,
                    "[2001:db8:1::2]:4000",
                    PEER_B_MAC,
                    RELAY_MAC,
                    XDP_TX,
                ),
            ] {
                let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, sa(src), local, &rtp());
                let (a, out) = run(prog, &f, veth0);
                assert_eq!(a, action, "{rule:?}");
                check_rewrite(&f, &out, &rule, dmac, smac);
            }
            // A peer the kernel has no neighbour entry for: userspace sends it (and the
            // kernel resolves it).
            let local = sa("192.0.2.1:30020");
            let unknown = Rule {
                dest: sa("192.0.2.77:5000"),
                ..rules[0].1
            };
            table.install(0, local, &unknown).unwrap();
            let f = udp_frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                sa("192.0.2.2:4000"),
                local,
                &rtp(),
            );
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
        })
    });
    ns.forwarding(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let rules = topology_rules(table);
            let src4 = sa("192.0.2.2:4000");
            let src6 = sa("[2001:db8:1::2]:4000");

            // v4, same link: XDP_TX, MACs from the FIB, the payload counted.
            let (local, rule, slot) = rules[0];
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
            // RTCP muxed on the RTP port.
            let g = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtcp());
            let (action, out) = run(prog, &g, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&g, &out, &rule, PEER_B_MAC, RELAY_MAC);
            assert_eq!(
                table.totals(slot).unwrap(),
                FlowTotals {
                    packets: 1,
                    bytes: rtp().len() as u64,
                    rtcp_packets: 1,
                    rtcp_bytes: 8,
                    errors: 0,
                    blocked: 0,
                }
            );
            // Not RTP on an RTP rule: passed, for userspace to count as malformed.
            let junk = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, b"hello, not rtp");
            assert_eq!(run(prog, &junk, veth0), (XDP_PASS, junk.clone()));
            // With a VLAN tag, XDP_TX is still fine.
            let t = udp_frame(RELAY_MAC, PEER_A_MAC, true, src4, local, &rtp());
            let (action, out) = run(prog, &t, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&t, &out, &rule, PEER_B_MAC, RELAY_MAC);
            // A zero UDP checksum stays zero (IPv4 only).
            let mut z = f.clone();
            z[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
            let (action, out) = run(prog, &z, veth0);
            assert_eq!(action, XDP_TX);
            assert!(parse_udp(&out).unwrap().udp_zero);
            // A partial checksum (TX offload on a veth peer: the pseudo-header's sum only)
            // leaves fully valid.
            let mut p = f.clone();
            let partial = partial_checksum(src4.ip(), local.ip(), 8 + rtp().len());
            p[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&partial.to_be_bytes());
            let (action, out) = run(prog, &p, veth0);
            assert_eq!(action, XDP_TX);
            assert!(parse_udp(&out).unwrap().udp_ok);
            // A wrong checksum is updated, not recomputed: it stays wrong, so the receiver
            // still drops what was corrupted on the way.
            let mut w = f.clone();
            w[14 + 20 + 8 + 20] ^= 0x40;
            let (action, out) = run(prog, &w, veth0);
            assert_eq!(action, XDP_TX);
            assert!(!parse_udp(&out).unwrap().udp_ok);
            w[14 + 20 + 8 + 20] ^= 0x40;
            assert!(parse_udp(&w).unwrap().udp_ok);
            // TTL 1 would expire: passed.
            let mut e = f.clone();
            e[14 + 8] = 1;
            e[14 + 10] = 0;
            e[14 + 11] = 0;
            let c = !fold(sum16(&e[14..34]));
            e[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
            assert_eq!(run(prog, &e, veth0), (XDP_PASS, e.clone()));
            // A bad IP header checksum: passed, not repaired.
            let mut b = f.clone();
            b[14 + 10] ^= 0xff;
            assert_eq!(run(prog, &b, veth0), (XDP_PASS, b.clone()));

            // v4 to another link: redirect, strict source honoured.
            let (local, rule, _) = rules[1];
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &rule, PEER_C_MAC, RELAY2_MAC);
            // ... but not with a VLAN tag.
            let t = udp_frame(RELAY_MAC, PEER_A_MAC, true, src4, local, &rtp());
            assert_eq!(run(prog, &t, veth0), (XDP_PASS, t.clone()));

            // Opaque: anything goes.
            let (local, rule, _) = rules[2];
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, b"x");
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);

            // v6, same link.
            let (local, rule, _) = rules[3];
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src6, local, &rtp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
            // Odd payload length.
            let mut odd = rtp();
            odd.push(0x5a);
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src6, local, &odd);
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);

            // v6 RTCP rule to another link, strict.
            let (local, rule, slot) = rules[4];
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src6, local, &rtcp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &rule, PEER_C_MAC, RELAY2_MAC);
            let t = table.totals(slot).unwrap();
            assert_eq!((t.packets, t.rtcp_packets, t.rtcp_bytes), (0, 1, 8));
            let bad = udp_frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                sa("[2001:db8:1::9]:4000"),
                local,
                &rtcp(),
            );
            assert_eq!(run(prog, &bad, veth0).0, XDP_DROP);
            assert_eq!(table.totals(slot).unwrap().errors, 1);

            // Mixed families: a v4 local with a v6 rule is left to userspace.
            let mixed = Rule {
                source: sa("[2001:db8:1::1]:30002"),
                dest: sa("[2001:db8:1::3]:5000"),
                expect: None,
                kind: RuleKind::Opaque,
                block: None,
            };
            let local = sa("192.0.2.1:31000");
            table.install(0, local, &mixed).unwrap();
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            // A wildcard local address matches any local address of its family.
            let any = sa("0.0.0.0:32000");
            table.install(0, any, &rules[0].1).unwrap();
            let f = udp_frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src4,
                sa("192.0.2.1:32000"),
                &rtp(),
            );
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rules[0].1, PEER_B_MAC, RELAY_MAC);

            let s = table.stats().unwrap();
            assert_eq!(s.forwarded, 12);
            assert_eq!(s.dropped, 1);
            assert_eq!(s.aborted, 0);
        })
    });
}

/// The topology's rules, and one RTP frame forwarded by the first (caching its next hop):
/// that rule's local address, rule, slot, the frame's source and the frame.
fn first_forward(
    prog: &ProgramMut<'_>,
    table: &XdpTable,
    veth0: u32,
) -> (SocketAddr, Rule, u32, SocketAddr, Vec<u8>) {
    let (local, rule, slot) = topology_rules(table)[0];
    let src = sa("192.0.2.2:4000");
    let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src, local, &rtp());
    let (action, out) = run(prog, &f, veth0);
    assert_eq!(action, XDP_TX);
    check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
    (local, rule, slot, src, f)
}

/// Each CPU reuses a flow's next hop for up to a second (RTPRELAY_HOP_TTL_NS), but never for
/// another destination: a rule that now sends elsewhere looks its hop up at once, and a
/// neighbour whose MAC changed is followed once the cached hop expires.
#[test]
fn cached_next_hop_follows_rule_and_neighbour_changes() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    let name = ns.name.clone();
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let (local, rule, slot, _, f) = first_forward(prog, table, veth0);

            // The same slot now sends to the other link: no stale hop.
            let moved = Rule {
                source: sa("198.51.100.1:30006"),
                dest: sa("198.51.100.2:6000"),
                ..rule
            };
            assert_eq!(table.install(0, local, &moved).unwrap(), slot);
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &moved, PEER_C_MAC, RELAY2_MAC);

            // Back, then the callee's MAC changes: the cached hop holds until it expires.
            table.install(0, local, &rule).unwrap();
            let (_, out) = run(prog, &f, veth0);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
            let new_mac = [0x02, 0, 0, 0, 0x01, 0x33];
            ip(&[
                "-n",
                &name,
                "neigh",
                "replace",
                "192.0.2.3",
                "lladdr",
                "02:00:00:00:01:33",
                "dev",
                "veth0",
                "nud",
                "permanent",
            ]);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            loop {
                let (action, out) = run(prog, &f, veth0);
                assert_eq!(action, XDP_TX);
                if out[0..6] == new_mac {
                    check_rewrite(&f, &out, &rule, new_mac, RELAY_MAC);
                    break;
                }
                assert_eq!(out[0..6], PEER_B_MAC);
                assert!(
                    std::time::Instant::now() < deadline,
                    "new neighbour never used"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    });
}

/// The cached next hop is also keyed by the source: a rule replaced in place whose new source
/// routes elsewhere (policy routing) looks its hop up at once. And it holds only for packets as
/// short as the one looked up: a longer one is checked against the route's MTU again.
#[test]
fn cached_next_hop_is_keyed_by_source_and_length() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    let n = ns.name.clone();
    // From 198.51.100.1, 192.0.2.0/24 is reached over veth2 (peer C's MAC there).
    ip(&[
        "-n",
        &n,
        "rule",
        "add",
        "from",
        "198.51.100.1",
        "lookup",
        "100",
    ]);
    ip(&[
        "-n",
        &n,
        "route",
        "add",
        "192.0.2.0/24",
        "dev",
        "veth2",
        "table",
        "100",
    ]);
    ip(&[
        "-n",
        &n,
        "neigh",
        "add",
        "192.0.2.3",
        "lladdr",
        "02:00:00:00:02:02",
        "dev",
        "veth2",
        "nud",
        "permanent",
    ]);
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let (local, rule, slot, src, f) = first_forward(prog, table, veth0);

            // Same slot and destination, new source: its own route, not the cached hop.
            let resourced = Rule {
                source: sa("198.51.100.1:30006"),
                ..rule
            };
            assert_eq!(table.install(0, local, &resourced).unwrap(), slot);
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &resourced, PEER_C_MAC, RELAY2_MAC);

            // Back; then the link's MTU drops below a longer packet's size: that one goes to
            // the stack (which sends the ICMP error), the short ones still use the cached hop.
            table.install(0, local, &rule).unwrap();
            assert_eq!(run(prog, &f, veth0).0, XDP_TX);
            ip(&["-n", &n, "link", "set", "veth0", "mtu", "600"]);
            let mut long = rtp();
            long.resize(1000, 0);
            let big = udp_frame(RELAY_MAC, PEER_A_MAC, false, src, local, &long);
            assert_eq!(run(prog, &big, veth0), (XDP_PASS, big.clone()));
            assert_eq!(run(prog, &f, veth0).0, XDP_TX);
        })
    });
}
