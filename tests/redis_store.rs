//! The call store against a real `redis-server`: a call's record appears with its generation and
//! in the node's index, a delete removes it and leaves a tombstone that refuses a late stale write,
//! and NG keeps answering at once when Redis is gone (the failures are counted).

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::call::{wait_until, Call, LO};
use common::metrics::{counter, metrics};
use common::redis_server::{node, RedisServer};
use common::*;
use rtprelay::store::{keys, script};

const WAIT: Duration = Duration::from_secs(5);

/// Runs the store's script as the writer does; 1 applied, 0 refused.
fn apply(con: &mut redis::Connection, op: &[&str; 5], call_id: &str) -> i64 {
    let n = node();
    redis::cmd("EVAL")
        .arg(script::SOURCE)
        .arg(4)
        .arg(keys::call(&n, call_id))
        .arg(keys::tombstone(&n, call_id))
        .arg(keys::index(&n))
        .arg(keys::changes(&n))
        .arg(&op[..])
        .arg(call_id)
        .arg(100)
        .query(con)
        .expect("EVAL")
}

#[test]
fn a_call_is_stored_with_its_generation_and_a_delete_cannot_be_undone() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut con = redis.connection().expect("redis connection");
    let ports = PortBlock::acquire();
    let web = SocketAddr::from((LO, ports.port(15)));
    let redis_arg = format!("--redis={}", redis.url());
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &["--listen-http", &web.to_string(), &redis_arg],
    );
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let n = node();
    let key = keys::call(&n, &c.id);

    // The answer's record (two tagged legs) arrives shortly after the reply.
    let mut record = String::new();
    assert!(
        wait_until(WAIT, || {
            record = redis::cmd("HGET")
                .arg(&key)
                .arg("rec")
                .query::<Option<String>>(&mut con)
                .ok()
                .flatten()
                .unwrap_or_default();
            record.contains(&format!("\"{}\"", c.b.tag))
        }),
        "no record with both legs at {key}: {record:?}; relay log: {}",
        relay.log_tail(30)
    );
    let rec = rtprelay::store::CallRecord::decode(&record).expect("a record");
    assert_eq!(rec.call_id, c.id);
    assert_eq!(rec.owner, n);
    assert_eq!(rec.legs.len(), 2);
    let generation: u64 = redis::cmd("HGET")
        .arg(&key)
        .arg("gen")
        .query(&mut con)
        .expect("gen");
    assert_eq!(generation, rec.generation);
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut con).expect("TTL");
    assert!(ttl > 0 && ttl <= 86400, "TTL {ttl}");
    let indexed: bool = redis::cmd("SISMEMBER")
        .arg(keys::index(&n))
        .arg(&key)
        .query(&mut con)
        .expect("SISMEMBER");
    assert!(indexed, "the call is in the node's index");

    // A stale write (an older generation) does not replace the record.
    assert_eq!(
        apply(
            &mut con,
            &["w", &(generation - 1).to_string(), "stale", "60", "60"],
            &c.id
        ),
        0
    );

    expect_ok(ng.delete(&c.id, &c.a.tag), "delete");
    assert!(
        wait_until(WAIT, || {
            !redis::cmd("EXISTS")
                .arg(&key)
                .query::<bool>(&mut con)
                .unwrap_or(true)
        }),
        "the record outlived the delete"
    );
    let indexed: bool = redis::cmd("SISMEMBER")
        .arg(keys::index(&n))
        .arg(&key)
        .query(&mut con)
        .expect("SISMEMBER");
    assert!(!indexed, "the deleted call left the index");
    let tomb = keys::tombstone(&n, &c.id);
    let tomb_ttl: i64 = redis::cmd("TTL").arg(&tomb).query(&mut con).expect("TTL");
    assert!(
        tomb_ttl > 0 && tomb_ttl <= 300,
        "the delete left a tombstone with a short TTL ({tomb_ttl})"
    );

    // A late write of the call from before the delete is refused: nothing comes back.
    assert_eq!(
        apply(
            &mut con,
            &["w", &generation.to_string(), "late", "60", "60"],
            &c.id
        ),
        0
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query(&mut con)
        .expect("EXISTS");
    assert!(!exists, "a late write resurrected a deleted call");

    let text = metrics(web);
    assert!(counter(&text, "rtprelay_redis_writes_total") >= 2, "{text}");
    assert_eq!(counter(&text, "rtprelay_redis_errors_total"), 0, "{text}");
}

#[test]
fn ng_answers_with_redis_gone_and_writes_resume() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let ports = PortBlock::acquire();
    let web = SocketAddr::from((LO, ports.port(15)));
    let redis_arg = format!("--redis={}", redis.url());
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &[
            "--listen-http",
            &web.to_string(),
            &redis_arg,
            "--redis-allowed-errors=2",
            "--redis-disable-time=1",
            "--redis-connect-timeout=200",
            "--redis-cmd-timeout=200",
        ],
    );
    redis.proc.signal("KILL");
    assert!(
        redis.proc.wait_timeout(WAIT).is_some(),
        "redis-server stopped"
    );

    let ng = relay.client();
    for i in 0..5u16 {
        let sdp = sdp_offer(LO, ports.port(2 * i));
        let reply = expect_ok(
            ng.offer(&format!("down-{i}"), "tag-a", &sdp, &[]),
            "offer with Redis down",
        );
        assert_eq!(get_str(&reply, "result"), Some("ok"));
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut text = String::new();
    assert!(
        wait_until(WAIT, || {
            text = metrics(web);
            counter(&text, "rtprelay_redis_errors_total") >= 1
                && counter(&text, "rtprelay_redis_dropped_total") >= 1
        }),
        "Redis failures are counted: {text}"
    );
    assert!(ng.ping().is_ok(), "the relay still answers");

    // Redis back on the same port: after the pause, writes resume.
    let port = redis.port;
    drop(redis);
    let redis = RedisServer::on(port);
    let mut con = redis.connection().expect("redis connection");
    let key = keys::call(&node(), "after-restart");
    assert!(
        wait_until(WAIT, || {
            let sdp = sdp_offer(LO, ports.port(12));
            expect_ok(ng.offer("after-restart", "tag-a", &sdp, &[]), "offer");
            redis::cmd("EXISTS")
                .arg(&key)
                .query::<bool>(&mut con)
                .unwrap_or(false)
        }),
        "writes did not resume after Redis came back; relay log: {}",
        relay.log_tail(30)
    );
}

/// A Redis that accepts the connection and never answers, with no command timeout: a write made
/// on the NG path would hold the reply for ever, and the NG client (3 tries of 1 s) would give up.
/// Off the path, every offer and the ping are answered while the writer waits.
#[test]
fn ng_does_not_wait_for_a_redis_that_never_answers() {
    // Never accepted: the kernel completes the handshake, nothing ever reads or answers.
    let silent = TcpListener::bind((LO, 0)).expect("bind the silent Redis");
    let port = silent.local_addr().expect("silent address").port();
    let ports = PortBlock::acquire();
    let redis_arg = format!("--redis=127.0.0.1:{port}/0");
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &[
            &redis_arg,
            "--redis-cmd-timeout=0",
            "--redis-connect-timeout=60000",
        ],
    );
    let ng = relay.client();
    for i in 0..5u16 {
        let sdp = sdp_offer(LO, ports.port(2 * i));
        let reply = expect_ok(
            ng.offer(&format!("silent-{i}"), "tag-a", &sdp, &[]),
            "offer with a Redis that never answers",
        );
        assert_eq!(get_str(&reply, "result"), Some("ok"));
    }
    assert!(ng.ping().is_ok(), "the relay still answers");
    drop(silent);
}

#[test]
fn a_call_that_times_out_leaves_redis_and_the_index() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut con = redis.connection().expect("redis connection");
    let ports = PortBlock::acquire();
    let redis_arg = format!("--redis={}", redis.url());
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[&redis_arg, "--timeout=1"]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let n = node();
    let key = keys::call(&n, &c.id);
    let exists = |con: &mut redis::Connection| {
        redis::cmd("EXISTS")
            .arg(&key)
            .query::<bool>(con)
            .unwrap_or(false)
    };
    assert!(wait_until(WAIT, || exists(&mut con)), "no record at {key}");
    // No media: the call ends after its timeout, and its record goes with it.
    assert!(
        wait_until(Duration::from_secs(10), || !exists(&mut con)),
        "the record outlived the call's timeout; relay log: {}",
        relay.log_tail(30)
    );
    let indexed: bool = redis::cmd("SISMEMBER")
        .arg(keys::index(&n))
        .arg(&key)
        .query(&mut con)
        .expect("SISMEMBER");
    assert!(!indexed, "the ended call left the index");
}
