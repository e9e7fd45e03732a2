//! Short-term credentials (RFC 8445 §5.3): ufrag and password, drawn from a random source the
//! caller passes in (the core reads no global randomness).

use rand::RngCore;

/// RFC 8839 `ice-char`s.
const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// At least 24 bits of randomness for the ufrag (RFC 8445 §5.3): 8 chars give 48.
const UFRAG_LEN: usize = 8;
/// At least 128 bits for the password: 24 chars give 144.
const PWD_LEN: usize = 24;

/// One side's ufrag and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub ufrag: String,
    pub pwd: String,
}

fn random_chars(rng: &mut impl RngCore, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ICE_CHARS[usize::from(b & 63)]))
        .collect()
}

impl Credentials {
    /// Fresh credentials from `rng`.
    pub fn random(rng: &mut impl RngCore) -> Self {
        Credentials {
            ufrag: random_chars(rng, UFRAG_LEN),
            pwd: random_chars(rng, PWD_LEN),
        }
    }
}
