//! Restore on restart, against a real `redis-server`: 100 calls stream RTP both ways through the
//! relay; the relay is killed (`SIGKILL`, no chance to save anything) and started again; every
//! call's media flows again on the same ports, `query` still knows the calls and their tags,
//! and after the calls are deleted nothing of them is left in Redis. The media gap per stream is
//! printed (`--nocapture`); it is a figure, not asserted.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::call::wait_until;
use common::redis_server::{node, RedisServer};
use common::rtp_streams::Streams;
use common::*;
use rtprelay::store::keys;

const CALLS: usize = 100;
/// The relay's media address: a loopback address of its own, so that its port range may span
/// the test port blocks of 127.0.0.1 without meeting them.
const RELAY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 61);
/// Where the calls' parties live.
const PARTY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 62);

fn relay_args(ports: &PortBlock, redis: &RedisServer) -> Vec<String> {
    [
        "--config-file=none",
        "--table=-1",
        "-f",
        "-E",
        "-L",
        "6",
        "--delete-delay=0",
        "-i",
        &RELAY_IP.to_string(),
        "-n",
        &ports.ng_addr().to_string(),
        "-m",
        "20000",
        "-M",
        "29999",
        &format!("--redis={}", redis.url()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(ports: &PortBlock, redis: &RedisServer) -> Relay {
    let program = RelayKind::Rtprelay.program();
    Relay::spawn(
        "rtprelay",
        &program,
        &relay_args(ports, redis),
        ports.ng_addr(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

struct Party {
    sock: UdpSocket,
    tag: &'static str,
}

fn party(tag: &'static str) -> Party {
    let sock = UdpSocket::bind((PARTY_IP, 0)).expect("bind a party");
    sock.set_nonblocking(true).expect("nonblocking");
    Party { sock, tag }
}

#[test]
fn calls_survive_a_kill_and_restart_of_the_relay() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut con = redis.connection().expect("redis connection");
    let ports = PortBlock::acquire();
    let mut relay = start(&ports, &redis);
    let ng = relay.client();

    // 100 answered calls; stream i*2 is A -> B, i*2+1 is B -> A.
    let media = Streams::default();
    let mut ids = Vec::new();
    for i in 0..CALLS {
        let (a, b) = (party("tag-a"), party("tag-b"));
        let a_port = a.sock.local_addr().expect("addr").port();
        let b_port = b.sock.local_addr().expect("addr").port();
        let id = format!("restore-{i}-{}", std::process::id());
        let o = expect_ok(
            ng.offer(&id, a.tag, &sdp_offer(PARTY_IP, a_port), &[]),
            "offer",
        );
        let b_to = sdp_media_endpoint(get_str(&o, "sdp").expect("sdp")).expect("endpoint");
        let r = expect_ok(
            ng.answer(&id, a.tag, b.tag, &sdp_answer(PARTY_IP, b_port), &[]),
            "answer",
        );
        let a_to = sdp_media_endpoint(get_str(&r, "sdp").expect("sdp")).expect("endpoint");
        let (a_rx, b_rx) = (
            a.sock.try_clone().expect("clone"),
            b.sock.try_clone().expect("clone"),
        );
        media.add(a.sock, a_to, b_rx);
        media.add(b.sock, b_to, a_rx);
        ids.push(id);
    }
    let (stop, sender) = media.start();
    let all_flow =
        |min: usize, after: Instant| (0..2 * CALLS).all(|i| media.count_after(i, after) >= min);
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || all_flow(10, t0)),
        "media did not flow on every stream before the restart"
    );
    let node = node();
    assert!(
        wait_until(Duration::from_secs(10), || {
            redis::cmd("SCARD")
                .arg(keys::index(&node))
                .query::<usize>(&mut con)
                .unwrap_or(0)
                == CALLS
        }),
        "not every call reached Redis; relay log: {}",
        relay.log_tail(20)
    );

    let killed = Instant::now();
    relay.signal("KILL");
    relay
        .wait_timeout(Duration::from_secs(5))
        .expect("the relay died");
    let mut relay = start(&ports, &redis);
    let up = killed.elapsed();
    assert!(
        wait_until(Duration::from_secs(10), || all_flow(25, killed)),
        "media did not come back on every stream; relay log: {}",
        relay.log_tail(30)
    );
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("media thread");

    // The gap per stream: the longest time without a packet around the restart.
    let mut gaps: Vec<u128> = media
        .streams
        .lock()
        .expect("streams")
        .iter()
        .map(|s| {
            let around: Vec<&Instant> = s
                .arrivals
                .iter()
                .filter(|t| **t + Duration::from_secs(1) > killed)
                .collect();
            around
                .windows(2)
                .map(|w| w[1].duration_since(*w[0]).as_millis())
                .max()
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(gaps.len(), 2 * CALLS);
    gaps.sort_unstable();
    let log = relay.log_text();
    let restored = log
        .lines()
        .find(|l| l.contains("calls restored from Redis"))
        .unwrap_or("(no restore line)");
    println!(
        "restart: kill to ping {} ms; media gap per stream: median {} ms, p90 {} ms, max {} ms; {restored}",
        up.as_millis(),
        gaps[gaps.len() / 2],
        gaps[gaps.len() * 9 / 10],
        gaps[gaps.len() - 1]
    );
    assert!(
        restored.contains(&format!("restored={CALLS}")),
        "{restored}"
    );

    // The calls and their tags are known again, and count on.
    let ng = relay.client();
    let q = Value::Dict(expect_ok(ng.query(&ids[0]), "query after the restart"));
    for tag in ["tag-a", "tag-b"] {
        assert!(q.path(&["tags", tag]).is_some(), "tag {tag} lost: {q:?}");
    }
    assert!(common::call::total(&q, "RTP", "packets") > 0, "{q:?}");

    // Deleting the calls leaves nothing of them in Redis (their tombstones expire).
    for id in &ids {
        expect_ok(ng.delete(id, "tag-a"), "delete");
    }
    let pattern = format!("{{rtprelay:{node}}}:call:*");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let left: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut con)
                .unwrap_or_default();
            let indexed: usize = redis::cmd("SCARD")
                .arg(keys::index(&node))
                .query(&mut con)
                .unwrap_or(1);
            left.is_empty() && indexed == 0
        }),
        "call records left in Redis after the deletes"
    );
    relay.stop(Duration::from_secs(5));
}
