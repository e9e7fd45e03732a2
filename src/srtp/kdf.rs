//! Session keys from a master key and salt: the AES-CM PRF of RFC 3711 §4.3 (AES-128, and
//! AES-192/256 for the longer keys as RFC 6188 §4 says), with the 12-byte master salt of the AEAD
//! suites (RFC 7714 §11) in the first 12 bytes of the PRF's 14 and zeros after, as libsrtp and
//! the browsers do.
//!
//! The key derivation rate is 0 (derive once, at the start): SDES's `KDR=` and a rate in
//! DTLS-SRTP are not used by the peers rtpengine talks to; a context refuses nothing here, the
//! SDES layer decides.

use super::error::SrtpError;
use super::primitive::AesKey;
use super::suite::Suite;

/// RFC 3711 §4.3.1 key labels.
pub(crate) mod label {
    pub const RTP_ENCRYPTION: u8 = 0x00;
    pub const RTP_AUTH: u8 = 0x01;
    pub const RTP_SALT: u8 = 0x02;
    pub const RTCP_ENCRYPTION: u8 = 0x03;
    pub const RTCP_AUTH: u8 = 0x04;
    pub const RTCP_SALT: u8 = 0x05;
}

/// Fills `out` with PRF output for `label` (key derivation rate 0).
pub(crate) fn prf(prf_key: &AesKey, master_salt: &[u8], label: u8, out: &mut [u8]) {
    // x = (label || 48-bit index DIV kdr) XOR master salt, in 14 bytes; the AES-CM input is
    // x * 2^16. The label sits at byte 7 of the 14; the index part is zero.
    let mut iv = [0u8; 16];
    let n = master_salt.len().min(14);
    iv[..n].copy_from_slice(&master_salt[..n]);
    iv[7] ^= label;
    out.fill(0);
    prf_key.ctr_xor(&iv, out);
}

/// The session keys of one packet kind (SRTP or SRTCP).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub encryption: Vec<u8>,
    pub salt: Vec<u8>,
    pub auth: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.write_str("SessionKeys(..)")
    }
}

/// SRTP and SRTCP session keys for `suite` from its master key and salt.
pub fn derive(
    suite: Suite,
    master_key: &[u8],
    master_salt: &[u8],
) -> Result<(SessionKeys, SessionKeys), SrtpError> {
    if master_key.len() != suite.master_key_len() {
        return Err(SrtpError::BadKeyLength {
            what: "master key",
            want: suite.master_key_len(),
            got: master_key.len(),
        });
    }
    if master_salt.len() != suite.master_salt_len() {
        return Err(SrtpError::BadKeyLength {
            what: "master salt",
            want: suite.master_salt_len(),
            got: master_salt.len(),
        });
    }
    let prf_key = AesKey::new(master_key)?;
    let one = |enc: u8, auth: u8, salt: u8| {
        let mut k = SessionKeys {
            encryption: vec![0; suite.session_key_len()],
            salt: vec![0; suite.session_salt_len()],
            auth: vec![0; suite.auth_key_len()],
        };
        prf(&prf_key, master_salt, enc, &mut k.encryption);
        prf(&prf_key, master_salt, salt, &mut k.salt);
        prf(&prf_key, master_salt, auth, &mut k.auth);
        k
    };
    Ok((
        one(label::RTP_ENCRYPTION, label::RTP_AUTH, label::RTP_SALT),
        one(label::RTCP_ENCRYPTION, label::RTCP_AUTH, label::RTCP_SALT),
    ))
}
