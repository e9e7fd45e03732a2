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

impl Credentials {
    /// Random bytes [`Credentials::from_random_bytes`] takes: one per character.
    pub const RANDOM_BYTES: usize = UFRAG_LEN + PWD_LEN;

    /// Fresh credentials from `rng`.
    pub fn random(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        rng.fill_bytes(&mut bytes);
        Credentials::from_random_bytes(&bytes)
    }

    /// Credentials from random bytes the caller drew (the session layer draws them from its key
    /// source): the first 8 make the ufrag, the rest the password.
    pub fn from_random_bytes(bytes: &[u8; Self::RANDOM_BYTES]) -> Self {
        let chars = |b: &[u8]| -> String {
            b.iter()
                .map(|b| char::from(ICE_CHARS[usize::from(b & 63)]))
                .collect()
        };
        let (ufrag, pwd) = bytes.split_at(UFRAG_LEN);
        Credentials {
            ufrag: chars(ufrag),
            pwd: chars(pwd),
        }
    }
}
