//! Per-core workers isolate calls: with `--num-threads=2 --cpu-affinity=0,1`, each worker thread
//! is pinned to its own CPU, calls are sharded by call-id as `worker::worker_index` says, and a
//! flood on a call of one worker does not cost a paced call on the other a single packet.
//!
//! The call-ids are picked so that one call lands on each worker. Sharding is proven by
//! counters, not timing: packets paced on one call wake that call's worker once each (the
//! thread's `voluntary_ctxt_switches`) while the other worker sleeps through its ticks, so a
//! wrong call→worker mapping fails. Each flood phase then floods one call (from a thread pinned
//! to the flooded worker's CPU) while the other call sends 50 pps: every paced packet arrives
//! exactly once and the relay counts each. The phases swap roles.
//!
//! Latency and CPU under a neighbour's flood are measurements, not pass/fail facts on a shared
//! CI machine: this test prints the paced call's latency; `bench/compare.py` measures both.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::call::{port_stat, LO};
use common::*;

/// How long each phase floods (and the paced call sends).
const FLOOD_FOR: Duration = Duration::from_millis(2500);
/// Upper bound on flood packets per phase.
const FLOOD_MAX: u64 = 1_000_000;
/// Paced call: 50 packets per second.
const PACE: Duration = Duration::from_millis(20);

/// One call on a chosen worker: A's RTP socket sends to `a_to`, B's receives what the relay forwards.
struct PinnedCall {
    id: String,
    a: MediaEndpoint,
    b: MediaEndpoint,
    a_to: SocketAddr,
}

/// A call-id starting with `prefix` that `worker_index` puts on `worker` of `workers`.
fn call_id_on(prefix: &str, worker: usize, workers: usize) -> String {
    (0..10_000)
        .map(|k| format!("{prefix}-{}-{k}", std::process::id()))
        .find(|id| {
            rtprelay::worker::worker_index(rtprelay::session::engine::shard_of(id), workers)
                == worker
        })
        .unwrap_or_else(|| panic!("no call-id maps to worker {worker}"))
}

fn setup_call(ng: &NgClient, ports: &PortBlock, first: u16, worker: usize) -> PinnedCall {
    let id = call_id_on(&format!("iso{first}"), worker, 2);
    // Ports `first`.. of the block; RTCP ports are bound too, so nothing else takes them.
    let at = |i| SocketAddr::from((LO, ports.port(first + i)));
    let a = MediaEndpoint::bind(at(0)).expect("bind A RTP");
    let _a_rtcp = MediaEndpoint::bind(at(1)).expect("bind A RTCP");
    let b = MediaEndpoint::bind(at(2)).expect("bind B RTP");
    let o = expect_ok(
        ng.offer(&id, "tag-a", &sdp_offer(LO, a.local_addr().port()), &[]),
        "offer",
    );
    let offer_sdp = get_str(&o, "sdp").expect("offer sdp");
    assert!(sdp_media_endpoint(offer_sdp).is_some(), "{offer_sdp}");
    let r = expect_ok(
        ng.answer(
            &id,
            "tag-a",
            "tag-b",
            &sdp_answer(LO, b.local_addr().port()),
            &[],
        ),
        "answer",
    );
    let a_to = sdp_media_endpoint(get_str(&r, "sdp").expect("answer sdp")).expect("endpoint");
    PinnedCall { id, a, b, a_to }
}

/// The relay's threads: (name, tid).
fn threads(pid: u32) -> Vec<(String, String)> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).expect("relay task dir");
    dir.filter_map(|e| {
        let tid = e.ok()?.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
        Some((comm.trim().to_owned(), tid))
    })
    .collect()
}

fn worker_tid(pid: u32, name: &str) -> String {
    // A thread names itself once it runs: give a freshly started relay a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let all = threads(pid);
        if let Some((_, tid)) = all.iter().find(|(n, _)| n == name) {
            return tid.clone();
        }
        if Instant::now() > deadline {
            panic!("no thread {name} in the relay: {all:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `Cpus_allowed_list` of a relay thread.
fn allowed_cpus(pid: u32, tid: &str) -> String {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).expect("thread status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// How many times a relay thread went to sleep waiting for work (`voluntary_ctxt_switches`):
/// an idle worker wakes on its tick only, a worker that owns a paced call once per packet.
fn thread_sleeps(pid: u32, tid: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).expect("thread status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches")
}

fn pin_current(cpu: usize) {
    assert!(
        core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
        "pin test thread to CPU {cpu}"
    );
}

/// What the paced call saw.
struct Paced {
    sent: usize,
    received: usize,
    /// The sequence numbers received, sorted (duplicates kept).
    seqs: Vec<u16>,
    /// One-way latency per received packet, sorted.
    latency: Vec<Duration>,
}

/// Sends 50 pps on `paced` for `FLOOD_FOR` while another thread floods `flooded` as fast as it can
/// (bounded). Test threads run on `paced_cpu`/`flood_cpu`, the CPUs of the workers they load.
fn flood_while_pacing(
    flooded: &PinnedCall,
    flood_cpu: usize,
    paced: &PinnedCall,
    paced_cpu: usize,
) -> (u64, Paced) {
    let stop = AtomicBool::new(false);
    let epoch = Instant::now();
    std::thread::scope(|s| {
        let flood = s.spawn(|| {
            pin_current(flood_cpu);
            let pkt = RtpPacket::pcmu(0xf1, 1).to_bytes();
            let mut n = 0u64;
            while n < FLOOD_MAX && !stop.load(Ordering::Relaxed) {
                if flooded.a.send_to(&pkt, flooded.a_to).is_ok() {
                    n += 1;
                }
            }
            n
        });
        let rx = s.spawn(|| {
            pin_current(paced_cpu);
            let mut got = Vec::new();
            let deadline = Instant::now() + FLOOD_FOR + Duration::from_secs(1);
            while Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                let Some((p, _)) = paced.b.recv_timeout(left) else {
                    break;
                };
                let Some(rtp) = RtpPacket::parse(&p) else {
                    continue;
                };
                if rtp.ssrc == 0x50 {
                    // `RtpPacket::pcmu` numbers packet n as 1000 + n.
                    got.push((rtp.seq.wrapping_sub(1000), epoch.elapsed()));
                }
            }
            got
        });
        pin_current(paced_cpu);
        let mut sent_at = Vec::new();
        let mut next = Instant::now();
        while epoch.elapsed() < FLOOD_FOR {
            let seq = sent_at.len() as u16;
            sent_at.push(epoch.elapsed());
            paced
                .a
                .send_to(&RtpPacket::pcmu(0x50, seq).to_bytes(), paced.a_to)
                .expect("paced send");
            next += PACE;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        stop.store(true, Ordering::Relaxed);
        let flood_sent = flood.join().expect("flood thread");
        let got = rx.join().expect("receiver thread");
        let mut latency: Vec<Duration> = got
            .iter()
            .filter_map(|(seq, at)| Some(at.saturating_sub(*sent_at.get(usize::from(*seq))?)))
            .collect();
        latency.sort();
        let mut seqs: Vec<u16> = got.iter().map(|(seq, _)| *seq).collect();
        seqs.sort_unstable();
        (
            flood_sent,
            Paced {
                sent: sent_at.len(),
                received: got.len(),
                seqs,
                latency,
            },
        )
    })
}

fn packets(ng: &NgClient, c: &PinnedCall) -> i64 {
    let q = Value::Dict(expect_ok(ng.query(&c.id), "query"));
    port_stat(&q, c.a_to.port(), "packets")
}

/// The relay's packet count of `c` once it reaches `want` (workers report their counters a
/// little later than they forward), or the last count seen after a few seconds.
fn packets_reaching(ng: &NgClient, c: &PinnedCall, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let n = packets(ng, c);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The worker threads' ids, by worker index.
fn worker_tids(pid: u32) -> [String; 2] {
    [
        worker_tid(pid, "rtprelay-w0"),
        worker_tid(pid, "rtprelay-w1"),
    ]
}

/// Packets paced one by one on a call for the sharding check, and the gap between them (far
/// longer than forwarding one takes, so each wakes its worker).
const SHARD_PACKETS: u16 = 100;
const SHARD_GAP: Duration = Duration::from_millis(3);

/// Sharding by counters: `SHARD_PACKETS` paced packets on the call of worker `hot` wake that
/// worker about once each (at least a quarter of them) while the other sleeps through its 100 ms
/// ticks (under a quarter); all of them arrive in order and the relay counts each once.
fn only_the_owner_wakes(relay: &Relay, ng: &NgClient, calls: &[PinnedCall; 2], hot: usize) {
    let cold = 1 - hot;
    let pid = relay.pid();
    let tids = worker_tids(pid);
    let c = &calls[hot];
    let counted_before = packets(ng, c);
    let before = [thread_sleeps(pid, &tids[0]), thread_sleeps(pid, &tids[1])];
    for seq in 0..SHARD_PACKETS {
        c.a.send_to(&RtpPacket::pcmu(0x5a, seq).to_bytes(), c.a_to)
            .expect("send");
        std::thread::sleep(SHARD_GAP);
    }
    let got =
        c.b.collect(usize::from(SHARD_PACKETS), Duration::from_secs(2));
    let sleeps = [
        thread_sleeps(pid, &tids[0]) - before[0],
        thread_sleeps(pid, &tids[1]) - before[1],
    ];
    let seqs: Vec<u16> = got
        .iter()
        .filter_map(|(p, _)| RtpPacket::parse(p))
        .map(|r| r.seq.wrapping_sub(1000))
        .collect();
    let want = i64::from(SHARD_PACKETS);
    let counted = packets_reaching(ng, c, counted_before + want) - counted_before;
    let what = format!(
        "{SHARD_PACKETS} packets on worker {hot}'s call: {} arrived, {counted} counted; \
         worker sleeps {sleeps:?}",
        seqs.len()
    );
    eprintln!("{what}");
    assert_eq!(seqs, (0..SHARD_PACKETS).collect::<Vec<_>>(), "{what}");
    assert_eq!(counted, want, "{what}");
    // About one wake-up per packet; a quarter leaves room for a loaded machine, where a worker
    // may find several packets waiting when it gets the CPU.
    assert!(
        sleeps[hot] * 4 >= u64::from(SHARD_PACKETS),
        "worker {hot} did not wake for its call's packets: {what}"
    );
    assert!(
        sleeps[cold] * 4 < u64::from(SHARD_PACKETS),
        "worker {cold} woke for the other worker's call (wrong shard?): {what}"
    );
}

/// One phase: flood the call on `hot` (worker index), pace the call on the other.
fn phase(ng: &NgClient, calls: &[PinnedCall; 2], hot: usize) {
    let cold = 1 - hot;
    let flooded_before = packets(ng, &calls[hot]);
    let paced_before = packets(ng, &calls[cold]);
    let (flood_sent, paced) = flood_while_pacing(&calls[hot], hot, &calls[cold], cold);
    let flooded = packets_reaching(ng, &calls[hot], flooded_before + 1000) - flooded_before;
    let sent = i64::try_from(paced.sent).expect("count");
    let paced_counted = packets_reaching(ng, &calls[cold], paced_before + sent) - paced_before;
    let what = format!(
        "flood on worker {hot}: {flood_sent} sent, {flooded} counted by the relay; \
         paced call on worker {cold}: {} sent, {} received ({} distinct), {paced_counted} counted",
        paced.sent,
        paced.received,
        paced.seqs.len()
    );
    eprintln!("{what}");
    if !paced.latency.is_empty() {
        let at = |q: f64| paced.latency[((paced.latency.len() - 1) as f64 * q) as usize];
        eprintln!(
            "paced call latency p50 {:?}, p99 {:?} (informative; bench/compare.py measures it)",
            at(0.5),
            at(0.99)
        );
    }

    // The flood reached the flooded call.
    assert!(
        flooded >= 1000,
        "the flood hardly reached the relay: {what}"
    );
    // The paced call on the other worker lost nothing: every packet arrived exactly once (a
    // duplicate cannot stand in for a lost one) and the relay counted each.
    assert!(paced.sent >= 100, "{what}");
    let all: Vec<u16> = (0..paced.sent)
        .map(|n| u16::try_from(n).expect("seq"))
        .collect();
    assert_eq!(
        paced.seqs, all,
        "paced call lost or repeated packets: {what}"
    );
    assert_eq!(paced.received, paced.sent, "{what}");
    assert_eq!(paced_counted, sent, "{what}");
}

#[test]
fn workers_are_pinned_and_a_flood_on_one_spares_the_other() {
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    if !skip_unless(cpus.len() >= 2, "worker isolation needs 2 CPUs") {
        return;
    }
    let ports = PortBlock::acquire();
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &["--num-threads=2", "--cpu-affinity=0,1", "-L", "5"],
    );
    let pid = relay.pid();
    for (name, cpu) in [("rtprelay-w0", "0"), ("rtprelay-w1", "1")] {
        let tid = worker_tid(pid, name);
        assert_eq!(allowed_cpus(pid, &tid), cpu, "{name} pinned");
    }

    let ng = relay.client();
    let calls = [setup_call(&ng, &ports, 0, 0), setup_call(&ng, &ports, 4, 1)];
    // Both calls forward before the floods.
    for c in &calls {
        let p = RtpPacket::pcmu(0x1, 0).to_bytes();
        c.a.send_to(&p, c.a_to).expect("send");
        assert!(
            c.b.recv_timeout(Duration::from_secs(2)).is_some(),
            "call {} forwards",
            c.id
        );
    }
    only_the_owner_wakes(&relay, &ng, &calls, 0);
    only_the_owner_wakes(&relay, &ng, &calls, 1);
    phase(&ng, &calls, 0);
    // Drain what the flood left in B's buffer of the flooded call before the roles swap.
    while calls[0].b.recv_timeout(Duration::from_millis(5)).is_some() {}
    phase(&ng, &calls, 1);
    assert!(relay.log_text().lines().count() < 10_000, "log flood");
}
