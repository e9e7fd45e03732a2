//! Crafted frames: what passes, what drops, what goes to the AF_XDP socket.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn no_rule_passes_unchanged_and_is_counted() {
    with_skel(|prog, table| {
        let f = udp_frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:30000"),
            &rtp(),
        );
        let (action, out) = run(prog, &f, 1);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, f);
        // Not IP at all, and a runt.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(prog, &arp, 1).0, XDP_PASS);
        assert_eq!(run(prog, &f[..14], 1).0, XDP_PASS);
        let s = table.stats().unwrap();
        assert_eq!(
            s,
            XdpStats {
                passed: 3,
                ..XdpStats::default()
            }
        );
    });
}

#[test]
fn afxdp_flag_without_a_socket_falls_back_to_pass() {
    with_skel(|prog, table| {
        table.set_port_range(30000, 30099).unwrap();
        table.set_afxdp(true).unwrap();
        let f = udp_frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:30000"),
            &rtp(),
        );
        // No AF_XDP socket on queue 0: the stack gets it, unchanged.
        let (action, out) = run(prog, &f, 1);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, f);
        // Outside the range, VLAN-tagged, not UDP: never offered to a socket.
        let other = udp_frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:40000"),
            &rtp(),
        );
        assert_eq!(run(prog, &other, 1).0, XDP_PASS);
        let tagged = udp_frame(
            RELAY_MAC,
            PEER_A_MAC,
            true,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:30000"),
            &rtp(),
        );
        assert_eq!(run(prog, &tagged, 1).0, XDP_PASS);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(prog, &arp, 1).0, XDP_PASS);
        assert_eq!(
            table.stats().unwrap(),
            XdpStats {
                passed: 4,
                ..XdpStats::default()
            }
        );
        // Switching it off again keeps the port range.
        table.set_afxdp(false).unwrap();
        assert_eq!(run(prog, &f, 1).0, XDP_PASS);
    });
}

/// With AF_XDP on, only relay-port UDP to the relay's own addresses goes to the socket: the
/// same ports on another address (transit traffic on a host that routes, another service) stay
/// with the stack. An unspecified interface address takes every address, as before.
#[test]
fn afxdp_takes_only_the_relays_own_addresses() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let xsk = crate::sys::xsk::XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        with_skel(|prog, table| {
            table.set_port_range(30000, 30099).unwrap();
            table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
            table.set_afxdp(true).unwrap();
            let ours: [IpAddr; 2] = [
                "192.0.2.1".parse().unwrap(),
                "2001:db8:1::1".parse().unwrap(),
            ];
            table.set_local_addrs(&ours).unwrap();
            let to = |src: &str, dst: &str| {
                udp_frame(RELAY_MAC, PEER_A_MAC, false, sa(src), sa(dst), &rtp())
            };
            let local4 = to("192.0.2.2:4000", "192.0.2.1:30000");
            let local6 = to("[2001:db8:1::2]:4000", "[2001:db8:1::1]:30000");
            let transit4 = to("192.0.2.2:4000", "203.0.113.5:30000");
            let transit6 = to("[2001:db8:1::2]:4000", "[2001:db8:9::5]:30000");
            assert_eq!(run(prog, &local4, veth0).0, XDP_REDIRECT);
            assert_eq!(run(prog, &local6, veth0).0, XDP_REDIRECT);
            assert_eq!(run(prog, &transit4, veth0), (XDP_PASS, transit4.clone()));
            assert_eq!(run(prog, &transit6, veth0), (XDP_PASS, transit6.clone()));
            let s = table.stats().unwrap();
            assert_eq!((s.redirected, s.passed), (2, 2));
            // The relay on every address: everything in the range is its own again.
            let any: [IpAddr; 1] = ["0.0.0.0".parse().unwrap()];
            table.set_local_addrs(&any).unwrap();
            assert_eq!(run(prog, &transit4, veth0).0, XDP_REDIRECT);
            assert_eq!(run(prog, &transit6, veth0).0, XDP_REDIRECT);
        })
    });
}

/// What the kernel would drop goes there, never to AF_XDP nor forwarded: an IPv4 header
/// with a bad checksum, an IPv6 datagram with a zero UDP checksum (mandatory in IPv6).
#[test]
fn invalid_checksums_go_to_the_stack_even_with_afxdp() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let xsk = crate::sys::xsk::XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        with_skel(|prog, table| {
            table.set_port_range(30000, 30099).unwrap();
            table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
            table.set_afxdp(true).unwrap();
            let src4 = sa("192.0.2.2:4000");
            let src6 = sa("[2001:db8:1::2]:4000");
            let mut bad = udp_frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src4,
                sa("192.0.2.1:30000"),
                &rtp(),
            );
            bad[14 + 10] ^= 0xff;
            let mut zero = udp_frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src6,
                sa("[2001:db8:1::1]:30000"),
                &rtp(),
            );
            zero[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
            assert_eq!(run(prog, &bad, veth0), (XDP_PASS, bad.clone()));
            assert_eq!(run(prog, &zero, veth0), (XDP_PASS, zero.clone()));
            // With rules for them, neither is forwarded (nor redirected, as the intact ones are).
            for (local, rule, _) in topology_rules(table) {
                let mut f = udp_frame(
                    RELAY_MAC,
                    PEER_A_MAC,
                    false,
                    if local.is_ipv4() { src4 } else { src6 },
                    local,
                    &rtp(),
                );
                assert_ne!(run(prog, &f, veth0).0, XDP_PASS, "{rule:?}");
                if local.is_ipv4() {
                    f[14 + 10] ^= 0xff;
                } else {
                    f[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
                }
                assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()), "{rule:?}");
            }
        })
    });
}

#[test]
fn strict_source_mismatch_drops_and_counts_errors() {
    with_skel(|prog, table| {
        let local = sa("192.0.2.1:30000");
        let rule = Rule {
            source: sa("192.0.2.1:30002"),
            dest: sa("192.0.2.3:5000"),
            expect: Some(sa("192.0.2.2:4000")),
            kind: RuleKind::Rtp,
            block: None,
        };
        let slot = table.install(0, local, &rule).unwrap();
        assert_eq!(table.installed(), 1);
        // Wrong port, then wrong address.
        for src in ["192.0.2.2:4001", "192.0.2.9:4000"] {
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, sa(src), local, &rtp());
            assert_eq!(run(prog, &f, 1).0, XDP_DROP, "from {src}");
        }
        let t = table.totals(slot).unwrap();
        assert_eq!(t.errors, 2);
        assert_eq!(t.packets, 0);
        assert_eq!(table.stats().unwrap().dropped, 2);
        // The expected source is not dropped (it passes here: no route in this namespace).
        let f = udp_frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            local,
            &rtp(),
        );
        assert_eq!(run(prog, &f, 1).0, XDP_PASS);
        // Replacing keeps the slot and its counters; removing returns its last totals and
        // frees it; a new key reuses it with zeroed counters.
        assert_eq!(table.install(0, local, &rule).unwrap(), slot);
        assert_eq!(table.totals(slot).unwrap().errors, 2);
        let last = table.remove(local).unwrap().unwrap();
        assert_eq!((last.errors, last.packets), (2, 0));
        assert_eq!(table.remove(local).unwrap(), None);
        assert_eq!(table.installed(), 0);
        let f = udp_frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4001"),
            local,
            &rtp(),
        );
        assert_eq!(run(prog, &f, 1), (XDP_PASS, f.clone()));
        let other = sa("192.0.2.1:30010");
        assert_eq!(table.install(0, other, &rule).unwrap(), slot);
        assert_eq!(table.totals(slot).unwrap(), FlowTotals::default());
    });
}

#[test]
fn blocking_rule_drops_media_counts_it_and_lets_rtcp_and_dtmf_through() {
    with_skel(|prog, table| {
        let local = sa("192.0.2.1:30000");
        let rule = Rule {
            source: sa("192.0.2.1:30002"),
            dest: sa("192.0.2.3:5000"),
            expect: Some(sa("192.0.2.2:4000")),
            kind: RuleKind::Rtp,
            // Payload types 101 and 127 (both ends of a mask word) still pass.
            block: Some(1 << 101 | 1 << 127),
        };
        let slot = table.install(0, local, &rule).unwrap();
        let from = |src: &str, payload: &[u8]| {
            udp_frame(RELAY_MAC, PEER_A_MAC, false, sa(src), local, payload)
        };
        // Media from the expected source: dropped, counted as the flow's packets and a drop.
        let f = from("192.0.2.2:4000", &rtp());
        assert_eq!(run(prog, &f, 1).0, XDP_DROP);
        let t = table.totals(slot).unwrap();
        assert_eq!(
            (t.packets, t.bytes, t.errors, t.blocked),
            (1, rtp().len() as u64, 0, 1)
        );
        assert_eq!(table.stats().unwrap().dropped, 1);
        // The source check still comes first.
        assert_eq!(run(prog, &from("192.0.2.9:4000", &rtp()), 1).0, XDP_DROP);
        assert_eq!(table.totals(slot).unwrap().errors, 1);
        // Muxed RTCP is not blocked: it goes on towards forwarding (passed here: no route).
        let f = from("192.0.2.2:4000", &rtcp());
        assert_eq!(run(prog, &f, 1), (XDP_PASS, f.clone()));
        assert_eq!(table.totals(slot).unwrap().rtcp_packets, 0);
        // So are the payload types the rule passes (DTMF events), and only those.
        for (pt, action) in [
            (101u8, XDP_PASS),
            (127, XDP_PASS),
            (100, XDP_DROP),
            (102, XDP_DROP),
        ] {
            let mut p = rtp();
            p[1] = pt | 0x80; // with the marker bit
            assert_eq!(
                run(prog, &from("192.0.2.2:4000", &p), 1).0,
                action,
                "PT {pt}"
            );
        }
        assert_eq!(table.totals(slot).unwrap().blocked, 3);
        // Unblocked, the same media is no longer dropped.
        table
            .install(
                0,
                local,
                &Rule {
                    block: None,
                    ..rule
                },
            )
            .unwrap();
        let f = from("192.0.2.2:4000", &rtp());
        assert_eq!(run(prog, &f, 1), (XDP_PASS, f.clone()));
        // Non-RTP media is blocked too, whatever its second byte.
        let opaque = Rule {
            kind: RuleKind::Opaque,
            expect: None,
            ..rule
        };
        table.install(0, local, &opaque).unwrap();
        assert_eq!(
            run(prog, &from("192.0.2.7:1", &[0x80, 101, 0, 0]), 1).0,
            XDP_DROP
        );
        assert_eq!(table.stats().unwrap().dropped, 5);
    });
}

#[test]
fn truncated_and_fragmented_frames_pass_unchanged() {
    with_skel(|prog, table| {
        let local = sa("192.0.2.1:30000");
        let rule = Rule {
            source: sa("192.0.2.1:30002"),
            dest: sa("192.0.2.3:5000"),
            expect: Some(sa("192.0.2.2:4000")),
            kind: RuleKind::Rtp,
            block: None,
        };
        table.install(0, local, &rule).unwrap();
        // From a wrong source, so that a frame that parsed fully would be dropped.
        let f = udp_frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.9:1"),
            local,
            &rtp(),
        );
        assert_eq!(run(prog, &f, 1).0, XDP_DROP);
        for len in 14..14 + 20 + 8 {
            let (action, out) = run(prog, &f[..len], 1);
            assert_eq!((action, &out[..]), (XDP_PASS, &f[..len]), "cut at {len}");
        }
        // Cut inside the payload: the lengths disagree with the frame.
        let (action, _) = run(prog, &f[..f.len() - 1], 1);
        assert_eq!(action, XDP_PASS);
        // IP options (IHL 6, a NOP option word): left to the stack.
        let mut o = f[..14].to_vec();
        o.push(0x46);
        o.extend_from_slice(&f[15..34]);
        o.extend_from_slice(&[1, 1, 1, 0]);
        o.extend_from_slice(&f[34..]);
        let tot = u16::from_be_bytes([o[16], o[17]]) + 4;
        o[16..18].copy_from_slice(&tot.to_be_bytes());
        o[24..26].copy_from_slice(&[0, 0]);
        let c = !fold(sum16(&o[14..38]));
        o[24..26].copy_from_slice(&c.to_be_bytes());
        let (action, out) = run(prog, &o, 1);
        assert_eq!((action, out), (XDP_PASS, o));
        // More fragments, or an offset.
        for frag in [[0x20, 0x00], [0x00, 0x10]] {
            let mut g = f.clone();
            g[14 + 6..14 + 8].copy_from_slice(&frag);
            let (action, out) = run(prog, &g, 1);
            assert_eq!((action, out), (XDP_PASS, g));
        }
    });
}
