//! The DTLS record walk and the RFC 7983 classifier never panic, and the walk stays inside the
//! datagram.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::wire::{demux, dtls};

fuzz_target!(|data: &[u8]| {
    let _ = demux::classify(data);
    let mut total = 0usize;
    for rec in dtls::records(data) {
        match rec {
            Ok(r) => {
                total += dtls::field::HEADER_LEN + r.fragment.len();
                let _ = (
                    r.content_type,
                    r.version,
                    r.epoch,
                    r.sequence,
                    r.handshake_type(),
                );
            }
            Err(_) => break,
        }
    }
    assert!(total <= data.len());
    let _ = dtls::starts_with_client_hello(data);
    let _ = dtls::is_well_framed(data);
});
