//! SRTP/SRTCP unprotect never panics on any bytes, for every suite with and without MKI and
//! session parameters; and whatever protect accepts, unprotect gives back unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::srtp::{Params, SrtpContext, Suite};

fn context(suite: Suite, flags: u8) -> Option<SrtpContext> {
    let key: Vec<u8> = (0..suite.master_key_len() as u8).collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8).map(|b| b ^ 0x5a).collect();
    let mut p = Params::new(suite, &key, &salt);
    if flags & 1 != 0 {
        p.mki = vec![0, 1, 2, 3];
    }
    p.unencrypted_srtcp = flags & 2 != 0;
    p.unencrypted_srtp = flags & 4 != 0;
    p.unauthenticated_srtp = flags & 8 != 0;
    p.replay_window = if flags & 16 != 0 { 64 } else { 128 };
    p.max_ssrcs = 4;
    // AEAD suites refuse the unencrypted/unauthenticated flags: that is an error, not a crash.
    SrtpContext::new(&p).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&flags, packet)) = rest.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(sel) % Suite::ALL.len()];
    let (Some(mut tx), Some(mut rx)) = (context(suite, flags), context(suite, flags)) else {
        return;
    };

    // Hostile input straight into unprotect.
    let _ = rx.unprotect_rtp(&mut packet.to_vec());
    let _ = rx.unprotect_rtcp(&mut packet.to_vec());

    // Round trips: what protect takes comes back from a fresh receiver.
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + tx.rtp_overhead(), 0);
    if let Ok(n) = tx.protect_rtp(&mut buf, packet.len()) {
        buf.truncate(n);
        let mut fresh = context(suite, flags).expect("built once already");
        let m = fresh.unprotect_rtp(&mut buf).expect("own SRTP packet unprotects");
        assert_eq!(&buf[..m], packet);
    }
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + tx.rtcp_overhead(), 0);
    if let Ok(n) = tx.protect_rtcp(&mut buf, packet.len()) {
        buf.truncate(n);
        let mut fresh = context(suite, flags).expect("built once already");
        let m = fresh.unprotect_rtcp(&mut buf).expect("own SRTCP packet unprotects");
        assert_eq!(&buf[..m], packet);
    }
});
