//! The crypto suites rtpengine offers over SDES (RFC 4568, RFC 6188, RFC 7714), with the lengths
//! each one needs.
//!
//! The F8 suites (RFC 4568 §6.2.2) are AES-128 in f8-mode (RFC 3711 §4.1.2) with the lengths,
//! key derivation and HMAC-SHA1 tags of `AES_CM_128_HMAC_SHA1_80/32`.
//!
//! The NULL suites are treated as rtpengine treats them: a 16-byte master key and a 14-byte master
//! salt (as `AES_CM_128`), the auth keys derived with the AES-128 PRF, the payload left in clear,
//! HMAC-SHA1 tags of 10 (`_80`) or 4 (`_32`) bytes on SRTP and always 10 on SRTCP, and the SRTCP
//! E flag set unless `UNENCRYPTED_SRTCP` is negotiated (nothing is encrypted either way).

use std::fmt;

/// What protects the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherKind {
    /// AES in counter mode (RFC 3711 §4.1.1) with an HMAC-SHA1 tag.
    AesCm,
    /// AES-GCM (RFC 7714): encryption and tag in one.
    AesGcm,
    /// AES-128 in f8-mode (RFC 3711 §4.1.2) with an HMAC-SHA1 tag.
    AesF8,
    /// No encryption, HMAC-SHA1 tag only.
    Null,
}

/// An SRTP crypto suite, named as in `a=crypto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AeadAes256Gcm,
    AeadAes128Gcm,
    Aes256CmHmacSha1_80,
    Aes256CmHmacSha1_32,
    Aes192CmHmacSha1_80,
    Aes192CmHmacSha1_32,
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    F8_128HmacSha1_80,
    F8_128HmacSha1_32,
    NullHmacSha1_80,
    NullHmacSha1_32,
}

impl Suite {
    /// Every suite, in rtpengine's order of preference (strongest first; the F8 suites between
    /// the AES-CM and the NULL ones, as rtpengine 10.5 offers them).
    pub const ALL: [Suite; 12] = [
        Suite::AeadAes256Gcm,
        Suite::AeadAes128Gcm,
        Suite::Aes256CmHmacSha1_80,
        Suite::Aes256CmHmacSha1_32,
        Suite::Aes192CmHmacSha1_80,
        Suite::Aes192CmHmacSha1_32,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::F8_128HmacSha1_80,
        Suite::F8_128HmacSha1_32,
        Suite::NullHmacSha1_80,
        Suite::NullHmacSha1_32,
    ];

    /// The name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Suite::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::F8_128HmacSha1_80 => "F8_128_HMAC_SHA1_80",
            Suite::F8_128HmacSha1_32 => "F8_128_HMAC_SHA1_32",
            Suite::NullHmacSha1_80 => "NULL_HMAC_SHA1_80",
            Suite::NullHmacSha1_32 => "NULL_HMAC_SHA1_32",
        }
    }

    /// The suite with this `a=crypto` name (ASCII case ignored), if we implement it.
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    pub fn cipher(self) -> CipherKind {
        match self {
            Suite::AeadAes256Gcm | Suite::AeadAes128Gcm => CipherKind::AesGcm,
            Suite::NullHmacSha1_80 | Suite::NullHmacSha1_32 => CipherKind::Null,
            Suite::F8_128HmacSha1_80 | Suite::F8_128HmacSha1_32 => CipherKind::AesF8,
            _ => CipherKind::AesCm,
        }
    }

    /// Master key length (bytes): also the AES key size of the key derivation.
    pub fn master_key_len(self) -> usize {
        match self {
            Suite::AeadAes256Gcm | Suite::Aes256CmHmacSha1_80 | Suite::Aes256CmHmacSha1_32 => 32,
            Suite::Aes192CmHmacSha1_80 | Suite::Aes192CmHmacSha1_32 => 24,
            _ => 16,
        }
    }

    /// Master salt length (bytes): 12 for the AEAD suites (RFC 7714 §12), 14 otherwise.
    pub fn master_salt_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesGcm => 12,
            _ => 14,
        }
    }

    /// Length of the base64 key material of `inline:` (master key then master salt).
    pub fn inline_key_len(self) -> usize {
        self.master_key_len() + self.master_salt_len()
    }

    /// Session encryption key length (bytes); 0 for NULL.
    pub fn session_key_len(self) -> usize {
        match self.cipher() {
            CipherKind::Null => 0,
            _ => self.master_key_len(),
        }
    }

    /// Session salt length (bytes); 0 for NULL.
    pub fn session_salt_len(self) -> usize {
        match self.cipher() {
            CipherKind::Null => 0,
            _ => self.master_salt_len(),
        }
    }

    /// Session authentication key length (bytes); 0 for AEAD.
    pub fn auth_key_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesGcm => 0,
            _ => 20,
        }
    }

    /// SRTP authentication tag length (bytes).
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AeadAes256Gcm | Suite::AeadAes128Gcm => 16,
            Suite::Aes256CmHmacSha1_32
            | Suite::Aes192CmHmacSha1_32
            | Suite::AesCm128HmacSha1_32
            | Suite::F8_128HmacSha1_32
            | Suite::NullHmacSha1_32 => 4,
            _ => 10,
        }
    }

    /// SRTCP authentication tag length (bytes): the `_32` suites still use 80 bits on SRTCP
    /// (RFC 4568 §6.2).
    pub fn rtcp_tag_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesGcm => 16,
            _ => 10,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_name(s.name()), Some(s));
            assert_eq!(Suite::from_name(&s.name().to_ascii_lowercase()), Some(s));
        }
        assert_eq!(Suite::from_name("AES_CM_256_HMAC_SHA1_80"), None);
        assert_eq!(Suite::from_name(""), None);
    }

    #[test]
    fn lengths_follow_the_rfcs() {
        assert_eq!(Suite::AesCm128HmacSha1_80.inline_key_len(), 30);
        assert_eq!(Suite::Aes192CmHmacSha1_32.inline_key_len(), 38);
        assert_eq!(Suite::Aes256CmHmacSha1_80.inline_key_len(), 46);
        assert_eq!(Suite::AeadAes128Gcm.inline_key_len(), 28);
        assert_eq!(Suite::AeadAes256Gcm.inline_key_len(), 44);
        assert_eq!(Suite::NullHmacSha1_32.inline_key_len(), 30);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtp_tag_len(), 4);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtcp_tag_len(), 10);
        assert_eq!(Suite::NullHmacSha1_32.rtcp_tag_len(), 10);
        assert_eq!(Suite::AeadAes256Gcm.rtcp_tag_len(), 16);
        assert_eq!(Suite::NullHmacSha1_80.session_key_len(), 0);
        assert_eq!(Suite::F8_128HmacSha1_80.inline_key_len(), 30);
        assert_eq!(Suite::F8_128HmacSha1_80.session_salt_len(), 14);
        assert_eq!(Suite::F8_128HmacSha1_80.rtp_tag_len(), 10);
        assert_eq!(Suite::F8_128HmacSha1_32.rtp_tag_len(), 4);
        assert_eq!(Suite::F8_128HmacSha1_32.rtcp_tag_len(), 10);
    }
}
