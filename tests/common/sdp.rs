//! Builds the simple SDP bodies the tests send (one PCMU audio stream) and reads back the few fields tests need
//! from the relay's rewritten SDP (connection address and media port), by plain line scanning.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// An SDP with one `m=audio` line offering PCMU (0) and telephone-event (101).
pub fn sdp_offer(addr: Ipv4Addr, port: u16) -> String {
    audio_sdp(1001, addr, port, "0 101")
}

/// An SDP answering with PCMU (0) and telephone-event (101).
pub fn sdp_answer(addr: Ipv4Addr, port: u16) -> String {
    audio_sdp(2002, addr, port, "0 101")
}

fn audio_sdp(session: u32, addr: Ipv4Addr, port: u16, fmts: &str) -> String {
    [
        "v=0".to_owned(),
        format!("o=- {session} 1 IN IP4 {addr}"),
        "s=rtprelay-test".to_owned(),
        format!("c=IN IP4 {addr}"),
        "t=0 0".to_owned(),
        format!("m=audio {port} RTP/AVP {fmts}"),
        "a=rtpmap:0 PCMU/8000".to_owned(),
        "a=rtpmap:101 telephone-event/8000".to_owned(),
        "a=fmtp:101 0-15".to_owned(),
        "a=sendrecv".to_owned(),
        String::new(),
    ]
    .join("\r\n")
}

/// The port of the first `m=audio` line.
pub fn sdp_media_port(sdp: &str) -> Option<u16> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
}

/// The connection address of the first audio media: its own `c=` line, else the session-level one.
pub fn sdp_connection_addr(sdp: &str) -> Option<IpAddr> {
    let mut addr = None;
    let mut in_audio = false;
    let mut in_other = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_audio {
                break;
            }
            in_audio = m.starts_with("audio ");
            in_other = !in_audio;
        } else if let Some(c) = line.strip_prefix("c=IN ").filter(|_| !in_other) {
            addr = c.split(' ').nth(1).and_then(|a| a.parse().ok());
        }
    }
    addr
}

/// Where the SDP says its audio should be sent.
pub fn sdp_media_endpoint(sdp: &str) -> Option<SocketAddr> {
    Some(SocketAddr::new(
        sdp_connection_addr(sdp)?,
        sdp_media_port(sdp)?,
    ))
}
