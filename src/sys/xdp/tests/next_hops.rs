//! Next hops come from the kernel's tables, never from frames; counters read in batches.

#![allow(clippy::unwrap_used)]

use super::*;

/// Strict-source rules both ways between peer A (192.0.2.2:4000) and peer B
/// (192.0.2.3:5000): A sends to 192.0.2.1:30000, forwarded to B from 30002; B sends to 30002,
/// forwarded to A from 30000. Returns A's local address, B's, and the slot of B's rule.
fn call_rules(table: &XdpTable) -> (SocketAddr, SocketAddr, u32) {
    let (la, lb) = (sa("192.0.2.1:30000"), sa("192.0.2.1:30002"));
    let rule = |source, dest: &str, expect: &str| Rule {
        source,
        dest: sa(dest),
        expect: Some(sa(expect)),
        kind: RuleKind::Rtp,
        block: None,
    };
    let to_b = rule(lb, "192.0.2.3:5000", "192.0.2.2:4000");
    let to_a = rule(la, "192.0.2.2:4000", "192.0.2.3:5000");
    table.install(0, la, &to_b).unwrap();
    let slot = table.install(0, lb, &to_a).unwrap();
    (la, lb, slot)
}

/// Where the program sends a peer's media when its route lookup cannot answer (forwarding
/// off) comes from the kernel's tables, never from frames: a host on the link that forges peer
/// A's address, from another port, to a relay port without a rule, or with A's exact address
/// and port (which strict source lets through), never has B's media for A sent to its MAC. A
/// frame from a multicast or broadcast source is left to the stack (not forwarded, nor handed
/// to AF_XDP).
#[test]
fn forged_frames_never_move_a_peers_next_hop() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let xsk = crate::sys::xsk::XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0"]);
            table.set_port_range(30000, 30099).unwrap();
            let relay: IpAddr = "192.0.2.1".parse().unwrap();
            let (a, b) = (sa("192.0.2.2:4000"), sa("192.0.2.3:5000"));
            let no_rule = sa("192.0.2.1:30050");
            let forged = |src, to| udp_frame(RELAY_MAC, SPOOF_MAC, false, src, to, &rtp());
            // Before any rule, to a port of the range: nothing is learnt.
            let f = forged(a, no_rule);
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            assert_eq!(table.peer_entry(relay, a.ip()).unwrap(), None);
            // The rules go in with their next hops, from the neighbour table.
            let (la, lb, slot_b) = call_rules(table);
            let hop = |peer_mac| abi::Peer {
                ifindex: veth0,
                our_mac: RELAY_MAC,
                peer_mac,
            };
            let hops = |t: &XdpTable| {
                (
                    t.peer_entry(relay, a.ip()).unwrap(),
                    t.peer_entry(relay, b.ip()).unwrap(),
                )
            };
            assert_eq!(hops(table), (Some(hop(PEER_A_MAC)), Some(hop(PEER_B_MAC))));
            // A's address, another port: strict source drops it.
            let f = forged(SocketAddr::new(a.ip(), 4001), la);
            assert_eq!(run(prog, &f, veth0).0, XDP_DROP);
            // A's address, to a port with no rule: the stack's.
            let f = forged(a, no_rule);
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            // A's exact address and port: forwarded to B (strict source cannot tell them
            // apart), and that is all.
            let (action, out) = run(prog, &forged(a, la), veth0);
            assert_eq!(action, XDP_TX);
            assert_eq!(parse_udp(&out).unwrap().dmac, PEER_B_MAC);
            assert_eq!(hops(table), (Some(hop(PEER_A_MAC)), Some(hop(PEER_B_MAC))));
            // B's media for A, the first since (no hop cached): to A's MAC.
            let from_b = udp_frame(RELAY_MAC, PEER_B_MAC, false, b, lb, &rtp());
            let (action, out) = run(prog, &from_b, veth0);
            assert_eq!(action, XDP_TX);
            let o = parse_udp(&out).unwrap();
            assert_eq!(
                (o.dmac, o.smac, o.src, o.dst),
                (PEER_A_MAC, RELAY_MAC, la, a)
            );
            // A multicast or broadcast source: left to the stack, as B's exact address and
            // port too, and with the AF_XDP plane on.
            table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
            table.set_afxdp(true).unwrap();
            let before = table.totals(slot_b).unwrap();
            for smac in [
                [0x01, 0, 0x5e, 0, 0, 1],
                [0x33, 0x33, 0, 0, 0, 1],
                [0xff; 6],
            ] {
                for to in [lb, no_rule] {
                    let f = udp_frame(RELAY_MAC, smac, false, b, to, &rtp());
                    assert_eq!(
                        run(prog, &f, veth0),
                        (XDP_PASS, f.clone()),
                        "{smac:02x?} to {to}"
                    );
                }
            }
            assert_eq!(table.totals(slot_b).unwrap(), before);
            // (A unicast source to the port without a rule goes to the AF_XDP socket.)
            assert_eq!(run(prog, &forged(a, no_rule), veth0).0, XDP_REDIRECT);
            assert_eq!(hops(table), (Some(hop(PEER_A_MAC)), Some(hop(PEER_B_MAC))));
        })
    });
}

/// The program sends only out of the devices it is attached to (`devs`): a route, or a next
/// hop in `peers`, on any other device leaves the packet to the stack.
#[test]
fn a_next_hop_on_a_device_not_attached_to_is_left_to_the_stack() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0"]);
            let rules = topology_rules(table);
            let src4 = sa("192.0.2.2:4000");
            // The route to 198.51.100.2 is on veth2, which the program is not attached to.
            let (local, _, slot) = rules[1];
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            assert_eq!(table.totals(slot).unwrap().packets, 0);
            // Back out of veth0 is fine.
            let (local0, _, _) = rules[0];
            let g = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local0, &rtp());
            assert_eq!(run(prog, &g, veth0).0, XDP_TX);
            // Attached to veth2 too: redirected there.
            send_out_of(table, &["veth2"]);
            assert_eq!(run(prog, &f, veth0).0, XDP_REDIRECT);
        })
    });
    ns.forwarding(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let veth2 = ifindex("veth2").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0"]);
            let rules = topology_rules(table);
            let relay: IpAddr = "192.0.2.1".parse().unwrap();
            let src4 = sa("192.0.2.2:4000");
            // The next hop of rule 1 (to 198.51.100.2) is on veth2, from the tables.
            let (local, _, _) = rules[1];
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            // `peers` answering with veth2 for rule 0 (to 192.0.2.3), and with a device that
            // does not exist for a rule to 192.0.2.2: neither is sent.
            let elsewhere = |ifindex| abi::Peer {
                ifindex,
                our_mac: RELAY2_MAC,
                peer_mac: PEER_C_MAC,
            };
            let b: IpAddr = "192.0.2.3".parse().unwrap();
            table.write_peer_entry(relay, b, elsewhere(veth2)).unwrap();
            let (local0, _, _) = rules[0];
            let g = udp_frame(RELAY_MAC, PEER_A_MAC, false, src4, local0, &rtp());
            assert_eq!(run(prog, &g, veth0), (XDP_PASS, g.clone()));
            let to_a = sa("192.0.2.1:30040");
            let rule = Rule {
                source: sa("192.0.2.1:30042"),
                dest: src4,
                expect: None,
                kind: RuleKind::Rtp,
                block: None,
            };
            table.install(0, to_a, &rule).unwrap();
            table
                .write_peer_entry(relay, src4.ip(), elsewhere(4242))
                .unwrap();
            let h = udp_frame(
                RELAY_MAC,
                PEER_B_MAC,
                false,
                sa("192.0.2.3:5000"),
                to_a,
                &rtp(),
            );
            assert_eq!(run(prog, &h, veth0), (XDP_PASS, h.clone()));
            let s = table.stats().unwrap();
            assert_eq!((s.forwarded, s.aborted), (0, 0));
        })
    });
}

/// The next hops come from the kernel's tables: the route from the rule's source, and the
/// neighbour entry of its next hop (the gateway's, off-link). A new MAC is followed at the next
/// pass; a peer the kernel has not resolved yet gets its hop once it has; a hop whose
/// neighbour entry went but whose route stands holds; the entry goes with its route, and with
/// the last rule that needs it.
#[test]
fn next_hops_follow_the_kernels_route_and_neighbour_tables() {
    use super::rtnl::{Route, Rtnl};

    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    let n = ns.name.clone();
    // 203.0.113.0/24 is reached through 192.0.2.3 (peer B).
    ip(&[
        "-n",
        &n,
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "192.0.2.3",
    ]);
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        let veth2 = ifindex("veth2").unwrap();
        let addr = |s: &str| -> IpAddr { s.parse().unwrap() };
        let relay = addr("192.0.2.1");
        // The tables as the lookups see them.
        let mut rtnl = Rtnl::open().unwrap();
        let on_link = |ifindex| {
            Some(Route {
                ifindex,
                gateway: None,
            })
        };
        assert_eq!(
            rtnl.route(relay, addr("192.0.2.3")).unwrap(),
            on_link(veth0)
        );
        assert_eq!(
            rtnl.route(relay, addr("203.0.113.9")).unwrap(),
            Some(Route {
                ifindex: veth0,
                gateway: Some(addr("192.0.2.3"))
            })
        );
        assert_eq!(
            rtnl.route(addr("198.51.100.1"), addr("198.51.100.2"))
                .unwrap(),
            on_link(veth2)
        );
        assert_eq!(
            rtnl.route(addr("2001:db8:1::1"), addr("2001:db8:1::3"))
                .unwrap(),
            on_link(veth0)
        );
        // No default route; a local destination.
        assert_eq!(rtnl.route(relay, addr("8.8.8.8")).unwrap(), None);
        assert_eq!(rtnl.route(relay, relay).unwrap(), None);
        assert_eq!(
            rtnl.neighbour(veth0, addr("192.0.2.3")).unwrap(),
            Some(PEER_B_MAC)
        );
        assert_eq!(
            rtnl.neighbour(veth0, addr("2001:db8:1::3")).unwrap(),
            Some(PEER_B_MAC)
        );
        assert_eq!(rtnl.neighbour(veth0, addr("192.0.2.99")).unwrap(), None);
        assert_eq!(rtnl.link_mac(veth0).unwrap(), Some(RELAY_MAC));
        assert_eq!(rtnl.link_mac(1).unwrap(), None, "loopback is no Ethernet");
        with_skel(|_, table| {
            let install = |port: u16, dest: &str| {
                let rule = Rule {
                    source: SocketAddr::new(relay, port + 2),
                    dest: sa(dest),
                    expect: None,
                    kind: RuleKind::Rtp,
                    block: None,
                };
                table
                    .install(0, SocketAddr::new(relay, port), &rule)
                    .unwrap();
            };
            let hop = |peer_mac| {
                Some(abi::Peer {
                    ifindex: veth0,
                    our_mac: RELAY_MAC,
                    peer_mac,
                })
            };
            let entry = |dest: &str| table.peer_entry(relay, addr(dest)).unwrap();
            let neigh = |args: &[&str]| {
                let mut all = vec!["-n", &n, "neigh"];
                all.extend_from_slice(args);
                ip(&all);
            };
            // On-link, and off-link through the gateway.
            install(30000, "192.0.2.3:5000");
            install(30004, "203.0.113.9:7000");
            assert_eq!(entry("192.0.2.3"), hop(PEER_B_MAC));
            assert_eq!(entry("203.0.113.9"), hop(PEER_B_MAC));
            // B's MAC changes: the next pass follows it, for both.
            let new_mac = [0x02, 0, 0, 0, 0x01, 0x33];
            neigh(&[
                "replace",
                "192.0.2.3",
                "lladdr",
                "02:00:00:00:01:33",
                "dev",
                "veth0",
                "nud",
                "permanent",
            ]);
            table.next_hops().refresh(&mut rtnl, true);
            assert_eq!(entry("192.0.2.3"), hop(new_mac));
            assert_eq!(entry("203.0.113.9"), hop(new_mac));
            // A peer the kernel has no entry for yet: no hop; the retry writes it once the
            // kernel has one (a stale entry is one the stack sends to).
            install(30008, "192.0.2.50:8000");
            assert_eq!(entry("192.0.2.50"), None);
            let mac50 = [0x02, 0, 0, 0, 0x01, 0x50];
            neigh(&[
                "add",
                "192.0.2.50",
                "lladdr",
                "02:00:00:00:01:50",
                "dev",
                "veth0",
                "nud",
                "stale",
            ]);
            table.next_hops().refresh(&mut rtnl, false);
            assert_eq!(entry("192.0.2.50"), hop(mac50));
            // The entry goes (the kernel collects unused ones), the route stands: the hop holds.
            neigh(&["del", "192.0.2.50", "dev", "veth0"]);
            table.next_hops().refresh(&mut rtnl, true);
            assert_eq!(entry("192.0.2.50"), hop(mac50));
            // The route goes: so does the hop.
            ip(&["-n", &n, "route", "del", "203.0.113.0/24"]);
            table.next_hops().refresh(&mut rtnl, true);
            assert_eq!(entry("203.0.113.9"), None);
            // A pair shared by two rules stays until both are gone.
            install(30012, "192.0.2.3:5002");
            table.remove(SocketAddr::new(relay, 30000)).unwrap();
            assert_eq!(entry("192.0.2.3"), hop(new_mac));
            table.remove(SocketAddr::new(relay, 30012)).unwrap();
            assert_eq!(entry("192.0.2.3"), None);
            // A rule replaced by one to another peer: the old peer's entry goes.
            install(30008, "192.0.2.2:8000");
            assert_eq!(entry("192.0.2.50"), None);
            assert_eq!(entry("192.0.2.2"), hop(PEER_A_MAC));
            for port in [30004, 30008] {
                table.remove(SocketAddr::new(relay, port)).unwrap();
            }
            assert_eq!(table.next_hops().tracked(), 0);
            assert_eq!(entry("192.0.2.2"), None);
        })
    });
}

/// The batched read of a worker's slots gives what the per-slot read gives, across batches,
/// and reads only that worker's partition of the slots.
#[test]
fn batched_counter_read_matches_per_slot_reads() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            // Four workers: a quarter of the slots each, handed out in turn.
            table.set_partitions(4).unwrap();
            let claimed: Vec<usize> = (0..5).map(|_| table.claim_partition()).collect();
            assert_eq!(claimed, [0, 1, 2, 3, 0]);
            let quarter = abi::MAX_FLOWS / 4;
            let src = sa("192.0.2.2:4000");
            let rule_for = |local: SocketAddr, port: u16| Rule {
                source: SocketAddr::new(local.ip(), port),
                dest: sa("192.0.2.3:5000"),
                expect: None,
                kind: RuleKind::Rtp,
                block: None,
            };
            // Worker 1's rule, with a packet: not in worker 2's read.
            let other = sa("192.0.2.1:19998");
            let other_slot = table.install(1, other, &rule_for(other, 19996)).unwrap();
            assert_eq!(other_slot, quarter);
            let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src, other, &rtp());
            assert_eq!(run(prog, &f, veth0).0, XDP_TX);
            assert!(
                table.set_partitions(2).is_err(),
                "repartitioned under a rule"
            );
            let mut hit = Vec::new();
            for i in 0..2500u16 {
                let local = SocketAddr::new(Ipv4Addr::new(192, 0, 2, 1).into(), 20000 + 2 * i);
                let slot = table
                    .install(2, local, &rule_for(local, 40000 + 2 * i))
                    .unwrap();
                assert!((2 * quarter..3 * quarter).contains(&slot), "slot {slot}");
                if i % 700 == 0 {
                    let f = udp_frame(RELAY_MAC, PEER_A_MAC, false, src, local, &rtp());
                    for _ in 0..=i / 700 {
                        assert_eq!(run(prog, &f, veth0).0, XDP_TX);
                    }
                    hit.push((slot, u64::from(i / 700) + 1));
                }
            }
            let mut all = SlotTotals::default();
            // Read twice into the same buffers: the same result.
            for _ in 0..2 {
                table.totals_all(2, &mut all).unwrap();
                assert_eq!(all.len(), 2500);
                for &(slot, packets) in &hit {
                    assert_eq!(all.get(slot).unwrap().packets, packets, "slot {slot}");
                    assert_eq!(*all.get(slot).unwrap(), table.totals(slot).unwrap());
                }
                assert_eq!(all.get(other_slot), None);
                assert_eq!(all.get(2 * quarter + 2500), None);
                assert_eq!(
                    all.totals.iter().map(|t| t.packets).sum::<u64>(),
                    1 + 2 + 3 + 4
                );
            }
            table.totals_all(1, &mut all).unwrap();
            assert_eq!(all.len(), 1);
            assert_eq!(all.get(other_slot).unwrap().packets, 1);
            table.totals_all(3, &mut all).unwrap();
            assert!(all.is_empty());
        })
    });
}
