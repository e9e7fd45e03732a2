//! Where the relay's SRTP master keys come from. The session layer is sans-IO, so the engine
//! is handed a [`KeySource`]: the daemon installs one that reads the operating system's random
//! generator; tests install [`CountingKeys`] for stable output. Without one ([`NoKeys`], the
//! default), the relay generates no keys and so offers no SDES keys of its own: a missing
//! source can never mean weak keys.

/// Fills buffers with key material.
pub trait KeySource: Send + std::fmt::Debug {
    /// Fills `buf` with fresh random bytes; false when no secure bytes are available (nothing
    /// is then generated from `buf`).
    fn fill(&mut self, buf: &mut [u8]) -> bool;
}

/// No key material: SDES keys of the relay's own are not generated.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoKeys;

impl KeySource for NoKeys {
    fn fill(&mut self, _buf: &mut [u8]) -> bool {
        false
    }
}

/// Predictable bytes for tests (never for production): the n-th call fills every byte with
/// `n` plus the byte's position, so each generated key differs and tests can name them.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingKeys {
    pub calls: u8,
}

impl KeySource for CountingKeys {
    fn fill(&mut self, buf: &mut [u8]) -> bool {
        self.calls = self.calls.wrapping_add(1);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.calls.wrapping_add(i as u8);
        }
        true
    }
}
