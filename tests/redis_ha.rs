//! The call store on a Redis that fails, against real servers: through Redis Sentinel (a
//! failover, ordered or after the master died, is followed while NG keeps answering), on a Redis
//! Cluster (records and index in the slot of the node's hash tag, reached from a seed that does not
//! hold it, read back by a restarted relay, and still written once the seed is gone), behind a
//! slow link with `--redis-cmd-timeout` (NG answered, media forwarded), and with Redis down at
//! start (writes begin when it comes up).
//!
//! A missing `redis-server`/`redis-sentinel`/`redis-cli` fails the test under `RTPRELAY_E2E=1` or
//! `CI=true`, and skips it otherwise.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::call::{relay_and_expect, wait_until, Call, LO};
use common::metrics::{counter, metrics};
use common::*;
use rtprelay::store::keys;

const WAIT: Duration = Duration::from_secs(5);

/// Goes on when every program is installed; otherwise fails under CI, or skips.
fn need(programs: &[&str]) -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    for p in programs {
        if find_program(p).is_none() {
            assert!(!ci, "CI=true but `{p}` is not installed");
            if !require_or_skip(p) {
                return false;
            }
        }
    }
    true
}

/// A `redis-server` (or `redis-sentinel`) child on a loopback port, without persistence;
/// stopped by PID on drop.
struct Server {
    proc: Proc,
    port: u16,
}

impl Server {
    /// `redis-server --port PORT` with `args`, once it answers PING.
    fn redis(port: u16, args: &[&str]) -> Server {
        let dir = scratch_dir("redis-ha");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .current_dir(&dir);
        Server::spawn("redis-server", cmd, &dir, port)
    }

    /// `redis-sentinel` watching the master `svc` at `master`, quick to act (1 s down-after).
    fn sentinel(port: u16, master: u16) -> Server {
        let dir = scratch_dir("redis-sentinel");
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\n\
                 sentinel monitor svc 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds svc 1000\n\
                 sentinel failover-timeout svc 5000\n",
                dir.display()
            ),
        )
        .expect("write sentinel.conf");
        let mut cmd = Command::new("redis-sentinel");
        cmd.arg(&conf).current_dir(&dir);
        Server::spawn("redis-sentinel", cmd, &dir, port)
    }

    fn spawn(name: &str, mut cmd: Command, dir: &std::path::Path, port: u16) -> Server {
        let proc = Proc::spawn(name, &mut cmd, &dir.join(format!("{name}.log")))
            .unwrap_or_else(|e| panic!("{e}"));
        let server = Server { proc, port };
        assert!(
            wait_until(WAIT, || server.connection().is_some()),
            "{name} on {port} did not come up: {}",
            server.proc.log_tail(20)
        );
        server
    }

    fn connection(&self) -> Option<redis::Connection> {
        connect(self.port)
    }
}

fn connect(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    redis::cmd("PING").query::<String>(&mut con).ok()?;
    Some(con)
}

/// The node name the relay uses in its keys: the host name.
fn node() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn exists(con: &mut impl redis::ConnectionLike, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<bool>(con)
        .unwrap_or(false)
}

fn role(port: u16) -> String {
    connect(port)
        .and_then(|mut c| redis::cmd("ROLE").query::<Vec<redis::Value>>(&mut c).ok())
        .and_then(|r| match r.first() {
            Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Offers new calls `prefix-N` until `cond` holds (each offer must be answered); whether it did.
fn offer_until(
    ng: &NgClient,
    ports: &PortBlock,
    prefix: &str,
    timeout: Duration,
    mut cond: impl FnMut(&str) -> bool,
) -> bool {
    let mut i = 0u32;
    wait_until(timeout, || {
        i += 1;
        let id = format!("{prefix}-{i}");
        let sdp = sdp_offer(LO, ports.port(4));
        expect_ok(ng.offer(&id, "tag-a", &sdp, &[]), "offer");
        std::thread::sleep(Duration::from_millis(100));
        cond(&id)
    })
}

/// How the master goes away in [`sentinel_failover`].
#[derive(PartialEq)]
enum Failover {
    /// `SENTINEL FAILOVER`: the old master lives on, and takes writes until the Sentinel next
    /// looks at it.
    Ordered,
    /// The master is killed: the Sentinel notices (1 s) and promotes the replica.
    MasterKilled,
}

/// A master, its replica and a Sentinel; the relay writes through the Sentinel; the master goes
/// away as `how` says; new calls must land on the promoted replica while every offer and ping is
/// answered.
fn sentinel_failover(how: Failover) {
    if !need(&["redis-server", "redis-sentinel"]) {
        return;
    }
    let ports = PortBlock::acquire();
    let (m_port, r_port, s_port) = (ports.port(10), ports.port(11), ports.port(12));
    let mut master = Server::redis(m_port, &[]);
    let replica = Server::redis(r_port, &["--replicaof", "127.0.0.1", &m_port.to_string()]);
    let sentinel = Server::sentinel(s_port, m_port);
    // Listed first, a Sentinel that never answers (the kernel accepts, nobody reads): asking it
    // costs one command timeout, then the next is asked.
    let silent = TcpListener::bind((LO, ports.port(13))).expect("bind the silent Sentinel");
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &[
            // The address is not used with Sentinel: the Sentinels name the master.
            &format!("--redis=127.0.0.1:{m_port}/0"),
            &format!(
                "--redis-sentinel=127.0.0.1:{};127.0.0.1:{s_port}",
                ports.port(13)
            ),
            "--redis-sentinel-service=svc",
            "--redis-connect-timeout=300",
            "--redis-cmd-timeout=500",
        ],
    );
    let ng = relay.client();
    let n = node();

    // Written to the master the Sentinel names.
    let c = Call::setup(&ng, &ports, &[]);
    let mut on_master = master.connection().expect("master connection");
    assert!(
        wait_until(WAIT, || exists(&mut on_master, &keys::call(&n, &c.id))),
        "the call is not on the master; relay log: {}",
        relay.log_tail(30)
    );

    // The replica is in sync and the Sentinel knows it.
    let mut s_con = sentinel.connection().expect("sentinel connection");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let replicas: Vec<Vec<String>> = redis::cmd("SENTINEL")
                .arg("REPLICAS")
                .arg("svc")
                .query(&mut s_con)
                .unwrap_or_default();
            let mut on_replica = replica.connection();
            !replicas.is_empty()
                && on_replica
                    .as_mut()
                    .is_some_and(|r| exists(r, &keys::call(&n, &c.id)))
        }),
        "the replica did not sync or the Sentinel does not know it: {}",
        sentinel.proc.log_tail(20)
    );
    match how {
        Failover::Ordered => {
            let _: () = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg("svc")
                .query(&mut s_con)
                .expect("SENTINEL FAILOVER");
        }
        Failover::MasterKilled => {
            master.proc.signal("KILL");
            assert!(
                master.proc.wait_timeout(WAIT).is_some(),
                "the master stopped"
            );
        }
    }
    assert!(
        wait_until(Duration::from_secs(10), || role(r_port) == "master"),
        "the replica was not promoted: {}",
        sentinel.proc.log_tail(20)
    );

    // New calls land on the new master; every offer and ping meanwhile is answered.
    let mut on_new = replica.connection().expect("new master connection");
    let mut last = String::new();
    assert!(
        offer_until(
            &ng,
            &ports,
            "after-failover",
            Duration::from_secs(10),
            |id| {
                assert!(ng.ping().is_ok(), "ping during the failover");
                last = id.to_string();
                exists(&mut on_new, &keys::call(&n, id))
            }
        ),
        "writes did not follow the failover to {r_port} (last call {last}); relay log: {}",
        relay.log_tail(30)
    );
    // The old master is still a master until the Sentinel next looks at it (up to 10 s): the
    // relay left it because the Sentinel names another, not because it refused writes.
    if how == Failover::Ordered && role(m_port) == "master" {
        let id = format!("{last}-next");
        let sdp = sdp_offer(LO, ports.port(4));
        expect_ok(ng.offer(&id, "tag-a", &sdp, &[]), "offer");
        assert!(wait_until(WAIT, || exists(
            &mut on_new,
            &keys::call(&n, &id)
        )));
        assert!(
            !exists(&mut on_master, &keys::call(&n, &id)),
            "a write went to the old master after the failover"
        );
    }
    // The first call's record survived the failover on the new master.
    assert!(exists(&mut on_new, &keys::call(&n, &c.id)));
    drop(silent);
}

#[test]
fn writes_follow_a_sentinel_failover_and_ng_keeps_answering() {
    sentinel_failover(Failover::Ordered);
}

#[test]
fn writes_follow_the_sentinel_when_the_master_dies() {
    sentinel_failover(Failover::MasterKilled);
}

/// The slot `key` hashes to, and the port of the node that serves it, from `CLUSTER SLOTS`.
fn slot_owner(con: &mut redis::Connection, key: &str) -> (u16, u16) {
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(con)
        .expect("CLUSTER KEYSLOT");
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(con)
        .expect("CLUSTER SLOTS");
    for r in ranges {
        let redis::Value::Array(r) = r else { continue };
        let (Some(redis::Value::Int(lo)), Some(redis::Value::Int(hi))) = (r.first(), r.get(1))
        else {
            continue;
        };
        if (*lo..=*hi).contains(&i64::from(slot)) {
            if let Some(redis::Value::Array(node)) = r.get(2) {
                if let Some(redis::Value::Int(port)) = node.get(1) {
                    return (slot, *port as u16);
                }
            }
        }
    }
    panic!("no node serves slot {slot}");
}

#[test]
fn calls_are_stored_on_a_redis_cluster() {
    if !need(&["redis-server", "redis-cli"]) {
        return;
    }
    let ports = PortBlock::acquire();
    let nodes: Vec<Server> = (0..3)
        .map(|i| {
            let port = ports.port(9 + 2 * i);
            Server::redis(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &ports.port(10 + 2 * i).to_string(),
                    "--cluster-node-timeout",
                    "2000",
                    // The slots of a lost node stop; the others go on.
                    "--cluster-require-full-coverage",
                    "no",
                ],
            )
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli --cluster create");
    assert!(
        out.status.success(),
        "cluster create: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(10), || nodes.iter().all(|s| {
            s.connection()
                .and_then(|mut c| {
                    redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query::<String>(&mut c)
                        .ok()
                })
                .is_some_and(|i| i.contains("cluster_state:ok"))
        })),
        "the cluster did not become ok"
    );

    // The relay is given a node that does not hold its slot: it must follow the cluster.
    let n = node();
    let index = keys::index(&n);
    let mut any = nodes[0].connection().expect("node connection");
    let (slot, owner) = slot_owner(&mut any, &index);
    let seed = nodes
        .iter()
        .map(|s| s.port)
        .find(|&p| p != owner)
        .expect("a node without the slot");
    let redis_arg = format!("--redis=127.0.0.1:{seed}/0");
    let args = [
        redis_arg.as_str(),
        "--redis-cluster",
        "--redis-cmd-timeout=1000",
    ];
    let mut relay = Relay::start(RelayKind::Rtprelay, &ports, &args);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let key = keys::call(&n, &c.id);

    let mut on_owner = connect(owner).expect("slot owner connection");
    assert!(
        wait_until(WAIT, || exists(&mut on_owner, &key)),
        "no record at {key} on {owner} (slot {slot}); relay log: {}",
        relay.log_tail(30)
    );
    let indexed: bool = redis::cmd("SISMEMBER")
        .arg(&index)
        .arg(&key)
        .query(&mut on_owner)
        .expect("SISMEMBER");
    assert!(indexed, "the call is in the node's index");
    // Read back through a cluster client as well, from the other seed.
    let cluster = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{seed}/")])
        .expect("cluster client");
    let mut cc = cluster.get_connection().expect("cluster connection");
    let rec: Option<String> = redis::cmd("HGET")
        .arg(&key)
        .arg("rec")
        .query(&mut cc)
        .expect("HGET");
    let rec = rtprelay::store::CallRecord::decode(&rec.expect("a record")).expect("decodes");
    assert_eq!(rec.call_id, c.id);

    // A relay killed and started again reads its calls back through the cluster.
    relay.signal("KILL");
    assert!(relay.wait_timeout(WAIT).is_some(), "the relay stopped");
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &args);
    let ng = relay.client();
    expect_ok(ng.query(&c.id), "query of the restored call");

    expect_ok(ng.delete(&c.id, &c.a.tag), "delete");
    assert!(
        wait_until(WAIT, || !exists(&mut on_owner, &key)),
        "the record outlived the delete"
    );
    assert!(exists(&mut on_owner, &keys::tombstone(&n, &c.id)));

    // The seed goes away, and the writer must reconnect (the script is flushed: NOSCRIPT): it
    // reaches the cluster through the nodes it learnt from the seed.
    let mut nodes = nodes;
    let at = nodes.iter().position(|s| s.port == seed).expect("the seed");
    let mut gone = nodes.remove(at);
    gone.proc.signal("KILL");
    assert!(gone.proc.wait_timeout(WAIT).is_some(), "the seed stopped");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut on_owner)
        .expect("SCRIPT FLUSH");
    assert!(
        offer_until(&ng, &ports, "seed-gone", Duration::from_secs(8), |id| {
            exists(&mut on_owner, &keys::call(&n, id))
        }),
        "writes stopped with the seed node; relay log: {}",
        relay.log_tail(30)
    );
}

/// A TCP proxy to `upstream` that holds every reply `delay` before passing it on.
struct SlowProxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    fn start(listen: u16, upstream: u16, delay: Duration) -> SlowProxy {
        let listener = TcpListener::bind((LO, listen)).expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let Ok(server) = TcpStream::connect((LO, upstream)) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let (Ok(mut c_in), Ok(mut s_out)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        std::thread::sleep(delay);
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(Shutdown::Both);
                });
            }
        });
        SlowProxy { port: listen, stop }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Redis answers, 300 ms late, beyond `--redis-cmd-timeout=100`: every write times out (and is
/// counted), while calls are set up and their media forwarded as usual.
#[test]
fn a_slow_redis_times_out_while_ng_and_media_go_on() {
    if !need(&["redis-server"]) {
        return;
    }
    let ports = PortBlock::acquire();
    let redis = Server::redis(ports.port(10), &[]);
    let proxy = SlowProxy::start(ports.port(11), redis.port, Duration::from_millis(300));
    let web = SocketAddr::from((LO, ports.port(16)));
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &[
            "--listen-http",
            &web.to_string(),
            &format!("--redis=127.0.0.1:{}/0", proxy.port),
            "--redis-cmd-timeout=100",
            "--redis-connect-timeout=500",
        ],
    );
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    for round in 0..5u16 {
        let a: Vec<Vec<u8>> = (0..5)
            .map(|i| RtpPacket::pcmu(0xa1, round * 5 + i).to_bytes())
            .collect();
        relay_and_expect(&c.a.rtp, c.a_to, &a, &c.b.rtp, c.b_to, WAIT, "A->B");
        let b: Vec<Vec<u8>> = (0..5)
            .map(|i| RtpPacket::pcmu(0xb1, round * 5 + i).to_bytes())
            .collect();
        relay_and_expect(&c.b.rtp, c.b_to, &b, &c.a.rtp, c.a_to, WAIT, "B->A");
        // More NG traffic (each a store write) while the writer waits on Redis.
        let sdp = sdp_offer(LO, ports.port(4));
        expect_ok(
            ng.offer(&format!("slow-{round}"), "tag-a", &sdp, &[]),
            "offer",
        );
        assert!(ng.ping().is_ok(), "ping");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut text = String::new();
    assert!(
        wait_until(WAIT, || {
            text = metrics(web);
            counter(&text, "rtprelay_redis_errors_total") >= 2
        }),
        "the command timeout did not fire: {text}"
    );
    assert_eq!(counter(&text, "rtprelay_redis_writes_total"), 0, "{text}");
    let mut con = redis.connection().expect("redis connection");
    assert!(
        !exists(&mut con, &keys::call(&node(), &c.id)),
        "a write waited past the command timeout"
    );
}

/// Nothing listens at the Redis address when the relay starts: it starts, answers NG, and its
/// calls reach Redis once Redis is up.
#[test]
fn writes_begin_when_redis_comes_up_after_the_relay() {
    if !need(&["redis-server"]) {
        return;
    }
    let ports = PortBlock::acquire();
    let port = ports.port(10);
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &[
            &format!("--redis=127.0.0.1:{port}/0"),
            "--redis-connect-timeout=200",
        ],
    );
    let ng = relay.client();
    let early = Call::setup(&ng, &ports, &[]);
    assert!(ng.ping().is_ok(), "the relay answers without Redis");

    let redis = Server::redis(port, &[]);
    let mut con = redis.connection().expect("redis connection");
    let n = node();
    assert!(
        offer_until(&ng, &ports, "late-redis", WAIT, |id| exists(
            &mut con,
            &keys::call(&n, id)
        )),
        "writes did not begin once Redis was up; relay log: {}",
        relay.log_tail(30)
    );
    // A call from before Redis came up is written by its next change.
    expect_ok(ng.delete(&early.id, &early.a.tag), "delete");
    assert!(
        wait_until(WAIT, || exists(&mut con, &keys::tombstone(&n, &early.id))),
        "the early call's delete did not reach Redis"
    );
}
