//! Random frames: each passes unchanged or leaves valid.

#![allow(clippy::unwrap_used)]

use super::*;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_frames_pass_unchanged_or_leave_valid() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let rules = topology_rules(table);
            let seed = 0x5eed_fa11_u64;
            let mut rng = Rng(seed);
            let sources = [
                sa("192.0.2.2:4000"),
                sa("192.0.2.9:4000"),
                sa("[2001:db8:1::2]:4000"),
            ];
            let (mut tx, mut pass, mut drop, mut wrong) = (0, 0, 0, 0);
            for n in 0..4000 {
                let (local, _, _) = rules[rng.below(rules.len())];
                let src = sources[rng.below(sources.len())];
                let src = if src.is_ipv4() == local.is_ipv4() {
                    src
                } else {
                    SocketAddr::new(
                        match local.ip() {
                            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
                            IpAddr::V6(_) => {
                                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2))
                            }
                        },
                        4000,
                    )
                };
                let payload: Vec<u8> = match rng.below(4) {
                    0 => rtp(),
                    1 => rtcp(),
                    _ => (0..rng.below(1500)).map(|_| rng.next() as u8).collect(),
                };
                let mut f = udp_frame(
                    RELAY_MAC,
                    PEER_A_MAC,
                    rng.below(4) == 0,
                    src,
                    local,
                    &payload,
                );
                // Mutate: flip bytes, truncate, or replace with noise.
                match rng.below(5) {
                    0 => {}
                    1 | 2 => {
                        for _ in 0..=rng.below(4) {
                            let i = rng.below(f.len().min(80));
                            f[i] = rng.next() as u8;
                        }
                    }
                    3 => f.truncate(14 + rng.below(f.len() - 13)),
                    _ => {
                        let len = 14 + rng.below(200);
                        f = (0..len).map(|_| rng.next() as u8).collect();
                        if rng.below(2) == 0 {
                            f[12..14].copy_from_slice(&[0x08, 0x00]);
                        }
                    }
                }
                // The checksum is updated, not recomputed: valid in, valid out; wrong in,
                // wrong out (unless the input looks partial, which is recomputed).
                let in_ok = parse_udp(&f).map(|p| p.udp_ok);
                let (action, out) = run(prog, &f, veth0);
                match action {
                    XDP_PASS => {
                        assert_eq!(out, f, "frame {n} (seed {seed:#x}) passed changed");
                        pass += 1;
                    }
                    XDP_DROP => {
                        assert_eq!(out, f, "frame {n} (seed {seed:#x}) dropped changed");
                        drop += 1;
                    }
                    XDP_TX | XDP_REDIRECT => {
                        let p = parse_udp(&out)
                            .unwrap_or_else(|| panic!("frame {n} (seed {seed:#x}) unparsable"));
                        assert!(p.ip_ok, "frame {n} (seed {seed:#x}): IP checksum");
                        if p.udp_zero {
                            assert!(p.src.is_ipv4(), "frame {n} (seed {seed:#x}): IPv6 zero");
                        } else if in_ok == Some(true) {
                            assert!(p.udp_ok, "frame {n} (seed {seed:#x}): UDP checksum");
                        } else {
                            wrong += 1;
                            assert!(!p.udp_ok, "frame {n} (seed {seed:#x}): bad checksum fixed");
                        }
                        let rule = rules.iter().find(|r| r.1.dest == p.dst).unwrap();
                        assert_eq!(p.src, rule.1.source);
                        tx += 1;
                    }
                    other => panic!("frame {n} (seed {seed:#x}): action {other}"),
                }
            }
            eprintln!(
                "random frames: {tx} forwarded ({wrong} with the wrong checksum they came with), \
                 {pass} passed, {drop} dropped"
            );
            assert!(tx > 500 && pass > 500 && drop > 50);
        })
    });
}
