//! DTLS-SRTP (RFC 5764, RFC 5763): the relay's certificate and fingerprint, and a sans-IO
//! endpoint per media stream that runs the handshake and exports SRTP keys for `crate::srtp`.
//!
//! Wiring (done by the worker, not here): the RFC 7983 demultiplexer (`crate::wire::demux`)
//! sends DTLS datagrams of a stream to its [`DtlsEndpoint`]; the endpoint's datagrams go back to
//! the peer's address; once [`DtlsState::Connected`], [`SrtpKeys`] build the two
//! `crate::srtp::SrtpContext`s of the stream.
//!
//! # Stack
//!
//! dimpl (str0m's sans-IO DTLS 1.2) on its aws-lc-rs crypto provider, chosen on figures from
//! `bench/dtls`: full handshakes (ECDHE P-256, ECDSA P-256 certificates both ways, `use_srtp`,
//! key export), client and server in one thread, per CPU second of that thread (three sessions on
//! a loaded 2-core AMD EPYC; the README there has the command and the build times):
//!
//! | stack | handshakes per CPU second |
//! |---|---|
//! | dimpl + aws-lc-rs | 1720-2265 |
//! | openssl crate (Debian's libssl 3.0) | 459-704 |
//! | dimpl + RustCrypto | 327-379 |
//!
//! - Only dimpl + aws-lc-rs clears the 500/s target with room; RustCrypto's P-256 is 5-6 times
//!   slower than AWS-LC's assembly, and the signatures and ECDH dominate a handshake.
//! - dimpl is sans-IO with time passed in. OpenSSL's DTLS reads the clock itself for its
//!   retransmission timers (`DTLSv1_get_timeout`/`DTLSv1_handle_timeout`, which the openssl crate
//!   does not wrap: reaching them takes `openssl-sys` calls, `unsafe`).
//! - Cost: aws-lc-sys compiles AWS-LC's C with the `cc` crate (about 3 min of build script once;
//!   no cmake on x86_64 Linux), dimpl itself is a large crate (about 1 min in debug).
//! - SRTP itself stays on RustCrypto (`crate::srtp`): per packet it is as fast (see
//!   `bench/crypto`), and the SRTP code does not depend on the DTLS stack.
//!
//! Limits of the stack: ECDSA certificates only (no RSA `--dtls-cert-cipher`), SRTP profiles
//! `SRTP_AES128_CM_HMAC_SHA1_80`, `SRTP_AEAD_AES_128_GCM` and `SRTP_AEAD_AES_256_GCM` (no
//! `_SHA1_32`), cipher suites ECDHE-ECDSA with AES-GCM or ChaCha20-Poly1305.

pub mod cert;
pub mod context;
pub mod endpoint;
pub mod error;
pub mod fingerprint;
pub mod keys;

#[cfg(test)]
mod tests;

pub use cert::{CertCipher, Certificate};
pub use context::{DtlsContext, DtlsOptions};
pub use endpoint::{DtlsCounters, DtlsEndpoint, DtlsState, Role};
pub use error::DtlsError;
pub use fingerprint::{Fingerprint, HashFunc};
pub use keys::{SrtpKeys, SUPPORTED_SUITES};
