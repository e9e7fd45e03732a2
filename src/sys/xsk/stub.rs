//! The AF_XDP API of a binary built without the XDP plane: binding always fails.

use std::os::fd::{AsRawFd, RawFd};

use super::{Verdict, XskError};

/// Never constructed in this build.
pub struct XskSocket {
    _never: std::convert::Infallible,
}

impl XskSocket {
    /// Always `Err(XskError::NotBuilt)`.
    pub fn bind(
        _ifindex: u32,
        _queue: u32,
        _frames: u32,
        _frame_size: u32,
    ) -> Result<XskSocket, XskError> {
        Err(XskError::NotBuilt)
    }
    pub fn queue(&self) -> u32 {
        match self._never {}
    }
    pub fn ifindex(&self) -> u32 {
        match self._never {}
    }
    pub fn zero_copy_refused(&self) -> Option<&str> {
        match self._never {}
    }
    pub fn zero_copy(&self) -> bool {
        match self._never {}
    }
    pub fn rx_batch(&mut self, _max: u32) -> RxBatch<'_> {
        match self._never {}
    }
    pub fn recv(&mut self, _max: u32, _f: impl FnMut(&mut [u8])) -> usize {
        match self._never {}
    }
    pub fn forward(&mut self, _max: u32, _f: impl FnMut(&mut [u8]) -> bool) -> usize {
        match self._never {}
    }
    pub fn send(&mut self, _frame: &[u8]) -> bool {
        match self._never {}
    }
    pub fn flush(&mut self) {
        match self._never {}
    }
    pub fn stats(&self) -> Option<super::XskStats> {
        match self._never {}
    }
    pub fn frames(&self) -> u32 {
        match self._never {}
    }
    pub fn umem_bytes(&self) -> usize {
        match self._never {}
    }
}

/// Never constructed in this build.
pub struct RxBatch<'a> {
    _never: std::convert::Infallible,
    _socket: std::marker::PhantomData<&'a mut XskSocket>,
}

impl RxBatch<'_> {
    pub fn len(&self) -> usize {
        match self._never {}
    }
    pub fn is_empty(&self) -> bool {
        match self._never {}
    }
    pub fn received(&self) -> usize {
        match self._never {}
    }
    pub fn frame(&self, _i: usize) -> Option<&[u8]> {
        match self._never {}
    }
    pub fn frame_mut(&mut self, _i: usize) -> Option<&mut [u8]> {
        match self._never {}
    }
    pub fn frames_mut(&mut self) -> std::iter::Empty<&mut [u8]> {
        match self._never {}
    }
    pub fn set_verdict(&mut self, _i: usize, _verdict: Verdict) {
        match self._never {}
    }
    pub fn verdict(&self, _i: usize) -> Option<Verdict> {
        match self._never {}
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        match self._never {}
    }
}

impl std::os::fd::AsFd for XskSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self._never {}
    }
}
