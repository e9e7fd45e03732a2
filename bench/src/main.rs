//! `rtprelay-bench`: sets up N calls on an NG relay (rtprelay or rtpengine), sends G.711-sized
//! RTP both ways at a fixed rate, and reports forwarded packets, loss, latency and the relay's
//! CPU time per forwarded packet, read from /proc. It also reports its own CPU and the rate it
//! actually sent, so a run where the generator could not keep up is visible as such.

mod calls;
mod ng;
mod procstat;
mod srtp;
mod traffic;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;

use traffic::{Pacing, Received, Shard, Shared, Stream};

/// Below this share of the nominal send rate, the run measured the generator, not the relay.
const GENERATOR_BOUND: f64 = 0.95;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// NG address of the relay under test.
    #[arg(long, default_value = "127.0.0.1:2223")]
    ng: SocketAddr,
    /// PID of the relay, for CPU and memory figures.
    #[arg(long)]
    relay_pid: u32,
    /// Concurrent calls.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Packets per second per direction per call.
    #[arg(long, default_value_t = 50)]
    pps: u32,
    /// Packet size in bytes (172 = G.711 20 ms + RTP header).
    #[arg(long, default_value_t = 172)]
    size: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Generator threads; each sends and receives for its share of the calls.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Connect each endpoint socket to its relay port and send with `send` (the kernel caches
    /// the route), instead of `sendmmsg` batches with an address per packet.
    #[arg(long)]
    connected: bool,
    /// Local address of the generator's endpoints.
    #[arg(long, default_value = "127.0.0.1")]
    local: IpAddr,
    /// SRTP on the caller's side (SDES, bridged by the relay to plain RTP toward the callee):
    /// the caller offers `RTP/SAVP` with its own key in this suite and checks every packet it
    /// receives with the relay's key; a packet that does not authenticate counts as lost.
    #[arg(long, value_enum, default_value = "none")]
    srtp: srtp::Mode,
    /// A label written into the JSON result (e.g. the relay's name).
    #[arg(long, default_value = "relay")]
    label: String,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("rtprelay-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Splits the calls into `threads` shards of whole calls (both sockets of a call in one shard).
fn shards(calls: Vec<calls::Call>, threads: usize) -> Vec<Shard> {
    let threads = threads.max(1);
    let mut out: Vec<Shard> = (0..threads)
        .map(|_| Shard {
            sockets: Vec::new(),
            streams: Vec::new(),
        })
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        let Some(sh) = out.get_mut(i % threads) else {
            continue;
        };
        let k = sh.sockets.len();
        // With SRTP the caller protects what it sends and checks what it gets back; the callee
        // side is plain.
        let (a_tx, a_rx) = c
            .a_srtp
            .map_or((None, None), |(tx, rx)| (Some(tx), Some(rx)));
        // A→relay(a_to) arrives at B from b_to, and the reverse.
        sh.streams.push(Stream {
            ssrc: 2 * i as u32,
            from: k,
            to: c.a_to,
            at: k + 1,
            via: c.b_to,
            tx: a_tx,
            rx: None,
        });
        sh.streams.push(Stream {
            ssrc: 2 * i as u32 + 1,
            from: k + 1,
            to: c.b_to,
            at: k,
            via: c.a_to,
            tx: None,
            rx: a_rx,
        });
        sh.sockets.push(c.a);
        sh.sockets.push(c.b);
    }
    out
}

fn run(a: &Args) -> Result<serde_json::Value, String> {
    let mut ng = ng::NgClient::new(a.ng).map_err(|e| e.to_string())?;
    let tag = format!("{}-{}", std::process::id(), a.calls);
    let rss_before_calls = procstat::rss_kib(a.relay_pid).unwrap_or(0);
    let setup_start = Instant::now();
    let calls = calls::setup(&mut ng, a.calls, a.local, &tag, a.srtp.suite())?;
    let setup_seconds = setup_start.elapsed().as_secs_f64();
    let ids: Vec<String> = calls.iter().map(|c| c.id.clone()).collect();
    let pacing = Pacing {
        pps: a.pps,
        size: a.size,
        total_streams: 2 * calls.len(),
        connected: a.connected,
    };
    let shared = Shared::default();
    shared.sending.store(true, Ordering::Relaxed);
    shared.running.store(true, Ordering::Relaxed);
    let epoch = Instant::now();

    let (m, got) = std::thread::scope(|s| {
        let handles: Vec<_> = shards(calls, a.threads)
            .into_iter()
            .map(|sh| s.spawn(|| sh.run(pacing, epoch, &shared)))
            .collect();
        let m = measure(a, &shared);
        shared.sending.store(false, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
        shared.running.store(false, Ordering::Relaxed);
        let mut got = Received::default();
        for h in handles {
            match h.join() {
                Ok(Ok(r)) => got.merge(r),
                Ok(Err(e)) => return (m, Err(format!("generator thread: {e}"))),
                Err(_) => return (m, Err("generator thread panicked".to_owned())),
            }
        }
        (m, Ok(got))
    });
    calls::teardown(&mut ng, &ids);
    let m = m?;
    let mut got = got?;

    let sent_total: u64 = got.sent_per_stream.iter().sum();
    let recv_total: u64 = got.per_stream.iter().sum();
    let forwarded = m.received;
    got.latency_us.sort_unstable();
    let lat = &got.latency_us;
    let silent_streams = got.per_stream.iter().filter(|&&c| c == 0).count();
    let nominal_pps = 2.0 * a.calls as f64 * f64::from(a.pps);
    let sent_pps = m.sent as f64 / m.elapsed;
    let send_ratio = if nominal_pps > 0.0 {
        sent_pps / nominal_pps
    } else {
        1.0
    };
    Ok(serde_json::json!({
        "label": a.label,
        "calls": a.calls,
        "pps_per_stream": a.pps,
        "packet_size": a.size,
        "srtp": a.srtp.suite().map(|s| s.name()),
        "seconds": m.elapsed,
        "setup_seconds": setup_seconds,
        "forwarded_pps": forwarded as f64 / m.elapsed,
        "sent": sent_total,
        "received": recv_total,
        "loss_ratio": if sent_total == 0 { 0.0 } else { sent_total.saturating_sub(recv_total) as f64 / sent_total as f64 },
        "out_of_order": got.out_of_order,
        "foreign_packets": got.foreign,
        "duplicates": got.duplicates,
        "misrouted": got.misrouted,
        "srtp_failures": got.srtp_failures,
        "wrong_length": got.wrong_length,
        "silent_streams": silent_streams,
        "latency_us": { "p50": traffic::quantile(lat, 0.5), "p99": traffic::quantile(lat, 0.99), "p999": traffic::quantile(lat, 0.999) },
        "relay_cpu_percent": m.relay_cpu_us as f64 / (m.elapsed * 1e4),
        "relay_cpu_us_per_packet": if forwarded == 0 { 0.0 } else { m.relay_cpu_us as f64 / forwarded as f64 },
        // XDP: the program's own run time (softirq, outside the relay's threads) per forwarded
        // packet, and the total cost with the relay process's CPU.
        "relay_bpf_ns_per_packet": m.bpf.map(|(ns, _)| if forwarded == 0 { 0.0 } else { ns as f64 / forwarded as f64 }),
        "relay_bpf_runs": m.bpf.map(|(_, n)| n),
        "relay_total_us_per_packet": if forwarded == 0 { 0.0 } else { (m.relay_cpu_us as f64 + m.bpf.map_or(0.0, |(ns, _)| ns as f64 / 1000.0)) / forwarded as f64 },
        "relay_rss_kib": m.rss,
        "relay_rss_kib_before_calls": rss_before_calls,
        "generator_threads": a.threads.max(1),
        "generator_connected": a.connected,
        "generator_cpu_us": m.own_cpu_us,
        "generator_cpu_percent": m.own_cpu_us as f64 / (m.elapsed * 1e4),
        "generator_cpu_us_per_sent_packet": if m.sent == 0 { 0.0 } else { m.own_cpu_us as f64 / m.sent as f64 },
        "relay_runqueue_wait_percent": m.relay_wait_us as f64 / (m.elapsed * 1e4),
        "generator_runqueue_wait_percent": m.own_wait_us as f64 / (m.elapsed * 1e4),
        "nominal_pps": nominal_pps,
        "sent_pps": sent_pps,
        "send_ratio": send_ratio,
        "generator_bound": send_ratio < GENERATOR_BOUND,
        "send_failures": shared.send_failures.load(Ordering::Relaxed),
        "late_slots": shared.late_slots.load(Ordering::Relaxed),
    }))
}

/// Figures over the measured window (after the warm-up).
struct Window {
    elapsed: f64,
    relay_cpu_us: u64,
    own_cpu_us: u64,
    sent: u64,
    received: u64,
    rss: u64,
    /// Runnable-but-waiting time of the relay's and the generator's threads.
    relay_wait_us: u64,
    own_wait_us: u64,
    /// The relay's BPF programs: run time (ns) and runs in the window, when it holds any.
    bpf: Option<(u64, u64)>,
}

fn measure(a: &Args, shared: &Shared) -> Result<Window, String> {
    std::thread::sleep(Duration::from_secs(a.warmup));
    let me = std::process::id();
    let cpu0 = procstat::cpu_us(a.relay_pid).ok_or("relay process not found")?;
    let own0 = procstat::cpu_us(me).unwrap_or(0);
    let wait0 = [a.relay_pid, me].map(|p| procstat::runqueue_wait_us(p).unwrap_or(0));
    let bpf0 = procstat::bpf_run(a.relay_pid);
    let (tx0, rx0) = (
        shared.sent.load(Ordering::Relaxed),
        shared.received.load(Ordering::Relaxed),
    );
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(a.seconds));
    let cpu1 = procstat::cpu_us(a.relay_pid).ok_or("relay process gone")?;
    let own1 = procstat::cpu_us(me).unwrap_or(0);
    let wait1 = [a.relay_pid, me].map(|p| procstat::runqueue_wait_us(p).unwrap_or(0));
    let bpf1 = procstat::bpf_run(a.relay_pid);
    let (tx1, rx1) = (
        shared.sent.load(Ordering::Relaxed),
        shared.received.load(Ordering::Relaxed),
    );
    Ok(Window {
        elapsed: t0.elapsed().as_secs_f64(),
        relay_cpu_us: cpu1.saturating_sub(cpu0),
        own_cpu_us: own1.saturating_sub(own0),
        sent: tx1 - tx0,
        received: rx1 - rx0,
        rss: procstat::rss_kib(a.relay_pid).unwrap_or(0),
        relay_wait_us: wait1[0].saturating_sub(wait0[0]),
        own_wait_us: wait1[1].saturating_sub(wait0[1]),
        bpf: bpf0
            .zip(bpf1)
            .map(|((n0, c0), (n1, c1))| (n1.saturating_sub(n0), c1.saturating_sub(c0))),
    })
}
