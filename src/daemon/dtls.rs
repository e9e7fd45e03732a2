//! The relay's DTLS context, made once at start: a fresh certificate (its validity from the
//! wall clock) and the `--dtls-*` options. Without it the relay still runs; flows that ask for
//! DTLS-SRTP then drop their media.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::DtlsConfig;
use crate::dtls::{Certificate, DtlsContext, DtlsError, DtlsOptions};

/// OpenSSL's default cipher string, as rtpengine passes it: any other value is one this stack
/// cannot honour.
const DEFAULT_CIPHERS: &str = "DEFAULT:!NULL:!aNULL:!SHA256:!SHA384:!aECDH:!AESGCM+AES256:!aPSK";

/// The context for `cfg`, or `None` (logged) when it cannot be made.
pub fn context(cfg: &DtlsConfig) -> Option<Arc<DtlsContext>> {
    if let Some(c) = cfg.ciphers.as_deref().filter(|c| *c != DEFAULT_CIPHERS) {
        tracing::warn!(
            ciphers = c,
            "--dtls-ciphers is not applicable: the DTLS suites are fixed (ECDHE-ECDSA with AES-GCM or ChaCha20-Poly1305)"
        );
    }
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match make(cfg, unix_secs) {
        Ok(ctx) => {
            tracing::info!(
                fingerprint = %ctx.certificate().fingerprint_with(cfg.signature),
                passive = cfg.passive,
                mtu = cfg.mtu,
                "DTLS certificate made"
            );
            Some(ctx)
        }
        Err(error) => {
            tracing::error!(%error, "no DTLS context: the relay runs without DTLS-SRTP");
            None
        }
    }
}

fn make(cfg: &DtlsConfig, unix_secs: u64) -> Result<Arc<DtlsContext>, DtlsError> {
    let cert = Certificate::generate(cfg.cert_cipher, unix_secs)?;
    let options = DtlsOptions {
        mtu: cfg.mtu,
        passive: cfg.passive,
        signature: cfg.signature,
        ..DtlsOptions::default()
    };
    DtlsContext::new(cert, options, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls::{CertCipher, HashFunc};

    #[test]
    fn the_options_reach_the_context() {
        let cfg = DtlsConfig {
            passive: true,
            mtu: 1000,
            signature: HashFunc::Sha384,
            ..DtlsConfig::default()
        };
        let ctx = context(&cfg).expect("context");
        let o = ctx.options();
        assert_eq!(
            (o.passive, o.mtu, o.signature),
            (true, 1000, HashFunc::Sha384)
        );
        let ctx = context(&DtlsConfig::default()).expect("context");
        assert_eq!(ctx.options().signature, HashFunc::Sha256);
        assert!(!ctx.options().passive);
    }

    #[test]
    fn what_cannot_be_made_leaves_no_context() {
        let rsa = DtlsConfig {
            cert_cipher: CertCipher::Rsa,
            ..DtlsConfig::default()
        };
        assert!(context(&rsa).is_none());
        let tiny = DtlsConfig {
            mtu: 10,
            ..DtlsConfig::default()
        };
        assert!(context(&tiny).is_none());
    }
}
