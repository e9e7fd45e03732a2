//! Hot standby and takeover, in network namespaces: an active relay and a standby
//! (`--redis-follow`) share a Redis; calls stream RTP through the active relay on a virtual IP.
//! Meanwhile the standby is cut off from Redis for a while (calls are made and deleted), and
//! Redis itself is restarted (empty). Then the active relay is killed and the virtual IP moves
//! to the standby's namespace, as keepalived would move it: the standby sees the address
//! appear, takes the calls over, and every live call's media flows again both ways; the deleted
//! calls stay gone. The takeover time is printed (`--nocapture`).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::call::wait_until;
use common::ctl::ctl;
use common::netns::{in_ns, Role, Topology};
use common::rtp_streams::Streams;
use common::*;

const NG: u16 = 2223;
struct Net {
    topo: Topology,
    vip: Ipv4Addr,
    redis_ip: Ipv4Addr,
}

impl Net {
    fn run(&self, role: Role, args: &[&str]) {
        let out = self
            .topo
            .run_in(&self.topo.ns(role), args[0], &args[1..])
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    fn relay(&self, role: Role, node: &str, extra: &[&str]) -> Proc {
        let mut args: Vec<String> = [
            "--config-file=none",
            "-i",
            &self.vip.to_string(),
            "-f",
            "-E",
            "-L",
            "6",
            "--delete-delay=0",
            "-n",
            &format!("127.0.0.1:{NG}"),
            "-m",
            "30000",
            "-M",
            "30999",
            &format!("--redis={}:6379/0", self.redis_ip),
            &format!("--redis-node={node}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let program = PathBuf::from(env!("CARGO_BIN_EXE_rtprelay"));
        let proc = self
            .topo
            .spawn_in(&self.topo.ns(role), node, &program, &args);
        let ng = self.ng(role);
        assert!(
            wait_until(Duration::from_secs(10), || ng.ping().is_ok()),
            "{node} did not come up: {}",
            proc.log_tail(30)
        );
        proc
    }

    fn ng(&self, role: Role) -> NgClient {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, NG));
        in_ns(&self.topo.ns(role), move || NgClient::new(addr))
            .and_then(|r| r)
            .expect("NG client")
    }

    fn redis(&self) -> Proc {
        let dir = scratch_dir("redis-standby");
        let args: Vec<String> = [
            "--port",
            "6379",
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let proc = self.topo.spawn_in(
            &self.topo.ns(Role::Caller),
            "redis-server",
            &PathBuf::from("/usr/bin/redis-server"),
            &args,
        );
        assert!(
            wait_until(Duration::from_secs(5), || {
                self.topo
                    .run_in(&self.topo.ns(Role::Caller), "redis-cli", &["ping"])
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
            }),
            "redis-server did not come up"
        );
        proc
    }

    fn redis_cli(&self, args: &[&str]) -> String {
        let out = self
            .topo
            .run_in(&self.topo.ns(Role::Caller), "redis-cli", args)
            .unwrap_or_else(|e| panic!("redis-cli {args:?}: {e}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// One call's parties and streams.
struct Placed {
    id: String,
    streams: [usize; 2],
}

#[test]
fn the_standby_takes_every_live_call_when_the_address_moves() {
    if !require_or_skip("redis-server") {
        return;
    }
    let Some(topo) = Topology::new() else {
        return;
    };
    let relay_ip = topo.v4(Role::Relay).octets();
    let net = Net {
        vip: Ipv4Addr::new(relay_ip[0], relay_ip[1], relay_ip[2], 100),
        redis_ip: topo.v4(Role::Caller),
        topo,
    };
    let vip = format!("{}/24", net.vip);
    net.run(Role::Relay, &["ip", "addr", "add", &vip, "dev", "veth0"]);
    let mut redis = net.redis();
    let mut active = net.relay(Role::Relay, "active", &[]);
    let mut standby = net.relay(Role::Injector, "standby", &["--redis-follow=active"]);
    let ng = net.ng(Role::Relay);

    let media = Streams::default();
    let mut next_port = 40000u16;
    let mut place = |n: usize, tag: &str| -> Vec<Placed> {
        let mut out = Vec::new();
        for i in 0..n {
            let (pa, pb) = (next_port, next_port + 2);
            next_port += 4;
            let caller = net.topo.udp_socket(
                &net.topo.ns(Role::Caller),
                SocketAddr::new(IpAddr::V4(net.topo.v4(Role::Caller)), pa),
            );
            let callee = net.topo.udp_socket(
                &net.topo.ns(Role::Callee),
                SocketAddr::new(IpAddr::V4(net.topo.v4(Role::Callee)), pb),
            );
            caller.set_nonblocking(true).expect("nonblocking");
            callee.set_nonblocking(true).expect("nonblocking");
            let id = format!("standby-{tag}-{i}");
            let o = expect_ok(
                ng.offer(&id, "tag-a", &sdp_offer(net.topo.v4(Role::Caller), pa), &[]),
                "offer",
            );
            let b_to = sdp_media_endpoint(get_str(&o, "sdp").expect("sdp")).expect("endpoint");
            let r = expect_ok(
                ng.answer(
                    &id,
                    "tag-a",
                    "tag-b",
                    &sdp_answer(net.topo.v4(Role::Callee), pb),
                    &[],
                ),
                "answer",
            );
            let a_to = sdp_media_endpoint(get_str(&r, "sdp").expect("sdp")).expect("endpoint");
            let (callee_rx, caller_rx) = (
                callee.try_clone().expect("clone"),
                caller.try_clone().expect("clone"),
            );
            let n = media.add(caller, a_to, callee_rx);
            media.add(callee, b_to, caller_rx);
            out.push(Placed {
                id,
                streams: [n, n + 1],
            });
        }
        out
    };

    let first = place(10, "first");
    let (stop, sender) = media.start();
    let count_after = |i: usize, t: Instant| media.count_after(i, t);
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || first
            .iter()
            .flat_map(|p| p.streams)
            .all(|i| count_after(i, t0) >= 5)),
        "media does not flow through the active relay: {}",
        active.log_tail(20)
    );

    // The standby is cut off from Redis: calls come and go meanwhile.
    let redis_host = format!("{}/32", net.redis_ip);
    net.run(
        Role::Injector,
        &["ip", "route", "add", "blackhole", &redis_host],
    );
    let second = place(3, "second");
    for gone in &first[..2] {
        expect_ok(ng.delete(&gone.id, "tag-a"), "delete");
    }
    // Longer than the follower's read timeout: its connection is given up and made again.
    std::thread::sleep(Duration::from_millis(4000));
    net.run(
        Role::Injector,
        &["ip", "route", "del", "blackhole", &redis_host],
    );
    std::thread::sleep(Duration::from_millis(1500));

    // Redis restarts, empty; the active relay writes on, the standby reconnects.
    redis.stop(Duration::from_secs(3));
    redis = net.redis();
    let third = place(2, "third");
    let index = "{rtprelay:active}:calls";
    assert!(
        wait_until(Duration::from_secs(10), || {
            net.redis_cli(&["SCARD", index])
                .parse::<usize>()
                .unwrap_or(0)
                >= 2
        }),
        "the new calls did not reach the restarted Redis: {}",
        net.redis_cli(&["SCARD", index])
    );
    std::thread::sleep(Duration::from_millis(1500));

    // The active relay dies; the address moves to the standby.
    active.signal("KILL");
    active
        .wait_timeout(Duration::from_secs(5))
        .expect("the active relay died");
    let moved = Instant::now();
    net.run(Role::Relay, &["ip", "addr", "del", &vip, "dev", "veth0"]);
    net.run(Role::Injector, &["ip", "addr", "add", &vip, "dev", "veth0"]);
    let appeared = Instant::now();
    for role in [Role::Caller, Role::Callee] {
        net.run(role, &["ip", "neigh", "flush", "all"]);
    }
    let live: Vec<&Placed> = first[2..].iter().chain(&second).chain(&third).collect();
    let back = wait_until(Duration::from_secs(10), || {
        live.iter()
            .flat_map(|p| p.streams)
            .all(|i| count_after(i, moved) >= 10)
    });
    let took = moved.elapsed();
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("media thread");
    let log = standby.log_text();
    let missing: Vec<(String, usize)> = live
        .iter()
        .flat_map(|p| p.streams.iter().map(move |&i| (p.id.clone(), i)))
        .filter(|(_, i)| count_after(*i, moved) < 10)
        .map(|(id, i)| (id, count_after(i, moved)))
        .collect();
    assert!(
        back,
        "media did not come back on every live call after the takeover: {missing:?}; standby log: {}",
        standby.log_tail(40)
    );
    // The deleted calls were not taken over.
    let sng = net.ng(Role::Injector);
    for gone in &first[..2] {
        let r = sng.query(&gone.id).expect("query");
        assert_eq!(
            get_str(&r, "result"),
            Some("error"),
            "{} came back: {r:?}",
            gone.id
        );
        let i = gone.streams[0];
        assert_eq!(
            count_after(i, moved + Duration::from_millis(500)),
            0,
            "{} relayed",
            gone.id
        );
    }
    for p in &live {
        let r = sng.query(&p.id).expect("query");
        assert_eq!(
            get_str(&r, "result"),
            Some("ok"),
            "{} not on the standby: {r:?}",
            p.id
        );
    }
    let line = log
        .lines()
        .find(|l| l.contains("takeover done"))
        .unwrap_or("(no takeover line)");
    let first_back = live
        .iter()
        .flat_map(|p| p.streams)
        .filter_map(|i| {
            let s = media.streams.lock().expect("streams");
            s[i].arrivals
                .iter()
                .find(|a| **a > moved)
                .map(|a| a.saturating_duration_since(appeared))
        })
        .max()
        .unwrap_or_default();
    println!(
        "takeover: {} streams; the last one's first packet {} ms after the address appeared on the standby (10 packets on each within {} ms of the move); {line}",
        2 * live.len(),
        first_back.as_millis(),
        took.as_millis()
    );
    standby.stop(Duration::from_secs(3));
    drop(redis);
}

/// On loopback: an active relay and a standby on the same address; the active relay dies and
/// the operator runs `rtprelay-ctl takeover` on the standby, whose calls then flow. A relay that
/// follows nothing answers that it has nothing to take over.
#[test]
fn the_cli_takeover_moves_the_calls_to_the_standby() {
    use common::call::{Call, LO};
    use common::redis_server::RedisServer;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ports = PortBlock::acquire();
    let cli = SocketAddr::from((LO, ports.port(16)));
    let redis_arg = format!("--redis={}", redis.url());
    let mut active = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &[
            &redis_arg,
            "--redis-node=cli-active",
            "--listen-cli",
            &cli.to_string(),
        ],
    );
    let c = Call::setup(&active.client(), &ports, &[]);
    assert_eq!(
        ctl(cli, "takeover"),
        "Not a standby (no --redis-follow): nothing to take over.\n"
    );
    // The standby's NG on another spare port (the block's NG port is the active relay's).
    let ng_b = SocketAddr::from((LO, ports.port(17)));
    let mut args = relay_args(&ports, &[]);
    let at = args.iter().position(|a| a == "-n").expect("-n") + 1;
    args[at] = ng_b.to_string();
    let cli_b = SocketAddr::from((LO, ports.port(15)));
    args.extend(
        [
            redis_arg.as_str(),
            "--redis-node=cli-standby",
            "--redis-follow=cli-active",
            "--listen-cli",
            &cli_b.to_string(),
        ]
        .map(String::from),
    );
    let program = RelayKind::Rtprelay.program();
    let mut standby =
        Relay::spawn("standby", &program, &args, ng_b).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(1500));
    active.signal("KILL");
    active
        .wait_timeout(Duration::from_secs(5))
        .expect("the active relay died");
    assert_eq!(ctl(cli_b, "takeover"), "Takeover requested.\n");
    let pkt = RtpPacket::pcmu(7, 1).to_bytes();
    let got = wait_until(Duration::from_secs(5), || {
        let _ = c.a.rtp.send_to(&pkt, c.a_to);
        c.b.rtp.recv_timeout(Duration::from_millis(50)).is_some()
    });
    assert!(
        got,
        "no media through the standby: {}",
        standby.log_tail(30)
    );
    standby.stop(Duration::from_secs(3));
}
