//! Fills a spool with synthetic finished calls, for measuring the recorder:
//! `cargo run --release -p rtprelay-recording --example make_spool -- <spool-dir> <calls> <seconds>`.
//! Each call has two streams (PCMU 440 Hz and PCMA 1000 Hz, 20 ms packets).

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use rtprelay_recording::g711::Codec;
use rtprelay_recording::rtp;
use rtprelay_recording::spool::{CodecInfo, PcapFormat, Spool, StreamInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: make_spool <spool-dir> <calls> <seconds>")?;
    let calls: usize = args.next().unwrap_or_else(|| "100".into()).parse()?;
    let secs: usize = args.next().unwrap_or_else(|| "60".into()).parse()?;
    let spool = Spool::open(&dir, PcapFormat::Raw)?.with_fsync(false);
    let src: SocketAddr = "192.0.2.1:4000".parse()?;
    let dst: SocketAddr = "192.0.2.2:5000".parse()?;
    let tone = |freq: f64, codec: Codec| -> Vec<Vec<u8>> {
        // One second of packets, repeated.
        (0..50)
            .map(|k| {
                (0..160)
                    .map(|i| {
                        let n = (k * 160 + i) as f64;
                        codec.encode(
                            (8000.0 * (2.0 * std::f64::consts::PI * freq * n / 8000.0).sin())
                                as i16,
                        )
                    })
                    .collect()
            })
            .collect()
    };
    let (a_pay, b_pay) = (tone(440.0, Codec::Pcmu), tone(1000.0, Codec::Pcma));
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for c in 0..calls {
        let mut w = spool.create_call(&format!("bench-{c}@example.com"), "bench:1", t0)?;
        let a = w.add_stream(StreamInfo {
            tag: "a".into(),
            codecs: vec![CodecInfo::new(0, "PCMU", 8000)],
            ..Default::default()
        })?;
        let b = w.add_stream(StreamInfo {
            tag: "b".into(),
            codecs: vec![CodecInfo::new(8, "PCMA", 8000)],
            ..Default::default()
        })?;
        for k in 0..secs * 50 {
            let at = t0 + Duration::from_millis(k as u64 * 20);
            let (seq, ts) = (k as u16, k as u32 * 160);
            w.append_packet(
                a,
                src,
                dst,
                &rtp::build(0, false, seq, ts, 1, &a_pay[k % 50]),
                at,
            )?;
            w.append_packet(
                b,
                dst,
                src,
                &rtp::build(8, false, seq, ts, 2, &b_pay[k % 50]),
                at,
            )?;
        }
        w.finish(t0 + Duration::from_secs(secs as u64))?;
    }
    println!("{calls} calls of {secs} s in {dir}");
    Ok(())
}
