//! A passive DTLS-SRTP endpoint fed arbitrary datagrams (2-byte length prefixes split the input)
//! and timer ticks never panics, and its send queue stays bounded.
//!
//! The endpoint catches a panic inside the DTLS library (dimpl) and fails itself; libFuzzer's
//! panic hook would abort on that caught panic, so panics located in dimpl's sources skip it.
//! Any panic that escapes the endpoint still aborts (libfuzzer-sys checks the target's result).
#![no_main]
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use rtprelay::dtls::{
    endpoint, CertCipher, Certificate, DtlsContext, DtlsEndpoint, DtlsOptions, Role,
};
use rtprelay::time::Millis;

fn ctx() -> Arc<DtlsContext> {
    static CTX: OnceLock<Arc<DtlsContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dimpl = info
                .location()
                .is_some_and(|l| l.file().contains("/dimpl-"));
            if !in_dimpl {
                fuzzer_hook(info);
            }
        }));
        let cert = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("cert");
        DtlsContext::new(cert, DtlsOptions::default(), Instant::now()).expect("ctx")
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let mut ep = DtlsEndpoint::new(ctx(), Role::Passive, None, Millis(0));
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let take = len.min(rest.len());
        let (d, r) = rest.split_at(take);
        rest = r;
        now += 7;
        let _ = ep.handle_datagram(d, Millis(now));
        if len % 3 == 0 {
            if let Some(t) = ep.poll_timeout() {
                let _ = ep.handle_timeout(t);
            }
        }
        let mut n = 0;
        while ep.poll_transmit().is_some() {
            n += 1;
        }
        assert!(n <= endpoint::MAX_QUEUED_DATAGRAMS);
    }
    let _ = (ep.state(), ep.counters(), ep.srtp_keys());
});
