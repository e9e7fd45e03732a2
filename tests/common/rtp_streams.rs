//! Many RTP streams at once for the restart and takeover tests: one thread sends a packet on
//! every stream each packet time and notes when packets arrive, so that a test can tell whether
//! (and when) each stream flowed again.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::media::RtpPacket;

pub const PTIME: Duration = Duration::from_millis(20);

/// One direction of one call: its sender, the relay port it sends to, and the arrivals at the
/// other end.
pub struct Stream {
    pub from: UdpSocket,
    pub to: SocketAddr,
    pub ssrc: u32,
    pub arrivals: Vec<Instant>,
}

/// The streams, and the receiving sockets with the stream each one receives.
#[derive(Clone, Default)]
pub struct Streams {
    pub streams: Arc<Mutex<Vec<Stream>>>,
    pub receivers: Arc<Mutex<Vec<(UdpSocket, usize)>>>,
}

impl Streams {
    /// Adds a stream from `from` (non-blocking) to `to`, received on `at` (non-blocking); its index.
    pub fn add(&self, from: UdpSocket, to: SocketAddr, at: UdpSocket) -> usize {
        let mut s = self.streams.lock().expect("streams");
        let i = s.len();
        s.push(Stream {
            from,
            to,
            ssrc: i as u32 + 1,
            arrivals: Vec::new(),
        });
        self.receivers.lock().expect("receivers").push((at, i));
        i
    }

    /// Packets stream `i` got after `t`.
    pub fn count_after(&self, i: usize, t: Instant) -> usize {
        self.streams.lock().expect("streams")[i]
            .arrivals
            .iter()
            .filter(|a| **a > t)
            .count()
    }

    /// Sends and takes in until the returned flag is set; join the handle after setting it.
    pub fn start(&self) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let (me, flag) = (self.clone(), stop.clone());
        (stop, std::thread::spawn(move || me.run(&flag)))
    }

    fn run(&self, stop: &AtomicBool) {
        let mut seq: u16 = 0;
        let mut buf = [0u8; 1500];
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            {
                let mut streams = self.streams.lock().expect("streams");
                for s in streams.iter() {
                    let _ = s
                        .from
                        .send_to(&RtpPacket::pcmu(s.ssrc, seq).to_bytes(), s.to);
                }
                for (sock, i) in self.receivers.lock().expect("receivers").iter() {
                    while let Ok((n, _)) = sock.recv_from(&mut buf) {
                        if n >= 12 {
                            streams[*i].arrivals.push(Instant::now());
                        }
                    }
                }
            }
            seq = seq.wrapping_add(1);
            next += PTIME;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
}
