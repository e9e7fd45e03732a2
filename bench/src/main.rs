//! `rtprelay-bench`: sets up N calls on an NG relay (rtprelay or rtpengine), sends G.711-sized
//! RTP both ways at a fixed rate, and reports forwarded packets, loss, latency and the relay's
//! CPU time per forwarded packet, read from /proc.

mod calls;
mod ng;
mod procstat;
mod traffic;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

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
    /// Local address of the generator's endpoints.
    #[arg(long, default_value = "127.0.0.1")]
    local: IpAddr,
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

fn run(a: &Args) -> Result<serde_json::Value, String> {
    let mut ng = ng::NgClient::new(a.ng).map_err(|e| e.to_string())?;
    let tag = format!("{}-{}", std::process::id(), a.calls);
    let rss_before_calls = procstat::rss_kib(a.relay_pid).unwrap_or(0);
    let calls = calls::setup(&mut ng, a.calls, a.local, &tag)?;
    let mut streams = Vec::new();
    let mut receivers = Vec::new();
    for c in &calls {
        let clone = |s: &std::net::UdpSocket| s.try_clone().map_err(|e| e.to_string());
        streams.push((clone(&c.a)?, c.a_to));
        streams.push((clone(&c.b)?, c.b_to));
        receivers.push(clone(&c.b)?); // stream 2i arrives at the callee
        receivers.push(clone(&c.a)?);
    }
    let n_streams = streams.len();
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let rx = {
        let (stop, total) = (stop.clone(), total.clone());
        std::thread::spawn(move || traffic::receive(receivers, n_streams, epoch, stop, total))
    };
    let stop_tx = Arc::new(AtomicBool::new(false));
    let tx = {
        let sender = traffic::Sender {
            streams,
            pps: a.pps,
            size: a.size,
        };
        let stop = stop_tx.clone();
        std::thread::spawn(move || sender.run(epoch, stop))
    };
    std::thread::sleep(Duration::from_secs(a.warmup));
    let cpu0 = procstat::cpu_us(a.relay_pid).ok_or("relay process not found")?;
    let own0 = procstat::cpu_us(std::process::id()).unwrap_or(0);
    let rx0 = total.load(Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(a.seconds));
    let cpu1 = procstat::cpu_us(a.relay_pid).ok_or("relay process gone")?;
    let own1 = procstat::cpu_us(std::process::id()).unwrap_or(0);
    let rx1 = total.load(Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let rss = procstat::rss_kib(a.relay_pid).unwrap_or(0);
    stop_tx.store(true, Ordering::Relaxed);
    let sent = tx.join().map_err(|_| "sender thread panicked")?;
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut got = rx
        .join()
        .map_err(|_| "receiver thread panicked")?
        .map_err(|e| e.to_string())?;
    calls::teardown(&mut ng, &calls);

    let sent_total: u64 = sent.iter().sum();
    let recv_total: u64 = got.per_stream.iter().sum();
    let forwarded = rx1 - rx0;
    let cpu_us = cpu1.saturating_sub(cpu0);
    got.latency_us.sort_unstable();
    let lat = &got.latency_us;
    let silent_streams = got.per_stream.iter().filter(|&&c| c == 0).count();
    Ok(serde_json::json!({
        "label": a.label,
        "calls": a.calls,
        "pps_per_stream": a.pps,
        "packet_size": a.size,
        "seconds": elapsed,
        "forwarded_pps": forwarded as f64 / elapsed,
        "sent": sent_total,
        "received": recv_total,
        "loss_ratio": if sent_total == 0 { 0.0 } else { sent_total.saturating_sub(recv_total) as f64 / sent_total as f64 },
        "out_of_order": got.out_of_order,
        "foreign_packets": got.foreign,
        "silent_streams": silent_streams,
        "latency_us": { "p50": traffic::quantile(lat, 0.5), "p99": traffic::quantile(lat, 0.99), "p999": traffic::quantile(lat, 0.999) },
        "relay_cpu_percent": cpu_us as f64 / (elapsed * 1e4),
        "relay_cpu_us_per_packet": if forwarded == 0 { 0.0 } else { cpu_us as f64 / forwarded as f64 },
        "relay_rss_kib": rss,
        "relay_rss_kib_before_calls": rss_before_calls,
        "generator_cpu_percent": own1.saturating_sub(own0) as f64 / (elapsed * 1e4),
    }))
}
