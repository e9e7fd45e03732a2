//! Safe batch receive/send over libc's `recvmmsg`/`sendmmsg`, with caller-owned buffers.
//!
//! All memory is allocated once, when the buffers are made; a receive or send pass allocates
//! nothing. The `msghdr`/`iovec` pointers are rebuilt before every call, so the structs never
//! hold pointers across moves.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;

/// Bytes per packet slot: above any RTP/RTCP packet on a 1500-byte MTU.
pub const SLOT_SIZE: usize = 2048;

fn zero_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
    unsafe { mem::zeroed() }
}

fn zero_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data (integers and raw pointers); all-zero is valid.
    unsafe { mem::zeroed() }
}

/// Convert a kernel-filled address to a `SocketAddr` (AF_INET/AF_INET6 only).
pub(crate) fn to_socket_addr(
    s: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(s.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than
            // sockaddr_storage and has compatible alignment.
            let a = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Write `addr` into `s`, returning the length to pass to the kernel.
pub(crate) fn from_socket_addr(
    addr: SocketAddr,
    s: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    *s = zero_storage();
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            let sin = unsafe { &mut *(s as *mut libc::sockaddr_storage as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &mut *(s as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// N receive slots of [`SLOT_SIZE`] bytes with their source addresses.
pub struct MmsgBuffers {
    data: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    /// Per received slot: (length, source address, truncated).
    meta: Box<[(usize, Option<SocketAddr>, bool)]>,
    count: usize,
}

impl MmsgBuffers {
    pub fn new(slots: usize) -> MmsgBuffers {
        let n = slots.max(1);
        MmsgBuffers {
            data: vec![0u8; n * SLOT_SIZE].into_boxed_slice(),
            addrs: vec![zero_storage(); n].into_boxed_slice(),
            iovs: vec![
                libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0
                };
                n
            ]
            .into_boxed_slice(),
            hdrs: (0..n).map(|_| zero_mmsghdr()).collect(),
            meta: vec![(0, None, false); n].into_boxed_slice(),
            count: 0,
        }
    }

    pub fn slots(&self) -> usize {
        self.hdrs.len()
    }

    /// Packets held from the last [`recv_batch`].
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Packet `i` and its source. `None` when `i` is out of range, the datagram was larger
    /// than a slot, or the source is not an IP address.
    pub fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let (len, src, truncated) = *self.meta.get(i)?;
        if truncated {
            return None;
        }
        let start = i * SLOT_SIZE;
        Some((self.data.get(start..start + len)?, src?))
    }
}

impl MmsgBuffers {
    /// Packet `i`'s whole slot to rewrite in place (SRTP), the packet's length in it, and its
    /// source; `None` as for [`MmsgBuffers::packet`].
    pub fn packet_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let (len, src, truncated) = *self.meta.get(i)?;
        if truncated {
            return None;
        }
        let start = i * SLOT_SIZE;
        Some((self.data.get_mut(start..start + SLOT_SIZE)?, len, src?))
    }

    /// Packet `i` is now the first `len` bytes of its slot.
    pub fn set_len(&mut self, i: usize, len: usize) {
        if let Some(m) = self.meta.get_mut(i) {
            m.0 = len.min(SLOT_SIZE);
        }
    }
}

/// Receive up to `bufs.slots()` datagrams without blocking. Returns how many; 0 when none
/// were waiting.
pub fn recv_batch(fd: RawFd, bufs: &mut MmsgBuffers) -> io::Result<usize> {
    bufs.count = 0;
    let n = bufs.slots();
    let parts = bufs
        .data
        .chunks_exact_mut(SLOT_SIZE)
        .zip(bufs.iovs.iter_mut())
        .zip(bufs.addrs.iter_mut())
        .zip(bufs.hdrs.iter_mut());
    for (((chunk, iov), addr), hdr) in parts {
        *iov = libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: SLOT_SIZE,
        };
        *hdr = zero_mmsghdr();
        hdr.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
        hdr.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_hdr.msg_iov = iov;
        hdr.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs` holds `n` mmsghdrs whose name/iov pointers point into `addrs`, `iovs` and
    // `data`, all owned by `bufs`, borrowed mutably here and not moved during the call; each
    // iovec covers exactly one SLOT_SIZE chunk. A null timeout is allowed.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            bufs.hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT | libc::MSG_WAITFORONE,
            ptr::null_mut(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(e),
        };
    }
    let got = (r as usize).min(n);
    for i in 0..got {
        let (Some(h), Some(a), Some(m)) =
            (bufs.hdrs.get(i), bufs.addrs.get(i), bufs.meta.get_mut(i))
        else {
            break;
        };
        let len = h.msg_len as usize;
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len > SLOT_SIZE;
        *m = (
            len.min(SLOT_SIZE),
            to_socket_addr(a, h.msg_hdr.msg_namelen),
            truncated,
        );
    }
    bufs.count = got;
    Ok(got)
}

/// Outgoing packets, copied in and sent per socket with `sendmmsg`.
pub struct SendBatch {
    data: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    addr_lens: Box<[libc::socklen_t]>,
    lens: Box<[usize]>,
    fds: Box<[RawFd]>,
    tags: Box<[u64]>,
    order: Vec<usize>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    count: usize,
}

/// What a flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub sent: usize,
    pub failed: usize,
}

impl SendBatch {
    pub fn new(slots: usize) -> SendBatch {
        let n = slots.max(1);
        SendBatch {
            data: vec![0u8; n * SLOT_SIZE].into_boxed_slice(),
            addrs: vec![zero_storage(); n].into_boxed_slice(),
            addr_lens: vec![0; n].into_boxed_slice(),
            lens: vec![0; n].into_boxed_slice(),
            fds: vec![-1; n].into_boxed_slice(),
            tags: vec![0; n].into_boxed_slice(),
            order: Vec::with_capacity(n),
            iovs: vec![
                libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0
                };
                n
            ]
            .into_boxed_slice(),
            hdrs: (0..n).map(|_| zero_mmsghdr()).collect(),
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_full(&self) -> bool {
        self.count >= self.lens.len()
    }

    /// Queue a copy of `pkt` to go out of socket `fd` to `dst`. `tag` is handed back for
    /// packets that fail. Returns false (nothing queued) when full or `pkt` exceeds a slot.
    pub fn push(&mut self, fd: RawFd, dst: SocketAddr, pkt: &[u8], tag: u64) -> bool {
        self.queue(fd, Some(dst), pkt, tag)
    }

    /// As [`push`](Self::push), for a socket `connect()`ed to its peer: the packet goes without
    /// a destination address, so the kernel sends on the socket's cached route instead of
    /// looking one up for every packet (Linux only does so when `msg_name` is null).
    pub fn push_connected(&mut self, fd: RawFd, pkt: &[u8], tag: u64) -> bool {
        self.queue(fd, None, pkt, tag)
    }

    fn queue(&mut self, fd: RawFd, dst: Option<SocketAddr>, pkt: &[u8], tag: u64) -> bool {
        let i = self.count;
        if pkt.len() > SLOT_SIZE {
            return false;
        }
        let start = i * SLOT_SIZE;
        let (Some(slot), Some(addr)) = (
            self.data.get_mut(start..start + pkt.len()),
            self.addrs.get_mut(i),
        ) else {
            return false;
        };
        slot.copy_from_slice(pkt);
        let alen = dst.map_or(0, |d| from_socket_addr(d, addr));
        if let (Some(l), Some(al), Some(f), Some(t)) = (
            self.lens.get_mut(i),
            self.addr_lens.get_mut(i),
            self.fds.get_mut(i),
            self.tags.get_mut(i),
        ) {
            *l = pkt.len();
            *al = alen;
            *f = fd;
            *t = tag;
            self.count += 1;
            true
        } else {
            false
        }
    }

    /// Send everything queued, one `sendmmsg` run per socket, and empty the batch. A packet
    /// the kernel refuses (full buffer, unreachable) is skipped and reported to `on_fail`.
    ///
    /// The fds given to [`push`](Self::push) must still be open.
    pub fn flush(&mut self, mut on_fail: impl FnMut(u64, &io::Error)) -> FlushStats {
        let mut stats = FlushStats::default();
        let count = self.count;
        self.count = 0;
        if count == 0 {
            return stats;
        }
        // Group by socket, keeping queue order within each socket.
        self.order.clear();
        self.order.extend(0..count);
        let fds = &self.fds;
        self.order
            .sort_unstable_by_key(|&i| (fds.get(i).copied().unwrap_or(-1), i));
        // Lay out the headers in sorted order.
        for (k, &i) in self.order.iter().enumerate() {
            let (Some(iov), Some(hdr), Some(addr), Some(&alen), Some(&len)) = (
                self.iovs.get_mut(k),
                self.hdrs.get_mut(k),
                self.addrs.get_mut(i),
                self.addr_lens.get(i),
                self.lens.get(i),
            ) else {
                continue;
            };
            let Some(chunk) = self.data.get_mut(i * SLOT_SIZE..i * SLOT_SIZE + len) else {
                continue;
            };
            *iov = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: len,
            };
            *hdr = zero_mmsghdr();
            // No address (length 0): the socket's connected peer.
            hdr.msg_hdr.msg_name = if alen == 0 {
                ptr::null_mut()
            } else {
                (addr as *mut libc::sockaddr_storage).cast()
            };
            hdr.msg_hdr.msg_namelen = alen;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        let mut k = 0;
        while k < count {
            let fd = self
                .order
                .get(k)
                .and_then(|&i| self.fds.get(i))
                .copied()
                .unwrap_or(-1);
            let mut end = k;
            while end < count
                && self.order.get(end).and_then(|&i| self.fds.get(i)).copied() == Some(fd)
            {
                end += 1;
            }
            // Each iteration sends at least one packet or skips one: bounded by the run length.
            while k < end {
                let Some(run) = self.hdrs.get_mut(k..end) else {
                    break;
                };
                // SAFETY: `run` is a slice of initialised mmsghdrs whose name/iov pointers point
                // into `addrs`, `iovs` and `data`, owned by `self`, borrowed mutably for this
                // function and not moved during the call; lengths match the copied packets.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        run.as_mut_ptr(),
                        run.len() as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if r > 0 {
                    let r = r as usize;
                    stats.sent += r;
                    k += r;
                } else {
                    let e = if r < 0 {
                        io::Error::last_os_error()
                    } else {
                        io::Error::from(io::ErrorKind::WriteZero)
                    };
                    let tag = self.order.get(k).and_then(|&i| self.tags.get(i)).copied();
                    on_fail(tag.unwrap_or(0), &e);
                    stats.failed += 1;
                    k += 1;
                }
            }
            k = end;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    fn recv_some(fd: RawFd, bufs: &mut MmsgBuffers, want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while Instant::now() < deadline {
            got = recv_batch(fd, bufs).expect("recv");
            if got >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    #[test]
    fn round_trip_v4_and_v6_addresses() {
        for s in ["127.0.0.1:40000", "[::1]:40001", "[fe80::1%2]:5"] {
            let a: SocketAddr = s.parse().expect("addr");
            let mut st = zero_storage();
            let l = from_socket_addr(a, &mut st);
            assert_eq!(to_socket_addr(&st, l), Some(a));
        }
        assert_eq!(to_socket_addr(&zero_storage(), 128), None);
    }

    #[test]
    fn batch_send_and_receive_on_loopback() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx1 = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx2 = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let dst = rx.local_addr().expect("addr");
        let mut sb = SendBatch::new(8);
        // Interleave two sockets: flush must group them and keep per-socket order.
        for i in 0..6u8 {
            let s = if i % 2 == 0 { &tx1 } else { &tx2 };
            assert!(sb.push(s.as_raw_fd(), dst, &[i; 100], u64::from(i)));
        }
        assert!(!sb.push(tx1.as_raw_fd(), dst, &[0; SLOT_SIZE + 1], 9));
        let st = sb.flush(|_, _| {});
        assert_eq!(st, FlushStats { sent: 6, failed: 0 });
        assert!(sb.is_empty());
        let mut rb = MmsgBuffers::new(16);
        assert_eq!(recv_some(rx.as_raw_fd(), &mut rb, 6), 6);
        let mut from1 = vec![];
        let mut from2 = vec![];
        for i in 0..rb.len() {
            let (p, src) = rb.packet(i).expect("packet");
            assert_eq!(p.len(), 100);
            if src == tx1.local_addr().expect("a") {
                from1.push(p[0]);
            } else {
                assert_eq!(src, tx2.local_addr().expect("a"));
                from2.push(p[0]);
            }
        }
        assert_eq!(from1, vec![0, 2, 4]);
        assert_eq!(from2, vec![1, 3, 5]);
        assert_eq!(rb.packet(6), None);
        // Nothing waiting: returns 0 without blocking.
        assert_eq!(recv_batch(rx.as_raw_fd(), &mut rb).expect("recv"), 0);
    }

    #[test]
    fn oversized_datagram_is_flagged() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        tx.send_to(&[7u8; 3000], rx.local_addr().expect("a"))
            .expect("send");
        let mut rb = MmsgBuffers::new(4);
        assert_eq!(recv_some(rx.as_raw_fd(), &mut rb, 1), 1);
        assert_eq!(rb.packet(0), None);
    }

    #[test]
    fn send_failure_is_reported_not_fatal() {
        let v4 = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut sb = SendBatch::new(4);
        // An IPv6 destination on an IPv4 socket fails (EAFNOSUPPORT/EINVAL); the next packet
        // still goes out.
        assert!(sb.push(v4.as_raw_fd(), "[::1]:9".parse().expect("a"), b"x", 41));
        assert!(sb.push(v4.as_raw_fd(), rx.local_addr().expect("a"), b"y", 42));
        let mut failed = vec![];
        let st = sb.flush(|t, _| failed.push(t));
        assert_eq!(st, FlushStats { sent: 1, failed: 1 });
        assert_eq!(failed, vec![41]);
    }
}
