//! One AF_XDP socket bound to one device rx queue, with its own UMEM.
//!
//! Frame ownership, which keeps the `&mut [u8]` views sound: a frame is either the kernel's
//! (on the fill ring, in the rx ring not yet read, on the tx ring until completed) or ours
//! (the `free` list, or a frame read from rx into an [`RxBatch`] until the batch is released
//! and the frame recycled or transmitted). Only our frames are ever viewed: a free frame one at
//! a time by [`XskSocket::send`], the frames of a batch together, each in its own UMEM chunk.

use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig};

use super::area::Area;
use super::{Verdict, XskError, XskStats};

/// `SOL_XDP` / `XDP_OPTIONS` / `XDP_OPTIONS_ZEROCOPY` from `<linux/if_xdp.h>`.
const SOL_XDP: libc::c_int = 283;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// An AF_XDP socket on (ifindex, queue). Register it with
/// [`crate::sys::xdp::XdpTable::register_xsk`] to receive; poll its fd (readable when frames
/// arrived) to wait.
pub struct XskSocket {
    // Field order is drop order: the rings (their mappings), then the socket, then the memory.
    rx: RingRx,
    tx: RingTx,
    fq: DeviceQueue,
    umem: Umem,
    area: Area,
    frame_size: u32,
    /// Frames that are ours and unused, by chunk address.
    free: Vec<u64>,
    /// Frames posted to the fill ring that have not come back through rx.
    filled: u32,
    /// How many frames the fill ring is kept stocked with; the rest serve transmission.
    fill_target: u32,
    /// The frames of the current [`RxBatch`] (empty between batches), each in its own chunk.
    batch: Vec<XdpDesc>,
    /// What becomes of each frame of `batch` when it is released.
    verdicts: Vec<Verdict>,
    /// By chunk index: the chunk is in `batch` (so no second descriptor can alias it).
    in_batch: Vec<bool>,
    /// Scratch list of received frames to transmit in place.
    to_send: Vec<XdpDesc>,
    /// Frames were queued by [`XskSocket::send`] since the last [`XskSocket::flush`].
    kick_due: bool,
    ifindex: u32,
    queue: u32,
    zero_copy: bool,
    /// Why binding in zero-copy mode failed, when it did.
    zero_copy_refused: Option<String>,
}

/// Room kept for this many frames per batch (more grows the scratch lists once).
const BATCH_CAPACITY: usize = 64;

/// The bind flags tried in turn.
const ZEROCOPY: u16 = SocketConfig::XDP_BIND_ZEROCOPY;
const COPY: u16 = SocketConfig::XDP_BIND_COPY;

/// A bound socket's UMEM and rings, before the socket is assembled.
struct Rings {
    rx: RingRx,
    tx: RingTx,
    fq: DeviceQueue,
    umem: Umem,
    zero_copy: bool,
}

impl Rings {
    /// Register `area` as a UMEM and bind a socket to (ifindex, queue) with `bind_flags`.
    fn new(
        area: &Area,
        ifindex: u32,
        queue: u32,
        frames: u32,
        frame_size: u32,
        bind_flags: u16,
    ) -> Result<Rings, XskError> {
        let config = UmemConfig {
            fill_size: frames,
            complete_size: frames,
            frame_size,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: the area is a page-aligned mapping of frames * frame_size bytes, and the
        // socket keeps it mapped until after the UMEM and its socket are dropped (field order;
        // on failure here everything made from it is dropped before the caller's area).
        let umem = unsafe { Umem::new(config, area.as_slice_ptr()) }
            .map_err(sys("registering the UMEM"))?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex)
            .map_err(sys("looking up the device"))?;
        info.set_queue(queue);
        let sock = Socket::with_shared(&info, &umem).map_err(sys("creating the socket"))?;
        let fq = umem
            .fq_cq(&sock)
            .map_err(sys("setting up the fill/completion rings"))?;
        let ring = NonZeroU32::new(frames);
        let user = umem
            .rx_tx(
                &sock,
                &SocketConfig {
                    rx_size: ring,
                    tx_size: ring,
                    bind_flags,
                },
            )
            .map_err(sys("setting up the rx/tx rings"))?;
        let rx = user.map_rx().map_err(sys("mapping the rx ring"))?;
        let tx = user.map_tx().map_err(sys("mapping the tx ring"))?;
        umem.bind(&user)
            .map_err(sys(if bind_flags & ZEROCOPY != 0 {
                "binding to the device queue in zero-copy mode"
            } else {
                "binding to the device queue"
            }))?;
        let zero_copy = zero_copy(user.as_raw_fd());
        Ok(Rings {
            rx,
            tx,
            fq,
            umem,
            zero_copy,
        })
    }
}

// SAFETY: every part is owned by the socket: the rings and the UMEM point only into mappings
// the socket owns (the ring mappings, `area`), and nothing is shared with another thread. Moving
// the whole socket to a worker thread is sound; it is not Sync (every method takes &mut self).
unsafe impl Send for XskSocket {}

fn sys(what: &'static str) -> impl FnOnce(xdpilone::Errno) -> XskError {
    move |e| XskError::Sys {
        what,
        source: std::io::Error::from_raw_os_error(e.get_raw().abs()),
    }
}

impl XskSocket {
    /// A socket on rx queue `queue` of device `ifindex`, with a UMEM of `frames` frames of
    /// `frame_size` bytes (both powers of two; the frame size 2048 or 4096). Half the frames
    /// stock the fill ring for receiving, the other half serve [`XskSocket::send`].
    pub fn bind(
        ifindex: u32,
        queue: u32,
        frames: u32,
        frame_size: u32,
    ) -> Result<XskSocket, XskError> {
        if !frames.is_power_of_two() || frames < 2 {
            return Err(XskError::Config(format!(
                "{frames} frames: must be a power of two, at least 2"
            )));
        }
        if !matches!(frame_size, 2048 | 4096) {
            return Err(XskError::Config(format!(
                "frame size {frame_size}: must be 2048 or 4096"
            )));
        }
        let len = usize::try_from(u64::from(frames) * u64::from(frame_size))
            .map_err(|_| XskError::Config("UMEM too large".into()))?;
        let area = Area::new(len).map_err(|source| XskError::Sys {
            what: "mapping the UMEM",
            source,
        })?;
        // Zero-copy first, so that a driver that has it says so (and why not, when it
        // refuses); then copy mode, which every device has.
        let (rings, zero_copy_refused) =
            match Rings::new(&area, ifindex, queue, frames, frame_size, ZEROCOPY) {
                Ok(r) => (r, None),
                Err(zc) => (
                    Rings::new(&area, ifindex, queue, frames, frame_size, COPY)?,
                    Some(zc.to_string()),
                ),
            };
        let Rings {
            rx,
            tx,
            fq,
            umem,
            zero_copy,
        } = rings;
        let fill_target = frames / 2;
        let free: Vec<u64> = (0..frames)
            .rev()
            .map(|i| u64::from(i) * u64::from(frame_size))
            .collect();
        let mut xsk = XskSocket {
            rx,
            tx,
            fq,
            umem,
            area,
            frame_size,
            free,
            filled: 0,
            fill_target,
            batch: Vec::with_capacity(BATCH_CAPACITY),
            verdicts: Vec::with_capacity(BATCH_CAPACITY),
            in_batch: vec![false; frames as usize],
            to_send: Vec::with_capacity(BATCH_CAPACITY),
            kick_due: false,
            ifindex,
            queue,
            zero_copy,
            zero_copy_refused,
        };
        xsk.refill();
        Ok(xsk)
    }

    /// The rx queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The device this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Why the driver refused zero-copy mode (the socket then runs in copy mode).
    pub fn zero_copy_refused(&self) -> Option<&str> {
        self.zero_copy_refused.as_deref()
    }

    /// Whether the kernel runs this socket in zero-copy mode (false: copy mode).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Take up to `max` received frames off the rx ring as one batch: they stay ours, viewable
    /// together as disjoint `&mut [u8]`, until the batch is dropped, which applies each frame's
    /// [`Verdict`] (recycle unless told otherwise) with one tx ring update and one wake.
    pub fn rx_batch(&mut self, max: u32) -> RxBatch<'_> {
        self.reap();
        // A batch that was leaked rather than dropped is released now.
        if !self.batch.is_empty() {
            self.release_batch();
        }
        let mut received = 0;
        {
            let mut rx = self.rx.receive(max);
            while let Some(desc) = rx.read() {
                received += 1;
                self.filled = self.filled.saturating_sub(1);
                let chunk = desc.addr & !u64::from(self.frame_size - 1);
                let in_chunk =
                    desc.addr - chunk + u64::from(desc.len) <= u64::from(self.frame_size);
                let index = usize::try_from(chunk / u64::from(self.frame_size)).ok();
                let owned = index.and_then(|i| self.in_batch.get_mut(i));
                match owned {
                    Some(taken)
                        if !*taken && in_chunk && self.area.span(desc.addr, desc.len).is_some() =>
                    {
                        *taken = true;
                        self.batch.push(desc);
                        self.verdicts.push(Verdict::Recycle);
                    }
                    // Its chunk is already in this batch: the kernel gave one frame twice. It is
                    // recycled once, with the first.
                    Some(taken) if *taken => {
                        tracing::warn!(
                            addr = desc.addr,
                            "AF_XDP rx descriptor repeated in a batch"
                        );
                    }
                    Some(_) => {
                        tracing::warn!(
                            addr = desc.addr,
                            len = desc.len,
                            "bad AF_XDP rx descriptor"
                        );
                        self.free.push(chunk);
                    }
                    // Not a chunk of the UMEM: nothing to recycle.
                    None => {
                        tracing::warn!(
                            addr = desc.addr,
                            len = desc.len,
                            "bad AF_XDP rx descriptor"
                        );
                    }
                }
            }
            rx.release();
        }
        RxBatch {
            xsk: self,
            received,
        }
    }

    /// Apply the verdicts of the batch's frames: transmit some in place, recycle the others,
    /// then top the fill ring up.
    fn release_batch(&mut self) {
        let mask = !u64::from(self.frame_size - 1);
        for (desc, verdict) in self.batch.drain(..).zip(self.verdicts.drain(..)) {
            let chunk = desc.addr & mask;
            if let Some(taken) = usize::try_from(chunk / u64::from(self.frame_size))
                .ok()
                .and_then(|i| self.in_batch.get_mut(i))
            {
                *taken = false;
            }
            match verdict {
                Verdict::Transmit => self.to_send.push(desc),
                Verdict::Recycle => self.free.push(chunk),
            }
        }
        if !self.to_send.is_empty() {
            let sent = {
                let mut w = self
                    .tx
                    .transmit(u32::try_from(self.to_send.len()).unwrap_or(u32::MAX));
                // Never offer more than was reserved: the ring's insert drops the item it
                // pulled when it runs out of slots.
                let room = (w.capacity() as usize).min(self.to_send.len());
                let sent = w.insert(self.to_send[..room].iter().copied());
                w.commit();
                sent as usize
            };
            // The tx ring holds every frame, so this only happens if it is corrupt: keep the
            // frames rather than lose them.
            self.free
                .extend(self.to_send.drain(..).skip(sent).map(|d| d.addr & mask));
            self.to_send.clear();
            if sent > 0 {
                self.tx.wake();
            }
        }
        self.refill();
    }

    /// Hand up to `max` received frames, one at a time, to `f` (mutable: it may rewrite them
    /// in place, e.g. before copying them into [`XskSocket::send`]), then recycle them to the
    /// fill ring. Returns how many frames were received.
    pub fn recv(&mut self, max: u32, mut f: impl FnMut(&mut [u8])) -> usize {
        self.forward(max, |frame| {
            f(frame);
            false
        })
    }

    /// Like [`XskSocket::recv`], but a frame for which `f` returns true is transmitted in
    /// place (same length, as `f` left it) instead of recycled: no copy. One frame at a time
    /// over [`XskSocket::rx_batch`].
    pub fn forward(&mut self, max: u32, mut f: impl FnMut(&mut [u8]) -> bool) -> usize {
        let mut batch = self.rx_batch(max);
        for i in 0..batch.len() {
            if batch.frame_mut(i).is_some_and(&mut f) {
                batch.set_verdict(i, Verdict::Transmit);
            }
        }
        batch.received()
    }

    /// Copy `frame` (a whole Ethernet frame) into a free UMEM frame and queue it for
    /// transmission; [`XskSocket::flush`] makes the kernel send what was queued (one syscall
    /// for a pass's frames, not one each). False when it does not fit a frame or no frame is
    /// free (all in flight).
    pub fn send(&mut self, frame: &[u8]) -> bool {
        let Ok(len) = u32::try_from(frame.len()) else {
            return false;
        };
        if len > self.frame_size {
            return false;
        }
        self.reap();
        let Some(addr) = self.free.pop() else {
            return false;
        };
        // SAFETY: `addr` came off the free list, so the frame is ours and unviewed; bounds are
        // checked.
        match unsafe { self.area.bytes_mut(addr, len) } {
            Some(dst) => dst.copy_from_slice(frame),
            None => {
                self.free.push(addr);
                return false;
            }
        }
        let queued = {
            let mut w = self.tx.transmit(1);
            let ok = w.insert_once(XdpDesc {
                addr,
                len,
                options: 0,
            });
            w.commit();
            ok
        };
        if !queued {
            self.free.push(addr);
            return false;
        }
        self.kick_due = true;
        true
    }

    /// Wake the kernel to transmit the frames [`XskSocket::send`] queued, if any.
    pub fn flush(&mut self) {
        if std::mem::take(&mut self.kick_due) {
            self.tx.wake();
        }
    }

    /// The kernel's drop counters for this socket; None when the kernel will not tell.
    pub fn stats(&self) -> Option<XskStats> {
        // The fill queue handle holds this socket's fd (the UMEM is not shared between sockets).
        let s = self.fq.statistics_v2().ok()?;
        Some(XskStats {
            rx_dropped: s.rx_dropped,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_invalid_descs: s.tx_invalid_descs,
        })
    }

    /// Take transmitted frames back from the completion ring.
    fn reap(&mut self) {
        let mask = !u64::from(self.frame_size - 1);
        let mut c = self.fq.complete(u32::MAX);
        while let Some(addr) = c.read() {
            self.free.push(addr & mask);
        }
        c.release();
    }

    /// Top the fill ring up to its target from the free frames.
    fn refill(&mut self) {
        let want = self.fill_target.saturating_sub(self.filled);
        if want == 0 || self.free.is_empty() {
            return;
        }
        let mut w = self.fq.fill(want);
        // Never offer more than was reserved: the ring's insert drops the item it pulled when
        // it runs out of slots.
        let take = (w.capacity() as usize).min(self.free.len());
        let from = self.free.len() - take;
        let inserted = w.insert(self.free.drain(from..));
        w.commit();
        drop(w);
        self.filled += inserted;
    }

    /// Frames waiting in the rx ring (for tests that wait for a whole batch).
    #[cfg(test)]
    pub(crate) fn rx_available(&self) -> u32 {
        self.rx.available()
    }

    /// Frames the UMEM holds.
    pub fn frames(&self) -> u32 {
        self.umem.len_frames()
    }

    /// Bytes of UMEM.
    pub fn umem_bytes(&self) -> usize {
        self.area.len()
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fq.as_raw_fd()
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd belongs to the socket's UMEM/device queue, which `self` owns and keeps
        // open for at least the borrow's lifetime.
        unsafe { BorrowedFd::borrow_raw(self.fq.as_raw_fd()) }
    }
}

/// Whether the bound socket `fd` runs in zero-copy mode (`XDP_OPTIONS`).
fn zero_copy(fd: RawFd) -> bool {
    let mut flags: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `flags`/`len` are valid for writes of the size passed; the fd is open (owned by
    // the socket being built).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut flags as *mut u32).cast(),
            &mut len,
        )
    };
    rc == 0 && flags & XDP_OPTIONS_ZEROCOPY != 0
}

/// Frames received together by [`XskSocket::rx_batch`], ours until the batch is dropped, which
/// recycles or transmits each as its [`Verdict`] says.
///
/// Every frame of a batch lies in its own UMEM chunk, inside the area: `rx_batch` checks that
/// each descriptor stays within its chunk and the area, and refuses a second descriptor for a
/// chunk already in the batch. Chunks do not overlap, so the frames are disjoint.
pub struct RxBatch<'a> {
    xsk: &'a mut XskSocket,
    /// Descriptors taken off the rx ring, bad ones included.
    received: usize,
}

impl RxBatch<'_> {
    /// Frames in the batch (the good descriptors).
    pub fn len(&self) -> usize {
        self.xsk.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.xsk.batch.is_empty()
    }

    /// Descriptors taken off the rx ring, bad ones (not in the batch) included.
    pub fn received(&self) -> usize {
        self.received
    }

    /// The area's span of frame `i`.
    fn span(&self, i: usize) -> Option<std::ptr::NonNull<[u8]>> {
        let d = self.xsk.batch.get(i)?;
        self.xsk.area.span(d.addr, d.len)
    }

    /// Frame `i`, to read.
    pub fn frame(&self, i: usize) -> Option<&[u8]> {
        let span = self.span(i)?;
        // SAFETY: frame `i` came off the rx ring into this batch, so the kernel leaves its
        // chunk alone until the batch is released; the span is inside the area (checked).
        // The only mutable views of batch frames borrow the batch mutably, so none exists
        // while this shared borrow of it lives.
        Some(unsafe { &*span.as_ptr() })
    }

    /// Frame `i`, to rewrite in place.
    pub fn frame_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let span = self.span(i)?;
        // SAFETY: frame `i` is ours until the batch is released (see `frame`), inside the
        // area (checked), and this is the only view of it: it borrows the batch mutably.
        Some(unsafe { &mut *span.as_ptr() })
    }

    /// All the frames at once, in order, each writable.
    pub fn frames_mut(&mut self) -> impl ExactSizeIterator<Item = &mut [u8]> + '_ {
        let area = &self.xsk.area;
        self.xsk.batch.iter().map(move |d| {
            let span = area
                .span(d.addr, d.len)
                .unwrap_or(std::ptr::NonNull::slice_from_raw_parts(
                    std::ptr::NonNull::dangling(),
                    0,
                ));
            // SAFETY: each frame is ours until the batch is released (it came off the rx ring,
            // and the kernel only writes frames on the fill ring), and inside the area (checked
            // here, a dangling empty slice otherwise). The frames are pairwise disjoint: each
            // lies within its own chunk (`rx_batch` checked offset + length against the frame
            // size), and no chunk is in the batch twice (`in_batch`). The batch is borrowed
            // mutably for as long as the slices live, so no other view of them exists.
            unsafe { &mut *span.as_ptr() }
        })
    }

    /// What becomes of frame `i` when the batch is released.
    pub fn set_verdict(&mut self, i: usize, verdict: Verdict) {
        if let Some(v) = self.xsk.verdicts.get_mut(i) {
            *v = verdict;
        }
    }

    /// Frame `i`'s verdict so far.
    pub fn verdict(&self, i: usize) -> Option<Verdict> {
        self.xsk.verdicts.get(i).copied()
    }
}

impl Drop for RxBatch<'_> {
    fn drop(&mut self) {
        self.xsk.release_batch();
    }
}
