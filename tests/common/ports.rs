//! Port blocks for tests that run in parallel (threads of one test binary, other test binaries, other checkouts
//! on the same machine). A block is a run of `BLOCK_SIZE` UDP ports in 20000..30000, below Linux's ephemeral
//! range; it is held by a TCP listener on its first port, so two holders never share a block, and it is freed
//! on drop. Layout: `base` = lock, `ng_port()` = base+1, `port(0..=17)` = spare ports for SIP/media peers,
//! `media_range()` = base+20 ..= base+BLOCK_SIZE-1 for the relay.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

const FIRST: u16 = 20000;
const BLOCK_SIZE: u16 = 400;
const BLOCKS: u16 = 25;
const SPARE: u16 = 18;
/// How long `acquire` waits for a block when all are in use.
const ACQUIRE_WAIT: Duration = Duration::from_secs(60);

pub struct PortBlock {
    _lock: TcpListener,
    pub base: u16,
}

impl PortBlock {
    /// Takes a free block, starting at a random one. When all are taken (many test binaries at once), waits
    /// for one to be freed, up to `ACQUIRE_WAIT`, then panics.
    pub fn acquire() -> PortBlock {
        let deadline = Instant::now() + ACQUIRE_WAIT;
        loop {
            if let Some(block) = PortBlock::try_acquire() {
                return block;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no free test port block in {FIRST}..{} for {ACQUIRE_WAIT:?}",
                    FIRST + BLOCKS * BLOCK_SIZE
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Takes a free block, starting at a random one, if there is one.
    pub fn try_acquire() -> Option<PortBlock> {
        let start = (RandomState::new().build_hasher().finish() % u64::from(BLOCKS)) as u16;
        for i in 0..BLOCKS {
            let base = FIRST + ((start + i) % BLOCKS) * BLOCK_SIZE;
            let Ok(lock) = TcpListener::bind((Ipv4Addr::LOCALHOST, base)) else {
                continue;
            };
            // Skip blocks whose NG port is held by someone outside this scheme.
            if UdpSocket::bind((Ipv4Addr::LOCALHOST, base + 1)).is_err() {
                continue;
            }
            return Some(PortBlock { _lock: lock, base });
        }
        None
    }

    /// The relay's NG control port.
    pub fn ng_port(&self) -> u16 {
        self.base + 1
    }

    /// The relay's NG address on 127.0.0.1.
    pub fn ng_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ng_port()))
    }

    /// Spare port `i` (0..18) of the block, for SIP endpoints and media peers.
    pub fn port(&self, i: u16) -> u16 {
        assert!(i < SPARE, "spare port index {i} out of 0..{SPARE}");
        self.base + 2 + i
    }

    /// First and last port (inclusive) the relay may allocate media ports from (even first port).
    pub fn media_range(&self) -> (u16, u16) {
        (self.base + 2 + SPARE, self.base + BLOCK_SIZE - 1)
    }
}

/// A UDP port on 127.0.0.1 free right now (the kernel's pick; may be taken again by the time it is used).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free UDP port: {e}"))
}
