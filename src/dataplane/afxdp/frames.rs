//! Frames as the AF_XDP plane forwards them: a batch taken off one socket (or a single copied
//! frame), the runs of one flow within it, and the [`Batch`] the worker's forwarder sees for a
//! run.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::dataplane::Batch;
use crate::sys::mmsg::SLOT_SIZE;
use crate::sys::xsk::{RxBatch, Verdict};
use crate::wire::frame::UdpFrame;

/// Frames received together, each with a [`Verdict`] applied when they are let go.
pub(super) trait Frames {
    fn len(&self) -> usize;
    fn frame(&self, i: usize) -> Option<&[u8]>;
    fn frame_mut(&mut self, i: usize) -> Option<&mut [u8]>;
    /// What becomes of frame `i` (a copy has nowhere to go back to: it ignores this).
    fn set_verdict(&mut self, i: usize, verdict: Verdict);
}

impl Frames for RxBatch<'_> {
    fn len(&self) -> usize {
        RxBatch::len(self)
    }
    fn frame(&self, i: usize) -> Option<&[u8]> {
        RxBatch::frame(self, i)
    }
    fn frame_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        RxBatch::frame_mut(self, i)
    }
    fn set_verdict(&mut self, i: usize, verdict: Verdict) {
        RxBatch::set_verdict(self, i, verdict);
    }
}

/// Copies (kept frames, other workers' frames): nothing to recycle or transmit in place.
impl Frames for [&mut [u8]] {
    fn len(&self) -> usize {
        <[&mut [u8]]>::len(self)
    }
    fn frame(&self, i: usize) -> Option<&[u8]> {
        self.get(i).map(|f| &**f)
    }
    fn frame_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        self.get_mut(i).map(|f| &mut **f)
    }
    fn set_verdict(&mut self, _i: usize, _verdict: Verdict) {}
}

/// A frame of a batch that goes to its flow.
pub(super) struct Todo {
    /// Its index in the batch.
    pub frame: usize,
    pub token: u64,
    /// The relay address its flow is indexed by.
    pub key: SocketAddr,
    pub parsed: UdpFrame,
}

/// The end of the run of one flow that starts at `todo[start]`: the frames after it of the
/// same flow, up to the first of another.
pub(super) fn run_end(todo: &[Todo], start: usize) -> usize {
    let Some(first) = todo.get(start) else {
        return start;
    };
    start
        + todo[start..]
            .iter()
            .take_while(|t| t.token == first.token)
            .count()
}

/// Copies of payloads SRTP rewrites (it may grow them, a frame cannot grow in place): a slot
/// per packet of the batch that asks, reused from batch to batch. Plain flows never ask.
#[derive(Default)]
pub(super) struct Rewrites {
    bufs: Vec<Vec<u8>>,
    used: usize,
    /// Per packet of the batch (`todo` index): its buffer and the rewritten length.
    at: Vec<Option<(usize, usize)>>,
}

impl Rewrites {
    /// Forget the last batch's copies; `n` packets in the new one.
    pub fn reset(&mut self, n: usize) {
        self.used = 0;
        self.at.clear();
        self.at.resize(n, None);
    }

    /// Packet `i`'s copy (made from `payload` the first time), with its length.
    fn slot(&mut self, i: usize, payload: &[u8]) -> Option<(&mut [u8], usize)> {
        let (b, len) = match *self.at.get(i)? {
            Some(found) => found,
            None => {
                let b = self.used;
                if self.bufs.len() <= b {
                    self.bufs.push(vec![0; SLOT_SIZE]);
                }
                self.bufs
                    .get_mut(b)?
                    .get_mut(..payload.len())?
                    .copy_from_slice(payload);
                self.used += 1;
                *self.at.get_mut(i)? = Some((b, payload.len()));
                (b, payload.len())
            }
        };
        Some((self.bufs.get_mut(b)?.as_mut_slice(), len))
    }

    fn set_len(&mut self, i: usize, len: usize) {
        if let Some(Some((_, l))) = self.at.get_mut(i) {
            *l = len.min(SLOT_SIZE);
        }
    }

    /// Packet `i` as rewritten, if it was.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (b, len) = (*self.at.get(i)?)?;
        self.bufs.get(b)?.get(..len)
    }
}

/// The frames going to flows, as the worker's forwarding logic sees them: packet `i` is the
/// payload of `todo[i]` (or its copy in `rewrites`, once SRTP asked for it writable);
/// `forward` records the decision in `out[i]`.
pub(super) struct FrameRun<'a, R: ?Sized> {
    pub frames: &'a R,
    pub todo: &'a [Todo],
    pub out: &'a mut [Option<(RawFd, SocketAddr)>],
    pub rewrites: &'a mut Rewrites,
}

impl<R: Frames + ?Sized> Batch for FrameRun<'_, R> {
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let t = self.todo.get(i)?;
        if let Some(p) = self.rewrites.get(i) {
            return Some((p, t.parsed.src));
        }
        let f = self.frames.frame(t.frame)?;
        Some((f.get(t.parsed.payload.clone())?, t.parsed.src))
    }

    fn packet_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)> {
        let t = self.todo.get(i)?;
        let payload = self.frames.frame(t.frame)?.get(t.parsed.payload.clone())?;
        let (buf, len) = self.rewrites.slot(i, payload)?;
        Some((buf, len, t.parsed.src))
    }

    fn set_len(&mut self, i: usize, len: usize) {
        self.rewrites.set_len(i, len);
    }

    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, _tag: u64) -> bool {
        match self.out.get_mut(i) {
            Some(o) => {
                *o = Some((sock, dst));
                true
            }
            None => false,
        }
    }
}
