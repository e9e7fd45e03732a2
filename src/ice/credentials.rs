//! Short-term credentials (RFC 8445 §5.3): ufrag and password, drawn from a random source the
//! caller passes in (the core reads no global randomness).

use rand::RngCore;

/// Letters and digits only, a subset of RFC 8839's `ice-char`s: what rtpengine writes (8 and
/// 26 of them), and what no SIP stack chokes on.
const ICE_CHARS: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// At least 24 bits of randomness for the ufrag (RFC 8445 §5.3): 8 chars give 47.
const UFRAG_LEN: usize = 8;
/// At least 128 bits for the password: 26 chars give 154.
const PWD_LEN: usize = 26;
/// Random bytes per character: a 16-bit draw modulo 62 is within 2 in 65536 of uniform.
const BYTES_PER_CHAR: usize = 2;

/// One side's ufrag and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub ufrag: String,
    pub pwd: String,
}

impl Credentials {
    /// Random bytes [`Credentials::from_random_bytes`] takes: two per character.
    pub const RANDOM_BYTES: usize = (UFRAG_LEN + PWD_LEN) * BYTES_PER_CHAR;

    /// Fresh credentials from `rng`.
    pub fn random(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        rng.fill_bytes(&mut bytes);
        Credentials::from_random_bytes(&bytes)
    }

    /// Credentials from random bytes the caller drew (the session layer draws them from its key
    /// source): the first 16 make the ufrag, the rest the password.
    pub fn from_random_bytes(bytes: &[u8; Self::RANDOM_BYTES]) -> Self {
        let (ufrag, pwd) = bytes.split_at(UFRAG_LEN * BYTES_PER_CHAR);
        Credentials {
            ufrag: letters_and_digits(ufrag),
            pwd: letters_and_digits(pwd),
        }
    }
}

/// Random bytes to letters and digits, two bytes a character (an odd last byte is unused).
pub fn letters_and_digits(bytes: &[u8]) -> String {
    bytes
        .chunks_exact(BYTES_PER_CHAR)
        .map(|c| {
            let draw = usize::from(u16::from_le_bytes([c[0], c[1]]));
            char::from(ICE_CHARS[draw % ICE_CHARS.len()])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_letters_and_digits_of_rtpengines_lengths() {
        let mut bytes = [0u8; Credentials::RANDOM_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(97).wrapping_add(13);
        }
        let c = Credentials::from_random_bytes(&bytes);
        assert_eq!((c.ufrag.len(), c.pwd.len()), (8, 26));
        assert!(c
            .ufrag
            .chars()
            .chain(c.pwd.chars())
            .all(|ch| ch.is_ascii_alphanumeric()));
        // Every byte counts: changing one changes the credentials.
        bytes[Credentials::RANDOM_BYTES - 1] ^= 1;
        assert_ne!(Credentials::from_random_bytes(&bytes), c);
    }
}
