//! Frames as the AF_XDP plane forwards them: a batch taken off one socket (or a single copied
//! frame), the runs of one flow within it, and the [`Batch`] the worker's forwarder sees for a
//! run.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::dataplane::Batch;
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

/// The frames going to flows, as the worker's forwarding logic sees them: packet `i` is the
/// payload of `todo[i]`; `forward` records the decision in `out[i]`.
pub(super) struct FrameRun<'a, R: ?Sized> {
    pub frames: &'a R,
    pub todo: &'a [Todo],
    pub out: &'a mut [Option<(RawFd, SocketAddr)>],
}

impl<R: Frames + ?Sized> Batch for FrameRun<'_, R> {
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let t = self.todo.get(i)?;
        let f = self.frames.frame(t.frame)?;
        Some((f.get(t.parsed.payload.clone())?, t.parsed.src))
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
