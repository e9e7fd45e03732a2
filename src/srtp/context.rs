//! One SRTP crypto context: the keys of one master key (one direction of one stream, as RFC 3711
//! §3.2 has it) and, per SSRC, the rollover counter, the replay windows and the SRTCP index.
//!
//! A relay holds one context per master key: the one it decrypts a peer's packets with, and the
//! one it encrypts toward a peer with. Buffers are the caller's: protect appends the trailer in
//! place (size the buffer with [`SrtpContext::rtp_overhead`]), unprotect returns the clear length.
//! Per-SSRC state is created only for a packet that authenticated, and the number of SSRCs is
//! bounded, so forged packets cost a tag check and nothing else.

use std::collections::HashMap;

use super::error::SrtpError;
use super::index::RocTracker;
use super::kdf::{derive, SessionKeys};
use super::replay::ReplayWindow;
use super::suite::{CipherKind, Suite};
use super::transform::{self, Layout, Transform, RTCP_HEADER_LEN, SRTCP_INDEX_MAX};
use crate::wire::rtp;

/// Largest MKI (RFC 4568 §6.1 allows 1 to 128 bytes).
pub const MAX_MKI_LEN: usize = 128;
/// Default bound on SSRCs per context.
pub const DEFAULT_MAX_SSRCS: usize = 32;

/// How to build a context: the suite, the master key and salt, and the SDES session parameters
/// that change packet processing.
#[derive(Clone, PartialEq, Eq)]
pub struct Params {
    pub suite: Suite,
    pub master_key: Vec<u8>,
    pub master_salt: Vec<u8>,
    /// The MKI value carried in every packet (its length is the negotiated MKI length); empty for
    /// none.
    pub mki: Vec<u8>,
    /// `UNENCRYPTED_SRTP`: RTP payloads stay in clear (HMAC suites only).
    pub unencrypted_srtp: bool,
    /// `UNENCRYPTED_SRTCP`: RTCP stays in clear, E flag 0.
    pub unencrypted_srtcp: bool,
    /// `UNAUTHENTICATED_SRTP`: no tag on RTP (HMAC suites only).
    pub unauthenticated_srtp: bool,
    /// Replay window in packets: 64 or 128.
    pub replay_window: u32,
    /// Most SSRCs this context tracks.
    pub max_ssrcs: usize,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("suite", &self.suite)
            .field("mki_len", &self.mki.len())
            .field("unencrypted_srtp", &self.unencrypted_srtp)
            .field("unencrypted_srtcp", &self.unencrypted_srtcp)
            .field("unauthenticated_srtp", &self.unauthenticated_srtp)
            .field("replay_window", &self.replay_window)
            .finish_non_exhaustive()
    }
}

impl Params {
    /// Default parameters: no MKI, everything encrypted and authenticated, a 128-packet window.
    pub fn new(suite: Suite, master_key: &[u8], master_salt: &[u8]) -> Params {
        Params {
            suite,
            master_key: master_key.to_vec(),
            master_salt: master_salt.to_vec(),
            mki: Vec::new(),
            unencrypted_srtp: false,
            unencrypted_srtcp: false,
            unauthenticated_srtp: false,
            replay_window: 128,
            max_ssrcs: DEFAULT_MAX_SSRCS,
        }
    }
}

/// A packet that authenticated and was decrypted, whose index is not taken yet (see
/// [`SrtpContext::commit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    ssrc: u32,
    index: u64,
    rtcp: bool,
}

/// Per-SSRC state of one context.
#[derive(Debug, Clone)]
struct SsrcState {
    /// Highest index sent (protect) and received (unprotect).
    sent: Option<RocTracker>,
    received: Option<RocTracker>,
    rtp_window: ReplayWindow,
    rtcp_window: ReplayWindow,
    /// The next SRTCP index to send.
    rtcp_next: u32,
}

/// An SRTP/SRTCP crypto context for one master key.
pub struct SrtpContext {
    suite: Suite,
    rtp: Transform,
    rtcp: Transform,
    mki: Vec<u8>,
    encrypt_rtp: bool,
    encrypt_rtcp: bool,
    auth_rtp: bool,
    /// An empty window of the negotiated size, copied for each new SSRC.
    window: ReplayWindow,
    max_ssrcs: usize,
    streams: HashMap<u32, SsrcState>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("ssrcs", &self.streams.len())
            .finish_non_exhaustive()
    }
}

fn header_error(e: crate::wire::WireError) -> SrtpError {
    match e {
        crate::wire::WireError::BadVersion => SrtpError::BadVersion,
        _ => SrtpError::BadHeader,
    }
}

impl SrtpContext {
    /// Derives the session keys and builds the cipher contexts (once, here; never per packet).
    pub fn new(p: &Params) -> Result<SrtpContext, SrtpError> {
        let (rtp, rtcp) = derive(p.suite, &p.master_key, &p.master_salt)?;
        SrtpContext::with_session_keys(p, &rtp, &rtcp)
    }

    /// A context from session keys given directly (the RFC 7714 vectors give those); the master
    /// key and salt of `p` are not used.
    pub(crate) fn with_session_keys(
        p: &Params,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
    ) -> Result<SrtpContext, SrtpError> {
        if p.mki.len() > MAX_MKI_LEN {
            return Err(SrtpError::BadMki {
                len: p.mki.len(),
                max: MAX_MKI_LEN,
            });
        }
        if p.suite.cipher() == CipherKind::AesGcm {
            if p.unencrypted_srtp {
                return Err(SrtpError::UnsupportedParam {
                    param: "UNENCRYPTED_SRTP",
                    suite: p.suite.name(),
                });
            }
            if p.unauthenticated_srtp {
                return Err(SrtpError::UnsupportedParam {
                    param: "UNAUTHENTICATED_SRTP",
                    suite: p.suite.name(),
                });
            }
        }
        let window = ReplayWindow::new(p.replay_window)?;
        Ok(SrtpContext {
            suite: p.suite,
            rtp: Transform::new(p.suite, rtp)?,
            rtcp: Transform::new(p.suite, rtcp)?,
            mki: p.mki.clone(),
            // NULL never encrypts, but its SRTCP E flag still says what was negotiated.
            encrypt_rtp: !p.unencrypted_srtp,
            encrypt_rtcp: !p.unencrypted_srtcp,
            auth_rtp: !p.unauthenticated_srtp,
            window,
            max_ssrcs: p.max_ssrcs,
            streams: HashMap::new(),
        })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Bytes protect adds to an RTP packet (tag and MKI).
    pub fn rtp_overhead(&self) -> usize {
        self.layout().rtp_trailer()
    }

    /// Bytes protect adds to an RTCP packet (index word, tag and MKI).
    pub fn rtcp_overhead(&self) -> usize {
        self.layout().rtcp_trailer()
    }

    /// SSRCs with state in this context.
    pub fn ssrc_count(&self) -> usize {
        self.streams.len()
    }

    /// The rollover counter of packets received from `ssrc`, once one authenticated.
    pub fn received_roc(&self, ssrc: u32) -> Option<u32> {
        self.streams.get(&ssrc)?.received.map(|t| t.roc())
    }

    fn layout(&self) -> Layout<'_> {
        Layout {
            mki: &self.mki,
            rtp_tag: if self.auth_rtp {
                self.suite.rtp_tag_len()
            } else {
                0
            },
            rtcp_tag: self.suite.rtcp_tag_len(),
            encrypt_rtp: self.encrypt_rtp,
            encrypt_rtcp: self.encrypt_rtcp,
        }
    }

    /// Makes room for `ssrc`'s state, or refuses a new SSRC past the limit.
    fn has_room_for(&self, ssrc: u32) -> Result<(), SrtpError> {
        if self.streams.contains_key(&ssrc) || self.streams.len() < self.max_ssrcs {
            Ok(())
        } else {
            Err(SrtpError::TooManySsrcs {
                limit: self.max_ssrcs,
            })
        }
    }

    fn state(&mut self, ssrc: u32) -> &mut SsrcState {
        let window = self.window;
        self.streams.entry(ssrc).or_insert(SsrcState {
            sent: None,
            received: None,
            rtp_window: window,
            rtcp_window: window,
            rtcp_next: 0,
        })
    }

    /// Protects the RTP packet `buf[..len]` in place and returns the SRTP length; `buf` needs
    /// [`Self::rtp_overhead`] bytes of room after `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf
            .get(..len)
            .ok_or(SrtpError::TooShort { len: buf.len() })?;
        let p = rtp::Packet::new_checked_header(packet).map_err(header_error)?;
        let (hdr, ssrc, seq) = (p.header_len(), p.ssrc(), p.sequence());
        let need = len + self.rtp_overhead();
        if buf.len() < need {
            return Err(SrtpError::BufferTooSmall {
                need,
                cap: buf.len(),
            });
        }
        self.has_room_for(ssrc)?;
        let state = self.state(ssrc);
        let tracker = state.sent.unwrap_or_else(|| RocTracker::new(0, seq));
        let index = tracker.estimate(seq)?;
        let mut tracker = tracker;
        tracker.update(index);
        state.sent = Some(tracker);
        let layout = self.layout();
        Ok(transform::rtp_protect(
            &self.rtp, &layout, buf, hdr, len, ssrc, index,
        ))
    }

    /// Checks and decrypts the SRTP packet `buf` in place and returns the RTP length. Nothing
    /// changes (no state, no replay entry) unless the packet authenticates.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let (len, received) = self.open_rtp(buf)?;
        self.commit(received);
        Ok(len)
    }

    /// [`Self::unprotect_rtp`] without taking the packet's index: nothing changes until
    /// [`Self::commit`]. A relay checks the packet's source after it authenticated; a genuine
    /// packet an attacker replays from another address is then refused there, and must not
    /// take the replay-window entry the genuine copy needs.
    pub fn open_rtp(&self, buf: &mut [u8]) -> Result<(usize, Received), SrtpError> {
        let layout = self.layout();
        let too_short = SrtpError::TooShort { len: buf.len() };
        let parts = transform::rtp_parts(&self.rtp, &layout, buf.len()).ok_or(too_short)?;
        let p = rtp::Packet::new_checked_header(&buf[..parts.body_end]).map_err(|e| match e {
            crate::wire::WireError::Truncated => too_short,
            e => header_error(e),
        })?;
        let (hdr, ssrc, seq) = (p.header_len(), p.ssrc(), p.sequence());
        if buf[parts.mki_at..parts.mki_at + layout.mki.len()] != *layout.mki {
            return Err(SrtpError::UnknownMki);
        }
        self.has_room_for(ssrc)?;
        let known = self.streams.get(&ssrc);
        let tracker = known
            .and_then(|s| s.received)
            .unwrap_or_else(|| RocTracker::new(0, seq));
        let index = tracker.estimate(seq)?;
        if let Some(s) = known {
            s.rtp_window.check(index)?;
        }
        let len = transform::rtp_unprotect(&self.rtp, &layout, buf, parts, hdr, ssrc, index)?;
        Ok((
            len,
            Received {
                ssrc,
                index,
                rtcp: false,
            },
        ))
    }

    /// Takes the index of a packet [`Self::open_rtp`] or [`Self::open_rtcp`] let through: the
    /// rollover counter moves on and a replay of it is refused from now on.
    pub fn commit(&mut self, received: Received) {
        let Received { ssrc, index, rtcp } = received;
        if self.has_room_for(ssrc).is_err() {
            return;
        }
        let state = self.state(ssrc);
        if rtcp {
            state.rtcp_window.accept(index);
            return;
        }
        // Estimated from this state when the packet was opened: the same as it is now, as
        // nothing but a commit changes it.
        let mut tracker = state.received.unwrap_or_else(|| {
            RocTracker::new(
                u32::try_from(index >> 16).unwrap_or(u32::MAX),
                (index & 0xffff) as u16,
            )
        });
        tracker.update(index);
        state.received = Some(tracker);
        state.rtp_window.accept(index);
    }

    /// Protects the RTCP compound packet `buf[..len]` in place and returns the SRTCP length;
    /// `buf` needs [`Self::rtcp_overhead`] bytes of room after `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf
            .get(..len)
            .ok_or(SrtpError::TooShort { len: buf.len() })?;
        if packet.len() < RTCP_HEADER_LEN {
            return Err(SrtpError::TooShort { len });
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::BadVersion);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let need = len + self.rtcp_overhead();
        if buf.len() < need {
            return Err(SrtpError::BufferTooSmall {
                need,
                cap: buf.len(),
            });
        }
        self.has_room_for(ssrc)?;
        let state = self.state(ssrc);
        let index = state.rtcp_next;
        if index > SRTCP_INDEX_MAX {
            return Err(SrtpError::IndexExhausted);
        }
        state.rtcp_next = index + 1;
        let layout = self.layout();
        Ok(transform::rtcp_protect(
            &self.rtcp, &layout, buf, len, ssrc, index,
        ))
    }

    /// Checks and decrypts the SRTCP packet `buf` in place and returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let (len, received) = self.open_rtcp(buf)?;
        self.commit(received);
        Ok(len)
    }

    /// [`Self::unprotect_rtcp`] without taking the packet's index (see [`Self::open_rtp`]).
    pub fn open_rtcp(&self, buf: &mut [u8]) -> Result<(usize, Received), SrtpError> {
        let layout = self.layout();
        let parts = transform::rtcp_parts(&self.rtcp, &layout, buf)
            .ok_or(SrtpError::TooShort { len: buf.len() })?;
        if buf[0] >> 6 != 2 {
            return Err(SrtpError::BadVersion);
        }
        if buf[parts.mki_at..parts.mki_at + layout.mki.len()] != *layout.mki {
            return Err(SrtpError::UnknownMki);
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        self.has_room_for(ssrc)?;
        let index = u64::from(parts.index);
        if let Some(s) = self.streams.get(&ssrc) {
            s.rtcp_window.check(index)?;
        }
        let len = transform::rtcp_unprotect(&self.rtcp, &layout, buf, parts, ssrc)?;
        Ok((
            len,
            Received {
                ssrc,
                index,
                rtcp: true,
            },
        ))
    }

    /// Sets the next SRTCP index sent for `ssrc` (tests start mid-stream, as the RFC vectors do).
    #[cfg(test)]
    pub(crate) fn set_rtcp_index(&mut self, ssrc: u32, index: u32) {
        self.state(ssrc).rtcp_next = index;
    }
}
