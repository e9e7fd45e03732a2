//! A blocking NG client for the load generator (UDP, bencode, retries).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use rtprelay::control::bencode::{self, Dict, Value};

pub struct NgClient {
    sock: UdpSocket,
    server: SocketAddr,
    seq: u64,
}

impl NgClient {
    pub fn new(server: SocketAddr) -> std::io::Result<NgClient> {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("literal");
        let sock = UdpSocket::bind(bind)?;
        sock.set_read_timeout(Some(Duration::from_millis(1000)))?;
        Ok(NgClient {
            sock,
            server,
            seq: 0,
        })
    }

    /// Sends a request dictionary and returns the reply dictionary.
    pub fn request(&mut self, pairs: &[(&str, Value)]) -> Result<Dict, String> {
        let mut d = Dict::new();
        for (k, v) in pairs {
            d.insert(k.as_bytes().to_vec(), v.clone());
        }
        self.seq += 1;
        let cookie = format!("b{}_{}", std::process::id(), self.seq);
        let mut msg = cookie.clone().into_bytes();
        msg.push(b' ');
        msg.extend(Value::Dict(d).encode());
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.sock
                .send_to(&msg, self.server)
                .map_err(|e| e.to_string())?;
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let reply = &buf[..n];
            let Some(body) = reply
                .strip_prefix(cookie.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            else {
                continue;
            };
            return match bencode::decode(body) {
                Ok(Value::Dict(d)) => Ok(d),
                other => Err(format!("bad reply: {other:?}")),
            };
        }
        Err("no reply from the relay".into())
    }
}

pub fn s(v: &str) -> Value {
    Value::Bytes(v.as_bytes().to_vec())
}

pub fn text(d: &Dict, key: &str) -> Option<String> {
    match d.get(key.as_bytes()) {
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}
