//! SDES-SRTP on the caller's side of each call: the caller offers `RTP/SAVP` with its own key,
//! the relay bridges to plain RTP toward the callee, and answers the caller with its key. The
//! generator then protects what the caller sends and checks (authenticates and decrypts) what
//! the caller receives, so the relay does one unprotect and one protect per packet pair.
//!
//! The generator's crypto runs in its own threads: the relay's CPU per packet, read from the
//! relay's /proc entry, does not include it. What it costs the generator shows in
//! `generator_cpu_us_per_sent_packet`.

use rand::Rng;
use rtprelay::sdp::crypto::{Crypto, KeyParam};
use rtprelay::srtp::{Params, SrtpContext, Suite};

/// The SRTP mode of the caller's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Plain RTP on both sides.
    None,
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm,
    /// `AEAD_AES_128_GCM`.
    AesGcm,
}

impl Mode {
    pub fn suite(self) -> Option<Suite> {
        match self {
            Mode::None => None,
            Mode::AesCm => Some(Suite::AesCm128HmacSha1_80),
            Mode::AesGcm => Some(Suite::AeadAes128Gcm),
        }
    }
}

/// The caller's own key for `suite`: random master key and salt.
pub struct OwnKey {
    suite: Suite,
    key_salt: Vec<u8>,
}

impl OwnKey {
    pub fn random(suite: Suite) -> OwnKey {
        let mut key_salt = vec![0u8; suite.master_key_len() + suite.master_salt_len()];
        rand::rng().fill(key_salt.as_mut_slice());
        OwnKey { suite, key_salt }
    }

    /// The `a=crypto` line (without `a=` and CRLF) offering this key.
    pub fn attribute(&self) -> String {
        Crypto::new(1, self.suite, KeyParam::inline(&self.key_salt)).to_string()
    }

    /// The context that protects what the caller sends.
    pub fn context(&self) -> Result<SrtpContext, String> {
        context(self.suite, &self.key_salt)
    }
}

fn context(suite: Suite, key_salt: &[u8]) -> Result<SrtpContext, String> {
    let (key, salt) = key_salt.split_at(suite.master_key_len().min(key_salt.len()));
    SrtpContext::new(&Params::new(suite, key, salt)).map_err(|e| e.to_string())
}

/// The context for what the relay sends the caller, from the first `a=crypto` line of the
/// relay's answer with `suite`.
pub fn relay_context(sdp: &str, suite: Suite) -> Result<SrtpContext, String> {
    let crypto = sdp
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=crypto:"))
        .filter_map(|v| v.parse::<Crypto>().ok())
        .find(|c| c.suite() == Some(suite))
        .ok_or_else(|| format!("no a=crypto line with {suite} in the answer: {sdp:?}"))?;
    let key_salt = crypto
        .keys
        .first()
        .ok_or("a=crypto without a key")?
        .key_salt()
        .map_err(|e| e.to_string())?;
    let want = suite.master_key_len() + suite.master_salt_len();
    if key_salt.len() != want {
        return Err(format!(
            "{suite} key of {} bytes, want {want}",
            key_salt.len()
        ));
    }
    context(suite, &key_salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one side protects with its offered key, a context built from the offer's line
    /// (as the relay builds it) unprotects; a packet changed on the way does not authenticate.
    #[test]
    fn an_offered_key_round_trips_through_its_sdp_line() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm] {
            let own = OwnKey::random(suite);
            let sdp = format!(
                "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:{}\r\n",
                own.attribute()
            );
            let mut tx = own.context().unwrap();
            let mut rx = relay_context(&sdp, suite).unwrap();
            let mut buf = [0u8; 256];
            crate::traffic::packet(&mut buf, 7, 1, 42);
            let n = tx.protect_rtp(&mut buf, 172).unwrap();
            assert_eq!(n, 172 + suite.rtp_tag_len());
            let mut damaged = buf;
            damaged[30] ^= 1;
            assert!(rx.unprotect_rtp(&mut damaged[..n]).is_err());
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]).unwrap(), 172);
            assert_eq!(buf[12..20], 42u64.to_be_bytes());
        }
    }

    #[test]
    fn an_answer_without_the_suite_is_an_error() {
        let own = OwnKey::random(Suite::AeadAes128Gcm);
        let sdp = format!("a=crypto:{}\r\n", own.attribute());
        assert!(relay_context(&sdp, Suite::AesCm128HmacSha1_80).is_err());
        assert!(relay_context("v=0\r\n", Suite::AeadAes128Gcm).is_err());
    }
}
