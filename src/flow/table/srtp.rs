//! The SRTP side of a flow as the table applies it: a context per direction, built once when
//! the flow opens or its keys change (never per packet), and the per-packet calls in the
//! caller's slot, with each failure mapped to the drop it is counted as.

use crate::srtp::{Params, Received, SrtpContext, SrtpError};

/// One direction's SRTP context. Keys that could not be built (a key of the wrong length, a
/// parameter the suite cannot honour) leave no context: every packet of that direction is then
/// dropped, never passed on untransformed.
pub(super) struct Cipher(Option<Box<SrtpContext>>);

impl Cipher {
    /// Derives the keys of `params` for flow `flow`'s `direction` (for the log).
    pub(super) fn build(params: &Params, flow: u64, direction: &'static str) -> Cipher {
        match SrtpContext::new(params) {
            Ok(c) => Cipher(Some(Box::new(c))),
            Err(error) => {
                tracing::warn!(flow, direction, %error, "SRTP keys unusable, media dropped");
                Cipher(None)
            }
        }
    }

    /// A context whose keys are not known yet (DTLS-SRTP before its handshake): refuses every
    /// packet, as unusable keys do.
    pub(super) fn pending() -> Cipher {
        Cipher(None)
    }

    /// The context, for tests and `query`.
    pub(super) fn context(&self) -> Option<&SrtpContext> {
        self.0.as_deref()
    }

    /// Authenticates and decrypts `buf[..len]` (SRTCP when `rtcp`) in place: the clear length,
    /// and the packet's index to [`Cipher::commit`] once its source is accepted too.
    pub(super) fn unprotect(
        &self,
        rtcp: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(usize, Received), SrtpError> {
        let ctx = self.0.as_deref().ok_or(SrtpError::AuthFailed)?;
        let cap = buf.len();
        let pkt = buf.get_mut(..len).ok_or(SrtpError::TooShort { len: cap })?;
        if rtcp {
            ctx.open_rtcp(pkt)
        } else {
            ctx.open_rtp(pkt)
        }
    }

    /// Takes the index of a packet [`Cipher::unprotect`] let through, once the latch accepted
    /// its source: a copy replayed from elsewhere and refused there takes nothing.
    pub(super) fn commit(&mut self, received: Received) {
        if let Some(ctx) = self.0.as_deref_mut() {
            ctx.commit(received);
        }
    }

    /// Encrypts and authenticates `buf[..len]` in place, growing it into the rest of `buf`:
    /// the protected length.
    pub(super) fn protect(
        &mut self,
        rtcp: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpError> {
        let ctx = self.0.as_deref_mut().ok_or(SrtpError::IndexExhausted)?;
        if rtcp {
            ctx.protect_rtcp(buf, len)
        } else {
            ctx.protect_rtp(buf, len)
        }
    }
}

/// What an unprotect failure is counted and reported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InboundFailure {
    /// Not authenticated by the peer's key: a wrong or unusable key, a forged or damaged
    /// packet, an unknown MKI.
    Unauthenticated,
    /// Authenticated before: a replay, or older than the window.
    Replay,
    /// Too short or not RTP/RTCP: malformed.
    Malformed,
    /// Refused before the tag was checked (too many SSRCs on the context).
    Refused,
}

impl From<SrtpError> for InboundFailure {
    fn from(e: SrtpError) -> Self {
        match e {
            SrtpError::AuthFailed | SrtpError::UnknownMki => InboundFailure::Unauthenticated,
            SrtpError::Replay { .. } => InboundFailure::Replay,
            SrtpError::TooShort { .. } | SrtpError::BadVersion | SrtpError::BadHeader => {
                InboundFailure::Malformed
            }
            _ => InboundFailure::Refused,
        }
    }
}
