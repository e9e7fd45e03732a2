//! The daemon's SDES key source: the operating system's random generator (`getrandom(2)`
//! through `rand`'s `OsRng`), asked afresh for every key, never seeded once and stretched.

use rand::rngs::OsRng;
use rand::TryRngCore;

use crate::session::keys::KeySource;

/// Keys from the OS random generator. A failure (which Linux does not have once booted) means
/// no key: the suite is then left out of the offer.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsKeys;

impl KeySource for OsKeys {
    fn fill(&mut self, buf: &mut [u8]) -> bool {
        match OsRng.try_fill_bytes(buf) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "OS random generator failed: no SDES key");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ() {
        let (mut a, mut b) = ([0u8; 30], [0u8; 30]);
        assert!(OsKeys.fill(&mut a) && OsKeys.fill(&mut b));
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 30]);
    }
}
