//! Packet layouts: where the IV comes from, what is encrypted, what is authenticated, where the
//! tag, MKI and SRTCP index go, for AES-CM and AES-f8 + HMAC-SHA1 (RFC 3711), NULL + HMAC-SHA1
//! and AES-GCM (RFC 7714). No per-stream state: the index comes in, the caller checks replay.

use super::error::SrtpError;
use super::kdf::SessionKeys;
use super::primitive::{tags_equal, AesKey, F8Key, Gcm, HmacSha1};
use super::suite::{CipherKind, Suite};

/// SRTCP's E flag in the word before the tag.
pub const SRTCP_E_FLAG: u32 = 0x8000_0000;
/// The largest SRTCP index (31 bits).
pub const SRTCP_INDEX_MAX: u32 = 0x7fff_ffff;
/// Fixed RTCP header kept in clear: V/P/RC, PT, length, sender SSRC.
pub const RTCP_HEADER_LEN: usize = 8;
const GCM_TAG: usize = 16;

/// The keyed cipher and MAC of one packet kind (SRTP or SRTCP) in one direction.
#[derive(Clone)]
pub(crate) enum Transform {
    Cm {
        aes: Box<AesKey>,
        salt: [u8; 14],
        mac: HmacSha1,
    },
    F8 {
        f8: Box<F8Key>,
        mac: HmacSha1,
    },
    Null {
        mac: HmacSha1,
    },
    Gcm {
        gcm: Gcm,
        salt: [u8; 12],
    },
}

/// RFC 3711 §4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
pub(crate) fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

/// RFC 3711 §4.1.2.2: IV = 0x00 || M || PT || SEQ || TS || SSRC || ROC, i.e. the fixed RTP header
/// with its first octet zeroed, then the ROC.
pub(crate) fn f8_rtp_iv(header: &[u8; 12], index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[1..12].copy_from_slice(&header[1..]);
    iv[12..].copy_from_slice(&((index >> 16) as u32).to_be_bytes());
    iv
}

/// RFC 3711 §4.1.2.3: IV = 0..0 (32 bits) || E || SRTCP index || V || P || RC || PT || length ||
/// SSRC, i.e. the E flag / index word and the first 8 octets of the RTCP header. E is set: the
/// IV is only used when the packet is encrypted.
pub(crate) fn f8_rtcp_iv(header: &[u8; RTCP_HEADER_LEN], index: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&(SRTCP_E_FLAG | index).to_be_bytes());
    iv[8..].copy_from_slice(header);
    iv
}

/// RFC 7714 §8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt.
pub(crate) fn gcm_rtp_iv(salt: &[u8; 12], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    iv
}

/// RFC 7714 §9.1: IV = (00 00 || SSRC || 00 00 || 0 || SRTCP index) XOR salt.
pub(crate) fn gcm_rtcp_iv(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&(index & SRTCP_INDEX_MAX).to_be_bytes());
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    iv
}

fn array<const N: usize>(v: &[u8]) -> Result<[u8; N], SrtpError> {
    v.try_into().map_err(|_| SrtpError::BadKeyLength {
        what: "session salt",
        want: N,
        got: v.len(),
    })
}

impl Transform {
    pub(crate) fn new(suite: Suite, keys: &SessionKeys) -> Result<Transform, SrtpError> {
        Ok(match suite.cipher() {
            CipherKind::AesCm => Transform::Cm {
                aes: Box::new(AesKey::new(&keys.encryption)?),
                salt: array(&keys.salt)?,
                mac: HmacSha1::new(&keys.auth),
            },
            CipherKind::AesF8 => Transform::F8 {
                f8: Box::new(F8Key::new(&keys.encryption, &keys.salt)?),
                mac: HmacSha1::new(&keys.auth),
            },
            CipherKind::Null => Transform::Null {
                mac: HmacSha1::new(&keys.auth),
            },
            CipherKind::AesGcm => Transform::Gcm {
                gcm: Gcm::new(&keys.encryption)?,
                salt: array(&keys.salt)?,
            },
        })
    }

    fn mac(&self) -> Option<&HmacSha1> {
        match self {
            Transform::Cm { mac, .. } | Transform::F8 { mac, .. } | Transform::Null { mac } => {
                Some(mac)
            }
            Transform::Gcm { .. } => None,
        }
    }

    /// Encrypts or decrypts the RTP payload `buf[hdr..end]` in place (AES-CM and AES-f8; NULL
    /// and GCM do nothing here).
    fn rtp_xor(&self, buf: &mut [u8], hdr: usize, end: usize, ssrc: u32, index: u64) {
        match self {
            Transform::Cm { aes, salt, .. } => {
                aes.ctr_xor(&cm_iv(salt, ssrc, index), &mut buf[hdr..end]);
            }
            Transform::F8 { f8, .. } => {
                let mut header = [0u8; 12];
                header.copy_from_slice(&buf[..12]);
                f8.xor(&f8_rtp_iv(&header, index), &mut buf[hdr..end]);
            }
            Transform::Null { .. } | Transform::Gcm { .. } => {}
        }
    }

    /// Encrypts or decrypts the RTCP packet `buf[RTCP_HEADER_LEN..end]` in place (AES-CM and
    /// AES-f8; NULL and GCM do nothing here).
    fn rtcp_xor(&self, buf: &mut [u8], end: usize, ssrc: u32, index: u32) {
        match self {
            Transform::Cm { aes, salt, .. } => {
                aes.ctr_xor(
                    &cm_iv(salt, ssrc, u64::from(index)),
                    &mut buf[RTCP_HEADER_LEN..end],
                );
            }
            Transform::F8 { f8, .. } => {
                let mut header = [0u8; RTCP_HEADER_LEN];
                header.copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                f8.xor(&f8_rtcp_iv(&header, index), &mut buf[RTCP_HEADER_LEN..end]);
            }
            Transform::Null { .. } | Transform::Gcm { .. } => {}
        }
    }
}

/// How SRTP packets of a context are laid out on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout<'a> {
    pub mki: &'a [u8],
    /// Tag length on SRTP (0 with `UNAUTHENTICATED_SRTP`).
    pub rtp_tag: usize,
    pub rtcp_tag: usize,
    pub encrypt_rtp: bool,
    pub encrypt_rtcp: bool,
}

impl Layout<'_> {
    pub(crate) fn rtp_trailer(&self) -> usize {
        self.mki.len() + self.rtp_tag
    }
    pub(crate) fn rtcp_trailer(&self) -> usize {
        4 + self.mki.len() + self.rtcp_tag
    }
}

/// Protects the RTP packet `buf[..len]` (header of `hdr` bytes) in place; returns its new length.
/// `buf` must have room for the trailer (checked by the caller).
pub(crate) fn rtp_protect(
    t: &Transform,
    l: &Layout<'_>,
    buf: &mut [u8],
    hdr: usize,
    len: usize,
    ssrc: u32,
    index: u64,
) -> usize {
    let roc = ((index >> 16) as u32).to_be_bytes();
    match t {
        Transform::Gcm { gcm, salt } => {
            let (head, payload) = buf[..len].split_at_mut(hdr);
            let tag = gcm.seal(&gcm_rtp_iv(salt, ssrc, index), head, payload);
            buf[len..len + GCM_TAG].copy_from_slice(&tag);
            buf[len + GCM_TAG..len + GCM_TAG + l.mki.len()].copy_from_slice(l.mki);
            len + GCM_TAG + l.mki.len()
        }
        Transform::Cm { .. } | Transform::F8 { .. } | Transform::Null { .. } => {
            if l.encrypt_rtp {
                t.rtp_xor(buf, hdr, len, ssrc, index);
            }
            let mut end = len;
            buf[end..end + l.mki.len()].copy_from_slice(l.mki);
            end += l.mki.len();
            if let (Some(mac), true) = (t.mac(), l.rtp_tag > 0) {
                // The authenticated portion is header and payload; the ROC is appended (§4.2).
                let tag = mac.tag(&[&buf[..len], &roc]);
                buf[end..end + l.rtp_tag].copy_from_slice(&tag[..l.rtp_tag]);
                end += l.rtp_tag;
            }
            end
        }
    }
}

/// Where the parts of a received SRTP packet are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpParts {
    /// End of header + (encrypted) payload; for GCM the tag follows it.
    pub body_end: usize,
    pub mki_at: usize,
}

/// Splits a received SRTP packet of `len` bytes; `None` when too short for the trailer.
pub(crate) fn rtp_parts(t: &Transform, l: &Layout<'_>, len: usize) -> Option<RtpParts> {
    match t {
        Transform::Gcm { .. } => {
            let mki_at = len.checked_sub(l.mki.len())?;
            let body_end = mki_at.checked_sub(GCM_TAG)?;
            Some(RtpParts { body_end, mki_at })
        }
        _ => {
            let tag_at = len.checked_sub(l.rtp_tag)?;
            let mki_at = tag_at.checked_sub(l.mki.len())?;
            Some(RtpParts {
                body_end: mki_at,
                mki_at,
            })
        }
    }
}

/// Authenticates and decrypts a received SRTP packet in place; returns the RTP length.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rtp_unprotect(
    t: &Transform,
    l: &Layout<'_>,
    buf: &mut [u8],
    parts: RtpParts,
    hdr: usize,
    ssrc: u32,
    index: u64,
) -> Result<usize, SrtpError> {
    let end = parts.body_end;
    match t {
        Transform::Gcm { gcm, salt } => {
            let (body, rest) = buf.split_at_mut(end);
            let (head, payload) = body.split_at_mut(hdr);
            let tag = rest.get(..GCM_TAG).ok_or(SrtpError::AuthFailed)?;
            gcm.open(&gcm_rtp_iv(salt, ssrc, index), head, payload, tag)?;
        }
        Transform::Cm { .. } | Transform::F8 { .. } | Transform::Null { .. } => {
            if let (Some(mac), true) = (t.mac(), l.rtp_tag > 0) {
                let roc = ((index >> 16) as u32).to_be_bytes();
                let want = mac.tag(&[&buf[..end], &roc]);
                let tag_at = parts.mki_at + l.mki.len();
                let got = buf
                    .get(tag_at..tag_at + l.rtp_tag)
                    .ok_or(SrtpError::AuthFailed)?;
                if !tags_equal(&want[..l.rtp_tag], got) {
                    return Err(SrtpError::AuthFailed);
                }
            }
            if l.encrypt_rtp {
                t.rtp_xor(buf, hdr, end, ssrc, index);
            }
        }
    }
    Ok(end)
}

/// Protects the RTCP compound packet `buf[..len]` in place with SRTCP index `index`; returns the
/// new length. `buf` must have room for the trailer (checked by the caller).
pub(crate) fn rtcp_protect(
    t: &Transform,
    l: &Layout<'_>,
    buf: &mut [u8],
    len: usize,
    ssrc: u32,
    index: u32,
) -> usize {
    let word = if l.encrypt_rtcp {
        SRTCP_E_FLAG | index
    } else {
        index
    }
    .to_be_bytes();
    match t {
        Transform::Gcm { gcm, salt } => {
            let iv = gcm_rtcp_iv(salt, ssrc, index);
            let tag = if l.encrypt_rtcp {
                // AAD: the clear header and the E/index word (§9.2).
                let mut aad = [0u8; RTCP_HEADER_LEN + 4];
                aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                gcm.seal(&iv, &aad, &mut buf[RTCP_HEADER_LEN..len])
            } else {
                // Authentication only (§9.3): the whole packet and the word are AAD.
                buf[len..len + 4].copy_from_slice(&word);
                gcm.seal(&iv, &buf[..len + 4], &mut [])
            };
            buf[len..len + GCM_TAG].copy_from_slice(&tag);
            buf[len + GCM_TAG..len + GCM_TAG + 4].copy_from_slice(&word);
            let end = len + GCM_TAG + 4;
            buf[end..end + l.mki.len()].copy_from_slice(l.mki);
            end + l.mki.len()
        }
        Transform::Cm { .. } | Transform::F8 { .. } | Transform::Null { .. } => {
            if l.encrypt_rtcp {
                t.rtcp_xor(buf, len, ssrc, index);
            }
            buf[len..len + 4].copy_from_slice(&word);
            let mut end = len + 4;
            buf[end..end + l.mki.len()].copy_from_slice(l.mki);
            end += l.mki.len();
            if let Some(mac) = t.mac() {
                let tag = mac.tag(&[&buf[..len + 4]]);
                buf[end..end + l.rtcp_tag].copy_from_slice(&tag[..l.rtcp_tag]);
                end += l.rtcp_tag;
            }
            end
        }
    }
}

/// Where the parts of a received SRTCP packet are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtcpParts {
    /// End of the RTCP packet (encrypted or not); for GCM the tag follows it.
    pub body_end: usize,
    /// The E flag / index word.
    pub word_at: usize,
    pub mki_at: usize,
    pub encrypted: bool,
    pub index: u32,
}

/// Splits a received SRTCP packet; `None` when too short for header and trailer.
pub(crate) fn rtcp_parts(t: &Transform, l: &Layout<'_>, buf: &[u8]) -> Option<RtcpParts> {
    let len = buf.len();
    let (word_at, mki_at, body_end) = match t {
        Transform::Gcm { .. } => {
            let mki_at = len.checked_sub(l.mki.len())?;
            let word_at = mki_at.checked_sub(4)?;
            (word_at, mki_at, word_at.checked_sub(GCM_TAG)?)
        }
        _ => {
            let tag_at = len.checked_sub(l.rtcp_tag)?;
            let mki_at = tag_at.checked_sub(l.mki.len())?;
            let word_at = mki_at.checked_sub(4)?;
            (word_at, mki_at, word_at)
        }
    };
    if body_end < RTCP_HEADER_LEN {
        return None;
    }
    let w = buf.get(word_at..word_at + 4)?;
    let word = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
    Some(RtcpParts {
        body_end,
        word_at,
        mki_at,
        encrypted: word & SRTCP_E_FLAG != 0,
        index: word & SRTCP_INDEX_MAX,
    })
}

/// Authenticates and decrypts a received SRTCP packet in place; returns the RTCP length.
pub(crate) fn rtcp_unprotect(
    t: &Transform,
    l: &Layout<'_>,
    buf: &mut [u8],
    p: RtcpParts,
    ssrc: u32,
) -> Result<usize, SrtpError> {
    match t {
        Transform::Gcm { gcm, salt } => {
            let iv = gcm_rtcp_iv(salt, ssrc, p.index);
            let mut tag = [0u8; GCM_TAG];
            tag.copy_from_slice(&buf[p.body_end..p.word_at]);
            let mut word = [0u8; 4];
            word.copy_from_slice(&buf[p.word_at..p.word_at + 4]);
            if p.encrypted {
                let mut aad = [0u8; RTCP_HEADER_LEN + 4];
                aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                gcm.open(&iv, &aad, &mut buf[RTCP_HEADER_LEN..p.body_end], &tag)?;
            } else {
                // The AAD is packet || word: move the word next to the packet for the check,
                // then put the tag back.
                buf[p.body_end..p.body_end + 4].copy_from_slice(&word);
                let r = gcm.open(&iv, &buf[..p.body_end + 4], &mut [], &tag);
                buf[p.body_end..p.word_at].copy_from_slice(&tag);
                r?;
            }
        }
        Transform::Cm { .. } | Transform::F8 { .. } | Transform::Null { .. } => {
            if let Some(mac) = t.mac() {
                let want = mac.tag(&[&buf[..p.word_at + 4]]);
                let tag_at = p.mki_at + l.mki.len();
                let got = buf
                    .get(tag_at..tag_at + l.rtcp_tag)
                    .ok_or(SrtpError::AuthFailed)?;
                if !tags_equal(&want[..l.rtcp_tag], got) {
                    return Err(SrtpError::AuthFailed);
                }
            }
            if p.encrypted {
                t.rtcp_xor(buf, p.body_end, ssrc, p.index);
            }
        }
    }
    Ok(p.body_end)
}
