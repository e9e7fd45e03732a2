//! The incremental NG-over-TCP framer agrees with the one-shot `next_frame` however the stream is
//! cut, and its work stays linear in the bytes pushed.
//!
//! Input: a count `k`, then `k` piece sizes (0 counts as 1), then the stream, fed in pieces of
//! those sizes in turn. Agreement: the same messages in the same order, and the same verdict on
//! what follows them (more bytes needed, or invalid). For a JSON body the framer checks the
//! object once its brackets balance, so it may decide later than the one-shot parser (which
//! refuses some objects early) or earlier (serde reports a bad `\u` escape near the end of the
//! buffer as a short read); on a message either of them completes, they always agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::control::transport::framing::{next_frame, Frame, Framer, Next};

/// How a stream ends after its complete messages.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Incomplete,
    /// Invalid from the start of this (whitespace-trimmed) message.
    Invalid(Vec<u8>),
}

fn one_shot(data: &[u8]) -> (Vec<Vec<u8>>, End) {
    let mut msgs = Vec::new();
    let mut at = 0;
    loop {
        let rest = &data[at..];
        match next_frame(rest) {
            Frame::Complete { skip, len } => {
                msgs.push(rest[skip..skip + len].to_vec());
                at += skip + len;
            }
            Frame::Incomplete { .. } => return (msgs, End::Incomplete),
            Frame::Invalid { skip } => return (msgs, End::Invalid(rest[skip..].to_vec())),
        }
    }
}

fn incremental(data: &[u8], sizes: &[u8]) -> (Vec<Vec<u8>>, End, u64) {
    let mut f = Framer::new();
    let mut msgs = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let size = usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(7).max(1));
        i += 1;
        let end = (at + size).min(data.len());
        f.push(&data[at..end]);
        at = end;
        loop {
            match f.next_message() {
                Next::Message(m) => msgs.push(m),
                Next::Incomplete => break,
                Next::Invalid(rest) => return (msgs, End::Invalid(rest), f.work()),
            }
        }
    }
    (msgs, End::Incomplete, f.work())
}

/// True if `msg` (cookie, space, body) has a JSON body.
fn json_body(msg: &[u8]) -> bool {
    msg.iter()
        .position(|&b| b == b' ')
        .and_then(|sp| msg.get(sp + 1))
        == Some(&b'{')
}

fuzz_target!(|input: &[u8]| {
    let Some((&k, rest)) = input.split_first() else {
        return;
    };
    let k = usize::from(k % 8).min(rest.len());
    let (sizes, data) = rest.split_at(k);
    let (want, want_end) = one_shot(data);
    let (got, got_end, work) = incremental(data, sizes);
    assert_eq!(got, want, "messages differ");
    match (&got_end, &want_end) {
        (End::Incomplete, End::Incomplete) => {}
        (End::Invalid(_), End::Invalid(_)) => {}
        (End::Incomplete, End::Invalid(rest)) => {
            assert!(json_body(rest), "the framer waits where the one-shot parser refuses")
        }
        (End::Invalid(rest), End::Incomplete) => {
            assert!(json_body(rest), "the framer refuses what may still complete")
        }
    }
    // Each byte scanned once, each message body decoded once.
    assert!(work <= 2 * data.len() as u64, "work {work} for {} bytes", data.len());
});
