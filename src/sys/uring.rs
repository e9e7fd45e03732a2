//! io_uring mechanics for the `uring` plane: one ring per worker, a multishot `RecvMsgMulti` per
//! socket fed from a provided-buffer ring, and `SendMsg` submissions from a fixed pool of send
//! slots, so the packet path allocates nothing.
//!
//! Memory the kernel reads or writes (buffer ring, receive buffers, send slots, the receive
//! `msghdr`) is allocated once and outlives every request that points at it: `Drop` cancels
//! what is in flight and waits for it before the memory goes.

use std::alloc::{self, Layout};
use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::{BufRingEntry, Fd, Fixed, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, IoUring, Probe};

use super::mmsg::{from_socket_addr, SLOT_SIZE};

/// Receive buffers in the provided-buffer ring (a power of two). A burst larger than this
/// ends a multishot receive with ENOBUFS, which is re-armed.
const BUF_COUNT: u16 = 2048;
/// Room for the `io_uring_recvmsg_out` header and the source name before the payload.
const HEADROOM: usize = 16 + mem::size_of::<libc::sockaddr_storage>();
/// Bytes per receive buffer: header, name and a packet as large as an mmsg slot.
const BUF_SIZE: usize = HEADROOM + SLOT_SIZE;
const BGID: u16 = 7;
/// Sends in flight at once, per worker.
const SEND_SLOTS: usize = 1024;
const SQ_ENTRIES: u32 = 2048;
/// Slots of the fixed-file table (sparse) a ring registers for its flows' sockets: receive
/// slot `i` uses file slot `i`, so this many flows per worker get fixed files (4 per call).
const FIXED_FILES: u32 = 1 << 16;
/// No fixed file for this descriptor.
const NOT_FIXED: u32 = u32::MAX;

const RECV: u64 = 0;
const SEND: u64 = 1;
const WAKE: u64 = 2;
const CANCEL: u64 = 3;

fn user_data(kind: u64, generation: u32, slot: u32) -> u64 {
    (kind << 62) | ((u64::from(generation) & 0x3fff_ffff) << 32) | u64::from(slot)
}

fn split(ud: u64) -> (u64, u32, u32) {
    (ud >> 62, ((ud >> 32) & 0x3fff_ffff) as u32, ud as u32)
}

/// Why io_uring cannot be used here.
#[derive(Debug, thiserror::Error)]
pub enum UringError {
    #[error("io_uring_setup: {0}")]
    Setup(io::Error),
    #[error("io_uring_register(PROBE): {0}")]
    Probe(io::Error),
    #[error("kernel lacks io_uring opcode {0}")]
    Opcode(&'static str),
    #[error("kernel lacks IORING_FEAT_EXT_ARG (timed waits)")]
    NoExtArg,
    #[error("io_uring_register(PBUF_RING): {0}")]
    BufRing(io::Error),
    #[error("multishot recvmsg: {0}")]
    Multishot(io::Error),
    #[error("cannot allocate ring memory")]
    Alloc,
}

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// `IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN` were accepted.
    pub defer_taskrun: bool,
}

fn build_ring(entries: u32) -> Result<(IoUring, bool), UringError> {
    match IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
    {
        Ok(r) => Ok((r, true)),
        // Kernels before 6.1 reject the flags with EINVAL; anything else (EPERM, ENOSYS) is
        // io_uring itself being refused.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::new(entries)
            .map(|r| (r, false))
            .map_err(UringError::Setup),
        Err(e) => Err(UringError::Setup(e)),
    }
}

/// Can this process run the `uring` plane? Makes a small ring, checks the opcodes and the
/// timed wait, and registers a small buffer ring (multishot receive needs one).
pub fn probe() -> Result<Support, UringError> {
    let (ring, defer_taskrun) = build_ring(8)?;
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(UringError::Probe)?;
    for (code, name) in [
        (opcode::RecvMsg::CODE, "RECVMSG"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::Send::CODE, "SEND"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ] {
        if !p.is_supported(code) {
            return Err(UringError::Opcode(name));
        }
    }
    if !ring.params().is_feature_ext_arg() {
        return Err(UringError::NoExtArg);
    }
    let mut ring = ring;
    let bufs = BufRing::new(&ring, 8, BUF_SIZE)?;
    let (multishot, settled) = probe_multishot(&mut ring);
    if settled {
        bufs.unregister(&ring);
    } else {
        // The receive may still point at the buffers: never free memory the kernel could write.
        mem::forget(bufs);
    }
    multishot?;
    Ok(Support { defer_taskrun })
}

/// Receive one datagram with a multishot `RecvMsgMulti` on a loopback socket: kernels with
/// buffer rings (5.19) but without multishot recvmsg (6.0) fail here, not on live traffic.
/// Without a usable loopback the check is skipped.
/// Returns the outcome and whether the receive is known to be finished.
fn probe_multishot(ring: &mut IoUring) -> (Result<(), UringError>, bool) {
    let Ok(sock) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return (Ok(()), true);
    };
    let Ok(me) = sock.local_addr() else {
        return (Ok(()), true);
    };
    let mut hdr = Box::new(zeroed_msghdr());
    hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    let recv = opcode::RecvMsgMulti::new(Fd(fd), &*hdr, BGID)
        .build()
        .user_data(1);
    // SAFETY: `hdr` and the registered buffers outlive the request: it is cancelled and its
    // last completion awaited below before either is dropped.
    if unsafe { ring.submission().push(&recv) }.is_err() {
        return (Ok(()), true);
    }
    if let Err(e) = ring.submit() {
        return (Err(UringError::Probe(e)), false);
    }
    // Without the datagram the wait below still ends: the cancel finishes the receive.
    let _ = sock.send_to(b"probe", me);
    let ts = Timespec::new().sec(1);
    let mut outcome: Option<Result<(), UringError>> = None;
    let mut done = false;
    for _ in 0..4 {
        let args = SubmitArgs::new().timespec(&ts);
        let _ = ring.submitter().submit_with_args(1, &args);
        for cqe in ring.completion() {
            if cqe.user_data() != 1 {
                continue;
            }
            if outcome.is_none() {
                outcome = Some(if cqe.result() >= 0 {
                    Ok(())
                } else {
                    Err(UringError::Multishot(io::Error::from_raw_os_error(
                        -cqe.result(),
                    )))
                });
            }
            if !cqueue::more(cqe.flags()) {
                done = true;
            }
        }
        if done {
            break;
        }
        let cancel = opcode::AsyncCancel::new(1).build().user_data(2);
        // SAFETY: a cancel points at no memory.
        let _ = unsafe { ring.submission().push(&cancel) };
    }
    if !done {
        mem::forget(hdr);
    }
    (outcome.unwrap_or(Ok(())), done)
}

/// A page-aligned, zeroed allocation the kernel may read and write.
struct Region {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Region {
    fn new(size: usize) -> Result<Region, UringError> {
        let layout = Layout::from_size_align(size.max(1), 4096).map_err(|_| UringError::Alloc)?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(UringError::Alloc)?;
        Ok(Region { ptr, layout })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A provided-buffer ring: `count` entries pointing into `count` buffers of `size` bytes.
struct BufRing {
    entries: Region,
    bufs: Region,
    count: u16,
    size: usize,
    tail: u16,
}

impl BufRing {
    fn new(ring: &IoUring, count: u16, size: usize) -> Result<BufRing, UringError> {
        let entries = Region::new(usize::from(count) * mem::size_of::<BufRingEntry>())?;
        let bufs = Region::new(usize::from(count) * size)?;
        let mut br = BufRing {
            entries,
            bufs,
            count,
            size,
            tail: 0,
        };
        // SAFETY: the entry region is page aligned, holds `count` entries and lives as long as
        // the registration (unregistered in `Ring::drop` before the memory is freed, or right
        // away in `probe`).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                br.entries.ptr.as_ptr() as u64,
                count,
                BGID,
                0,
            )
        }
        .map_err(UringError::BufRing)?;
        for bid in 0..count {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    fn unregister(&self, ring: &IoUring) {
        let _ = ring.submitter().unregister_buf_ring(BGID);
    }

    /// Hand buffer `bid` back to the kernel (visible after `publish`).
    fn push(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let idx = usize::from(self.tail & (self.count - 1));
        let base = self.entries.ptr.as_ptr() as *mut BufRingEntry;
        // SAFETY: idx < count, so the entry is inside the region; the kernel only reads
        // entries between its head and our published tail, and this one is past the tail.
        let e = unsafe { &mut *base.add(idx) };
        // SAFETY: bid < count, so the buffer is inside the buffer region.
        let addr = unsafe { self.bufs.ptr.as_ptr().add(usize::from(bid) * self.size) };
        e.set_addr(addr as u64);
        e.set_len(self.size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        let base = self.entries.ptr.as_ptr() as *const BufRingEntry;
        // SAFETY: `base` is the first entry of a registered, initialised ring; the tail field
        // overlays its reserved word, a naturally aligned u16 the kernel reads atomically.
        let tail = unsafe { &*(BufRingEntry::tail(base) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Buffer `bid`, whole, to rewrite a packet in place (SRTP).
    fn data_mut(&mut self, bid: u16) -> Option<&mut [u8]> {
        if bid >= self.count {
            return None;
        }
        // SAFETY: in bounds (checked above); the caller holds `bid` from a completion and has
        // not pushed it back yet, so the kernel is not touching it, and `&mut self` makes this
        // the only view of it.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                self.bufs.ptr.as_ptr().add(usize::from(bid) * self.size),
                self.size,
            )
        })
    }

    /// The first `len` bytes of buffer `bid`.
    fn data(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.count || len > self.size {
            return None;
        }
        // SAFETY: in bounds (checked above); the caller holds `bid` from a completion and has
        // not pushed it back yet, so the kernel is not writing it.
        Some(unsafe {
            std::slice::from_raw_parts(
                self.bufs.ptr.as_ptr().add(usize::from(bid) * self.size),
                len,
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Free,
    Armed,
    Cancelling,
    /// The kernel refused the receive with a non-transient error; not re-armed.
    Dead,
}

struct RecvSlot {
    token: u64,
    fd: RawFd,
    generation: u32,
    state: RecvState,
    /// The socket is in the ring's fixed-file table at this slot's index.
    fixed: bool,
}

/// One send in flight: everything its `SendMsg` points at.
#[repr(C)]
struct SendSlot {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: libc::sockaddr_storage,
    tag: u64,
    buf: [u8; SLOT_SIZE],
}

/// A received packet still holding its buffer.
#[derive(Debug, Clone, Copy)]
struct Rx {
    slot: u32,
    bid: u16,
    len: u32,
    /// The payload's length once rewritten in place (SRTP), if it was.
    rewritten: Option<u16>,
}

/// One worker's ring with its receive registrations and send pool. Not `Send`: make it on the
/// worker thread (a single-issuer ring belongs to the thread that made it).
pub struct Ring {
    // Field order matters for Drop: the ring closes before the memory below is freed.
    ring: IoUring,
    bufs: BufRing,
    /// Read by the kernel when each multishot receive is armed (name and control lengths).
    recv_hdr: Box<libc::msghdr>,
    recv: Vec<RecvSlot>,
    free_recv: Vec<u32>,
    tokens: HashMap<u64, u32>,
    send: Box<[SendSlot]>,
    free_send: Vec<u32>,
    sends_in_flight: usize,
    queued: usize,
    /// Packets of the current batch, then those reaped while it is processed.
    rx: Vec<Rx>,
    incoming: Vec<Rx>,
    failed: Vec<u64>,
    rearm: Vec<u32>,
    wake_fd: Option<RawFd>,
    wake_armed: bool,
    woke: bool,
    pub enobufs: u64,
    pub defer_taskrun: bool,
    /// Size of the registered fixed-file table, 0 without one (see [`Ring::use_fixed_files`]).
    fixed_cap: u32,
    /// Socket descriptor -> its fixed-file index ([`NOT_FIXED`]: none), for the sends.
    fixed_of_fd: Vec<u32>,
}

fn zeroed_send_slot() -> SendSlot {
    // SAFETY: SendSlot is plain old data (integers, arrays and raw pointers); zero is valid.
    unsafe { mem::zeroed() }
}

/// An error a `connect()`ed UDP socket reports once when an ICMP error came back for what it
/// sent (the peer's port closed, its host unreachable): about the peer, not the socket, so the
/// receive is armed again. Unconnected sockets never see these (no `IP_RECVERR`).
pub fn is_peer_error(errno: i32) -> bool {
    matches!(
        errno,
        libc::ECONNREFUSED
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::ENETDOWN
            | libc::EPROTO
            | libc::EMSGSIZE
    )
}

fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is plain old data; all-zero (null pointers, zero lengths) is valid.
    unsafe { mem::zeroed() }
}

/// Read a kernel-written `sockaddr` from bytes (AF_INET/AF_INET6 only).
fn addr_from_name(name: &[u8]) -> Option<SocketAddr> {
    let fam = i32::from(u16::from_ne_bytes([*name.first()?, *name.get(1)?]));
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    let word = |a: usize| -> Option<[u8; 4]> { name.get(a..a + 4)?.try_into().ok() };
    match fam {
        libc::AF_INET => Some(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(word(4)?),
            port,
        ))),
        libc::AF_INET6 => {
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                u32::from_ne_bytes(word(4)?),
                u32::from_ne_bytes(word(24)?),
            )))
        }
        _ => None,
    }
}

impl Ring {
    /// Make the ring, its buffer ring and its send pool.
    pub fn new() -> Result<Ring, UringError> {
        let (ring, defer_taskrun) = build_ring(SQ_ENTRIES)?;
        let bufs = BufRing::new(&ring, BUF_COUNT, BUF_SIZE)?;
        let mut recv_hdr = Box::new(zeroed_msghdr());
        recv_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let send: Box<[SendSlot]> = (0..SEND_SLOTS).map(|_| zeroed_send_slot()).collect();
        Ok(Ring {
            ring,
            bufs,
            recv_hdr,
            recv: Vec::new(),
            free_recv: Vec::new(),
            tokens: HashMap::new(),
            send,
            free_send: (0..SEND_SLOTS as u32).rev().collect(),
            sends_in_flight: 0,
            queued: 0,
            rx: Vec::with_capacity(usize::from(BUF_COUNT)),
            incoming: Vec::with_capacity(usize::from(BUF_COUNT)),
            failed: Vec::with_capacity(SEND_SLOTS),
            rearm: Vec::with_capacity(64),
            wake_fd: None,
            wake_armed: false,
            woke: false,
            enobufs: 0,
            defer_taskrun,
            fixed_cap: 0,
            fixed_of_fd: Vec::new(),
        })
    }

    /// Register a (sparse) fixed-file table, before any socket is registered: sockets then go
    /// in it, and their receives and sends name the table index instead of the descriptor,
    /// which saves the kernel a file lookup and reference per request. False when the kernel
    /// refused it (the ring then works with descriptors, as before).
    pub fn use_fixed_files(&mut self) -> bool {
        if !self.tokens.is_empty() {
            return false;
        }
        for cap in [FIXED_FILES, 4096] {
            match self.ring.submitter().register_files_sparse(cap) {
                Ok(()) => {
                    self.fixed_cap = cap;
                    return true;
                }
                Err(e) => tracing::debug!(cap, error = %e, "io_uring fixed-file table refused"),
            }
        }
        false
    }

    /// Put `fd` in the fixed-file table at `slot`, when there is one and room.
    fn fix_file(&mut self, slot: u32, fd: RawFd) -> bool {
        let Ok(i) = usize::try_from(fd) else {
            return false;
        };
        if slot >= self.fixed_cap || i >= 1 << 22 {
            return false;
        }
        if let Err(e) = self.ring.submitter().register_files_update(slot, &[fd]) {
            tracing::debug!(fd, error = %e, "socket not put in the fixed-file table");
            return false;
        }
        if self.fixed_of_fd.len() <= i {
            self.fixed_of_fd.resize(i + 1, NOT_FIXED);
        }
        if let Some(f) = self.fixed_of_fd.get_mut(i) {
            *f = slot;
        }
        true
    }

    /// Take `fd` out of the fixed-file table (slot `slot`): the table's reference would keep
    /// the socket, and its port, open after the caller closes it. A request still using it
    /// keeps the file until it completes.
    fn unfix_file(&mut self, slot: u32, fd: RawFd) {
        if let Some(f) = usize::try_from(fd)
            .ok()
            .and_then(|i| self.fixed_of_fd.get_mut(i))
        {
            *f = NOT_FIXED;
        }
        if let Err(e) = self.ring.submitter().register_files_update(slot, &[-1]) {
            tracing::warn!(fd, error = %e, "cannot take a socket out of the fixed-file table");
        }
    }

    /// The fixed-file index of `fd`, if it has one.
    fn fixed_index(&self, fd: RawFd) -> Option<u32> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fixed_of_fd.get(i).copied())
            .filter(|&f| f != NOT_FIXED)
    }

    /// Queue an SQE, submitting first if the queue is full.
    fn push(&mut self, e: &io_uring::squeue::Entry) -> bool {
        for _ in 0..2 {
            // SAFETY: every entry built here points only at memory owned by `self` that stays
            // put until the entry's completion (see the type's doc), or at nothing.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return true;
            }
            let _ = self.ring.submit();
        }
        false
    }

    fn arm_recv(&mut self, slot: u32) {
        let Some((fd, generation, fixed)) = self
            .recv
            .get(slot as usize)
            .map(|s| (s.fd, s.generation, s.fixed))
        else {
            return;
        };
        let e = if fixed {
            opcode::RecvMsgMulti::new(Fixed(slot), &*self.recv_hdr, BGID).build()
        } else {
            opcode::RecvMsgMulti::new(Fd(fd), &*self.recv_hdr, BGID).build()
        }
        .user_data(user_data(RECV, generation, slot));
        if !self.push(&e) {
            tracing::error!(fd, "io_uring submission queue full; socket not armed");
        }
    }

    fn arm_wake(&mut self) {
        if let Some(fd) = self.wake_fd {
            let e = opcode::PollAdd::new(Fd(fd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(user_data(WAKE, 0, 0));
            self.wake_armed = self.push(&e);
        }
    }

    /// Report readiness of `fd` (the worker's wake eventfd) through `poll`.
    pub fn watch_wake(&mut self, fd: RawFd) {
        self.wake_fd = Some(fd);
        self.arm_wake();
    }

    /// Start receiving on `fd`; its packets come back tagged with `token`. `fd` must stay open
    /// until `deregister(token)`.
    pub fn register(&mut self, token: u64, fd: RawFd) {
        self.deregister(token);
        let slot = match self.free_recv.pop() {
            Some(s) => s,
            None => {
                self.recv.push(RecvSlot {
                    token,
                    fd,
                    generation: 0,
                    state: RecvState::Free,
                    fixed: false,
                });
                (self.recv.len() - 1) as u32
            }
        };
        let fixed = self.fix_file(slot, fd);
        if let Some(s) = self.recv.get_mut(slot as usize) {
            s.token = token;
            s.fd = fd;
            s.generation = s.generation.wrapping_add(1) & 0x3fff_ffff;
            s.state = RecvState::Armed;
            s.fixed = fixed;
        }
        self.tokens.insert(token, slot);
        self.arm_recv(slot);
    }

    /// Stop receiving for `token`. The cancel is submitted at once, so the socket can be
    /// closed right after.
    pub fn deregister(&mut self, token: u64) {
        let Some(slot) = self.tokens.remove(&token) else {
            return;
        };
        let Some(s) = self.recv.get_mut(slot as usize) else {
            return;
        };
        let (fd, fixed) = (s.fd, mem::take(&mut s.fixed));
        if s.state == RecvState::Dead {
            s.state = RecvState::Free;
            self.free_recv.push(slot);
            if fixed {
                self.unfix_file(slot, fd);
            }
            return;
        }
        s.state = RecvState::Cancelling;
        let target = user_data(RECV, s.generation, slot);
        let e = opcode::AsyncCancel::new(target)
            .build()
            .user_data(user_data(CANCEL, 0, 0));
        self.push(&e);
        // Submit and run deferred completions without waiting, so the cancelled receive drops
        // its reference to the socket now and the port is free as soon as the caller closes it.
        let ts = Timespec::new();
        let args = SubmitArgs::new().timespec(&ts);
        let _ = self.ring.submitter().submit_with_args(1, &args);
        if fixed {
            self.unfix_file(slot, fd);
        }
    }

    /// Return the current batch's buffers, submit what is queued, wait up to `timeout_ms` for a
    /// completion, and collect received packets. Returns (packets, woken).
    pub fn poll(&mut self, timeout_ms: u32) -> io::Result<(usize, bool)> {
        for rx in self.rx.drain(..) {
            self.bufs.push(rx.bid);
        }
        self.bufs.publish();
        if self.incoming.is_empty() {
            let ts = Timespec::new()
                .sec(u64::from(timeout_ms / 1000))
                .nsec((timeout_ms % 1000) * 1_000_000);
            let args = SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e),
            }
        } else {
            let _ = self.ring.submit();
        }
        self.reap();
        mem::swap(&mut self.rx, &mut self.incoming);
        let woke = mem::take(&mut self.woke);
        Ok((self.rx.len(), woke))
    }

    fn reap(&mut self) {
        self.rearm.clear();
        let mut wake_rearm = false;
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let (kind, generation, slot) = split(cqe.user_data());
            let res = cqe.result();
            let flags = cqe.flags();
            match kind {
                RECV => {
                    let bid = cqueue::buffer_select(flags);
                    let live = self
                        .recv
                        .get(slot as usize)
                        .filter(|s| s.generation == generation)
                        .map(|s| s.state);
                    match (bid, live) {
                        (Some(bid), Some(RecvState::Armed)) if res >= 0 => self.incoming.push(Rx {
                            slot,
                            bid,
                            len: res as u32,
                            rewritten: None,
                        }),
                        (Some(bid), _) => self.bufs.push(bid),
                        (None, _) => {}
                    }
                    if !cqueue::more(flags) {
                        match live {
                            Some(RecvState::Armed) => {
                                if res == -libc::ENOBUFS {
                                    self.enobufs += 1;
                                }
                                if res >= 0
                                    || res == -libc::ENOBUFS
                                    || res == -libc::EINTR
                                    || res == -libc::EAGAIN
                                    || res == -libc::ECANCELED
                                    || is_peer_error(-res)
                                {
                                    self.rearm.push(slot);
                                } else if let Some(s) = self.recv.get_mut(slot as usize) {
                                    tracing::error!(
                                        fd = s.fd,
                                        error = %io::Error::from_raw_os_error(-res),
                                        "io_uring receive failed; socket no longer served"
                                    );
                                    s.state = RecvState::Dead;
                                }
                            }
                            Some(RecvState::Cancelling) => {
                                if let Some(s) = self.recv.get_mut(slot as usize) {
                                    s.state = RecvState::Free;
                                    self.free_recv.push(slot);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                SEND => {
                    self.sends_in_flight = self.sends_in_flight.saturating_sub(1);
                    if res < 0 {
                        if let Some(s) = self.send.get(slot as usize) {
                            if self.failed.len() < self.failed.capacity() {
                                self.failed.push(s.tag);
                            }
                        }
                    }
                    self.free_send.push(slot);
                }
                WAKE => {
                    self.woke = true;
                    if !cqueue::more(flags) {
                        wake_rearm = true;
                    }
                }
                _ => {}
            }
        }
        drop(cq);
        self.bufs.publish();
        for k in 0..self.rearm.len() {
            if let Some(slot) = self.rearm.get(k).copied() {
                self.arm_recv(slot);
            }
        }
        if wake_rearm {
            self.arm_wake();
        }
    }

    /// The flow token of packet `i` of the current batch.
    pub fn token(&self, i: usize) -> Option<u64> {
        let rx = self.rx.get(i)?;
        Some(self.recv.get(rx.slot as usize)?.token)
    }

    /// Token, payload and source of packet `i` of the current batch (as rewritten, if it was);
    /// `None` when unusable (truncated, or from a non-IP source).
    pub fn packet(&self, i: usize) -> Option<(u64, &[u8], SocketAddr)> {
        let rx = self.rx.get(i)?;
        let token = self.recv.get(rx.slot as usize)?.token;
        let (bid, start, len, src) = self.payload_at(i)?;
        let buf = self.bufs.data(bid, BUF_SIZE)?;
        Some((token, buf.get(start..start + len)?, src))
    }

    /// Where packet `i`'s payload starts in its buffer, how long it is now, and its source;
    /// `None` when unusable.
    fn payload_at(&self, i: usize) -> Option<(u16, usize, usize, SocketAddr)> {
        let rx = self.rx.get(i)?;
        let buf = self.bufs.data(rx.bid, rx.len as usize)?;
        let out = io_uring::types::RecvMsgOut::parse(buf, &self.recv_hdr).ok()?;
        if out.is_payload_truncated() || out.is_name_data_truncated() {
            return None;
        }
        let src = addr_from_name(out.name_data())?;
        let payload = out.payload_data();
        let start = (payload.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
        let len = rx.rewritten.map_or(payload.len(), usize::from);
        Some((rx.bid, start, len, src))
    }

    /// Packet `i`'s payload to rewrite in place: the rest of its buffer from the payload on
    /// (at least [`SLOT_SIZE`] bytes), the payload's length, its source.
    pub fn packet_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)> {
        let (bid, start, len, src) = self.payload_at(i)?;
        Some((self.bufs.data_mut(bid)?.get_mut(start..)?, len, src))
    }

    /// Packet `i`'s payload is now `len` bytes (after [`Ring::packet_mut`]).
    pub fn set_len(&mut self, i: usize, len: usize) {
        if let Some(rx) = self.rx.get_mut(i) {
            rx.rewritten = u16::try_from(len)
                .ok()
                .filter(|&l| usize::from(l) <= SLOT_SIZE);
        }
    }

    /// Queue a copy of packet `i` to leave `fd` towards `dst`. False when it could not be
    /// queued (no free send slot even after reaping, or an unusable packet).
    pub fn forward(&mut self, i: usize, fd: RawFd, dst: SocketAddr, tag: u64) -> bool {
        self.forward_to(i, fd, Some(dst), tag)
    }

    /// As [`forward`](Self::forward), out of a socket `connect()`ed to its peer: a plain `Send`
    /// without a destination, so the kernel uses the socket's cached route (it looks one up for
    /// every packet that names an address) and copies no `msghdr` in.
    pub fn forward_connected(&mut self, i: usize, fd: RawFd, tag: u64) -> bool {
        self.forward_to(i, fd, None, tag)
    }

    fn forward_to(&mut self, i: usize, fd: RawFd, dst: Option<SocketAddr>, tag: u64) -> bool {
        let fixed = self.fixed_index(fd);
        if self.free_send.is_empty() {
            // UDP sends complete at submission: submit, then collect their slots.
            let _ = self.ring.submit();
            self.queued = 0;
            self.reap();
        }
        let Some(rx) = self.rx.get(i).copied() else {
            return false;
        };
        let Some(buf) = self.bufs.data(rx.bid, rx.len as usize) else {
            return false;
        };
        let Ok(out) = io_uring::types::RecvMsgOut::parse(buf, &self.recv_hdr) else {
            return false;
        };
        let mut payload = out.payload_data();
        if out.is_payload_truncated() {
            return false;
        }
        if let Some(n) = rx.rewritten {
            // Rewritten in place (SRTP): the payload runs on into the buffer's room.
            let start = (payload.as_ptr() as usize).checked_sub(buf.as_ptr() as usize);
            let Some(p) = start.and_then(|start| {
                let b = self.bufs.data(rx.bid, BUF_SIZE)?;
                b.get(start..start + usize::from(n))
            }) else {
                return false;
            };
            payload = p;
        }
        let len = payload.len();
        if len > SLOT_SIZE {
            return false;
        }
        // Copy the payload into a send slot: the receive buffer goes back to the kernel on the
        // next poll, maybe before this send completes.
        let Some(idx) = self.free_send.pop() else {
            return false;
        };
        let Some(s) = self.send.get_mut(idx as usize) else {
            return false;
        };
        let Some(dst_buf) = s.buf.get_mut(..len) else {
            self.free_send.push(idx);
            return false;
        };
        dst_buf.copy_from_slice(payload);
        s.tag = tag;
        let e = match dst {
            Some(dst) => {
                let alen = from_socket_addr(dst, &mut s.addr);
                s.iov.iov_base = s.buf.as_mut_ptr().cast();
                s.iov.iov_len = len;
                s.hdr = zeroed_msghdr();
                s.hdr.msg_name = (&mut s.addr as *mut libc::sockaddr_storage).cast();
                s.hdr.msg_namelen = alen;
                s.hdr.msg_iov = &mut s.iov;
                s.hdr.msg_iovlen = 1;
                match fixed {
                    Some(f) => opcode::SendMsg::new(Fixed(f), &s.hdr).build(),
                    None => opcode::SendMsg::new(Fd(fd), &s.hdr).build(),
                }
            }
            None => match fixed {
                Some(f) => opcode::Send::new(Fixed(f), s.buf.as_ptr(), len as u32).build(),
                None => opcode::Send::new(Fd(fd), s.buf.as_ptr(), len as u32).build(),
            },
        }
        .user_data(user_data(SEND, 0, idx));
        if self.push(&e) {
            self.sends_in_flight += 1;
            self.queued += 1;
            true
        } else {
            self.free_send.push(idx);
            false
        }
    }

    /// Submit queued sends; report the tags of sends that failed since the last flush.
    pub fn flush(&mut self, failed: &mut dyn FnMut(u64)) -> usize {
        let _ = self.ring.submit();
        for t in self.failed.drain(..) {
            failed(t);
        }
        mem::take(&mut self.queued)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let tokens: Vec<u64> = self.tokens.keys().copied().collect();
        for t in tokens {
            self.deregister(t);
        }
        // No re-arming of the wake poll once it is cancelled.
        self.wake_fd = None;
        if self.wake_armed {
            let e = opcode::AsyncCancel::new(user_data(WAKE, 0, 0))
                .build()
                .user_data(user_data(CANCEL, 0, 0));
            self.push(&e);
            let _ = self.ring.submit();
        }
        // Wait (bounded) for cancelled receives and sends to finish with our memory.
        for _ in 0..50 {
            let busy = self.sends_in_flight > 0
                || self.recv.iter().any(|s| s.state == RecvState::Cancelling);
            if !busy {
                break;
            }
            let _ = self.poll(10);
        }
        self.bufs.unregister(&self.ring);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    #[test]
    fn user_data_round_trips() {
        let ud = user_data(SEND, 0x1234_5678, 77);
        assert_eq!(split(ud), (SEND, 0x1234_5678 & 0x3fff_ffff, 77));
        assert_eq!(split(user_data(WAKE, 0, 0)).0, WAKE);
    }

    #[test]
    fn parses_names() {
        let v4: SocketAddr = "10.1.2.3:4000".parse().expect("addr");
        let mut s = zeroed_send_slot();
        let len = from_socket_addr(v4, &mut s.addr) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|k| {
                let p = (&s.addr as *const libc::sockaddr_storage).cast::<u8>();
                // SAFETY: k < len <= size_of::<sockaddr_storage>().
                unsafe { *p.add(k) }
            })
            .collect();
        assert_eq!(addr_from_name(&bytes), Some(v4));
        assert_eq!(addr_from_name(&[0, 0]), None);
    }

    /// Receive through the ring and forward back out, when io_uring is available here.
    #[test]
    fn receives_and_forwards() {
        receives_and_forwards_with(false, false);
    }

    /// The same with the socket in the fixed-file table: receives and sends name its index.
    #[test]
    fn receives_and_forwards_with_fixed_files() {
        receives_and_forwards_with(true, false);
    }

    /// Out of a socket connected to its peer, without a destination (and with fixed files).
    #[test]
    fn forwards_on_a_connected_socket() {
        receives_and_forwards_with(false, true);
        receives_and_forwards_with(true, true);
    }

    fn receives_and_forwards_with(fixed: bool, connected: bool) {
        // Refused here (seccomp) or too old: the fallback is tested elsewhere.
        if !crate::testkit::skip_unless(probe().is_ok(), "io_uring is refused here") {
            return;
        }
        let mut ring = Ring::new().expect("ring");
        if fixed {
            assert!(ring.use_fixed_files(), "fixed-file table");
        }
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let relay = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // A connected relay socket only hears its peer: it sends back to `a`.
        let b = if connected {
            relay
                .connect(a.local_addr().expect("addr"))
                .expect("connect");
            a.try_clone().expect("clone")
        } else {
            UdpSocket::bind("127.0.0.1:0").expect("bind")
        };
        relay.set_nonblocking(true).expect("nb");
        ring.register(42, relay.as_raw_fd());
        assert_eq!(ring.fixed_index(relay.as_raw_fd()).is_some(), fixed);
        ring.flush(&mut |_| {});
        for k in 0..100u8 {
            a.send_to(&[k; 172], relay.local_addr().expect("addr"))
                .expect("send");
        }
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(2);
        while got < 100 && Instant::now() < deadline {
            let (n, _) = ring.poll(50).expect("poll");
            for i in 0..n {
                let (token, pkt, src) = ring.packet(i).expect("packet");
                assert_eq!(token, 42);
                assert_eq!(pkt, &[got as u8; 172][..]);
                assert_eq!(src, a.local_addr().expect("addr"));
                let fd = relay.as_raw_fd();
                if connected {
                    assert!(ring.forward_connected(i, fd, 1));
                } else {
                    assert!(ring.forward(i, fd, b.local_addr().expect("a"), 1));
                }
                got += 1;
            }
            ring.flush(&mut |_| panic!("send failed"));
        }
        assert_eq!(got, 100);
        b.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut buf = [0u8; 400];
        for k in 0..100u8 {
            let (n, from) = b.recv_from(&mut buf).expect("recv");
            assert_eq!(&buf[..n], &[k; 172][..]);
            assert_eq!(from, relay.local_addr().expect("addr"));
        }
        // Deregistering releases the socket: its port can be bound again. The cancel is submitted
        // at once, but on a loaded machine its completion (which drops the ring's reference) may
        // come a moment later; a ring that kept the socket would hold the port for good.
        let port = relay.local_addr().expect("addr").port();
        ring.deregister(42);
        assert_eq!(ring.fixed_index(relay.as_raw_fd()), None);
        drop(relay);
        let deadline = Instant::now() + Duration::from_secs(2);
        let rebound = loop {
            match UdpSocket::bind(("127.0.0.1", port)) {
                Ok(s) => break Ok(s),
                Err(e) if Instant::now() >= deadline => break Err(e),
                Err(_) => {
                    let _ = ring.poll(10);
                }
            }
        };
        rebound.expect("port free after deregister");
    }
}
