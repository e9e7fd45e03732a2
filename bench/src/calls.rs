//! Sets up and tears down N calls over NG, each with a caller and a callee socket.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use rtprelay::srtp::{SrtpContext, Suite};

use crate::ng::{s, text, NgClient};
use crate::srtp::{relay_context, OwnKey};

/// One call: the two endpoint sockets and the relay addresses each side sends to.
pub struct Call {
    pub id: String,
    /// Caller socket and the relay address it sends to.
    pub a: UdpSocket,
    pub a_to: SocketAddr,
    /// Callee socket and the relay address it sends to.
    pub b: UdpSocket,
    pub b_to: SocketAddr,
    /// SRTP on the caller's side: the context protecting what the caller sends (its own key)
    /// and the one checking what it receives (the relay's key from the answer).
    pub a_srtp: Option<(SrtpContext, SrtpContext)>,
}

/// A G.711 offer or answer; with `crypto`, an `RTP/SAVP` one with that `a=crypto` line.
fn sdp(ip: IpAddr, port: u16, crypto: Option<&str>) -> String {
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let (proto, line) = match crypto {
        Some(c) => ("RTP/SAVP", format!("a=crypto:{c}\r\n")),
        None => ("RTP/AVP", String::new()),
    };
    format!("v=0\r\no=- 1 1 IN {fam} {ip}\r\ns=bench\r\nc=IN {fam} {ip}\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=sendrecv\r\n{line}")
}

/// The relay address in a rewritten SDP (c= and the first m= port).
fn relay_addr(sdp: &str) -> Option<SocketAddr> {
    let ip: IpAddr = sdp
        .lines()
        .find_map(|l| {
            l.strip_prefix("c=IN IP4 ")
                .or_else(|| l.strip_prefix("c=IN IP6 "))
        })?
        .trim()
        .parse()
        .ok()?;
    let port: u16 = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Sets up `n` calls. With `srtp`, the caller offers `RTP/SAVP` with its own key in that suite,
/// the relay is asked for plain `RTP/AVP` toward the callee and for `RTP/SAVP` in the answer it
/// gives the caller (SDES bridging).
pub fn setup(
    ng: &mut NgClient,
    n: usize,
    local: IpAddr,
    tag: &str,
    srtp: Option<Suite>,
) -> Result<Vec<Call>, String> {
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        let a = UdpSocket::bind((local, 0)).map_err(|e| e.to_string())?;
        let b = UdpSocket::bind((local, 0)).map_err(|e| e.to_string())?;
        let pa = a.local_addr().map_err(|e| e.to_string())?.port();
        let pb = b.local_addr().map_err(|e| e.to_string())?.port();
        let id = format!("bench-{tag}-{i}");
        let own = srtp.map(OwnKey::random);
        let own_line = own.as_ref().map(OwnKey::attribute);
        let offer_sdp = sdp(local, pa, own_line.as_deref());
        let mut req = vec![
            ("command", s("offer")),
            ("call-id", s(&id)),
            ("from-tag", s("caller")),
            ("sdp", s(&offer_sdp)),
        ];
        if srtp.is_some() {
            req.push(("transport-protocol", s("RTP/AVP")));
        }
        let offer = ng.request(&req)?;
        let b_to = text(&offer, "sdp")
            .and_then(|t| relay_addr(&t))
            .ok_or_else(|| format!("offer failed: {offer:?}"))?;
        let answer_sdp = sdp(local, pb, None);
        let mut req = vec![
            ("command", s("answer")),
            ("call-id", s(&id)),
            ("from-tag", s("caller")),
            ("to-tag", s("callee")),
            ("sdp", s(&answer_sdp)),
        ];
        if srtp.is_some() {
            req.push(("transport-protocol", s("RTP/SAVP")));
        }
        let answer = ng.request(&req)?;
        let answer_text =
            text(&answer, "sdp").ok_or_else(|| format!("answer failed: {answer:?}"))?;
        let a_to = relay_addr(&answer_text).ok_or_else(|| format!("answer failed: {answer:?}"))?;
        let a_srtp = match (own, srtp) {
            (Some(own), Some(suite)) => Some((own.context()?, relay_context(&answer_text, suite)?)),
            _ => None,
        };
        calls.push(Call {
            id,
            a,
            a_to,
            b,
            b_to,
            a_srtp,
        });
    }
    Ok(calls)
}

pub fn teardown(ng: &mut NgClient, ids: &[String]) {
    for id in ids {
        let _ = ng.request(&[
            ("command", s("delete")),
            ("call-id", s(id)),
            ("from-tag", s("caller")),
        ]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_relay_address_in_an_sdp() {
        let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30002 RTP/AVP 0\r\n";
        assert_eq!(
            super::relay_addr(sdp),
            Some("127.0.0.1:30002".parse().unwrap())
        );
    }
}
