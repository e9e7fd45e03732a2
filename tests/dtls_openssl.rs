//! DTLS-SRTP interop of `rtprelay::dtls::DtlsEndpoint` with a real OpenSSL (Debian's `openssl`
//! binary, `s_server`/`s_client -dtls1_2 -use_srtp`) over UDP on loopback: the handshake
//! finishes both ways, the peer's certificate is checked against its fingerprint, and the SRTP
//! keys we derive are exactly OpenSSL's exporter output split as RFC 5764 §4.2 lays it out.

mod common;

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtprelay::dtls::{
    CertCipher, Certificate, DtlsContext, DtlsEndpoint, DtlsOptions, DtlsState, Fingerprint, Role,
    SrtpKeys,
};
use rtprelay::time::Millis;

use common::{require_or_skip, scratch_dir, PortBlock};

/// An `openssl` child whose stdin stays open (s_server/s_client quit on EOF), stopped by PID on
/// drop.
struct Openssl {
    child: Child,
    _stdin: ChildStdin,
    log: PathBuf,
}

impl Openssl {
    fn spawn(args: &[&str], log: &Path) -> Openssl {
        let out = std::fs::File::create(log).expect("log");
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out.try_clone().expect("dup")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start openssl");
        let stdin = child.stdin.take().expect("stdin");
        Openssl {
            child,
            _stdin: stdin,
            log: log.to_owned(),
        }
    }

    fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The exporter output OpenSSL prints (`Keying material: HEX`), waiting for it a little.
    fn keying_material(&self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.log_text();
            if let Some(hex) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Keying material: "))
            {
                return (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "openssl printed no keying material:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Openssl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A P-256 certificate and key for OpenSSL, and its SHA-256 fingerprint as SDP writes it.
fn openssl_cert(dir: &Path) -> (PathBuf, PathBuf, Fingerprint) {
    let (cert, key) = (dir.join("peer.pem"), dir.join("peer.key"));
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=peer",
        ])
        .args(["-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl req");
    assert!(ok.success());
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl x509");
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text
        .trim()
        .split_once('=')
        .map(|(_, h)| h)
        .expect("fingerprint");
    let fp = Fingerprint::parse(&format!("sha-256 {hex}")).expect("fingerprint parses");
    (cert, key, fp)
}

fn context() -> Arc<DtlsContext> {
    let cert = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("cert");
    DtlsContext::new(cert, DtlsOptions::default(), Instant::now()).expect("context")
}

/// Drive `ep` over `sock` until it is connected (or 10 s pass). `peer` is learned from the first
/// datagram when not given.
fn drive(ep: &mut DtlsEndpoint, sock: &UdpSocket, mut peer: Option<SocketAddr>) {
    let start = Instant::now();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        let now = Millis(start.elapsed().as_millis() as u64);
        if let Some(to) = peer {
            while let Some(d) = ep.poll_transmit() {
                sock.send_to(&d, to).expect("send");
            }
        }
        match ep.state() {
            DtlsState::Connected => return,
            DtlsState::Failed(e) => panic!("handshake failed: {e}"),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no handshake in 10 s: {ep:?}"
        );
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            peer.get_or_insert(from);
            let _ = ep.handle_datagram(&buf[..n], now);
        }
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            let _ = ep.handle_timeout(now);
        }
    }
}

/// Our keys are OpenSSL's exporter output split by role (client key, server key, client salt,
/// server salt).
fn assert_keys_match(keys: &SrtpKeys, material: &[u8], we_are_client: bool) {
    assert_eq!(
        material.len(),
        60,
        "AES_CM_128_HMAC_SHA1_80 exports 60 bytes"
    );
    let (ck, sk, cs, ss) = (
        &material[..16],
        &material[16..32],
        &material[32..46],
        &material[46..60],
    );
    let (local, remote) = if we_are_client {
        ((ck, cs), (sk, ss))
    } else {
        ((sk, ss), (ck, cs))
    };
    assert_eq!(
        (&keys.local.master_key[..], &keys.local.master_salt[..]),
        local
    );
    assert_eq!(
        (&keys.remote.master_key[..], &keys.remote.master_salt[..]),
        remote
    );
}

const SRTP: &str = "SRTP_AES128_CM_SHA1_80";

#[test]
fn relay_as_client_against_openssl_s_server() {
    if !require_or_skip("openssl") {
        return;
    }
    let dir = scratch_dir("dtls-s-server");
    let (cert, key, fp) = openssl_cert(&dir);
    let block = PortBlock::acquire();
    let port = block.port(0);
    let accept = format!("127.0.0.1:{port}");
    let server = Openssl::spawn(
        &[
            "s_server",
            "-dtls1_2",
            "-accept",
            &accept,
            "-cert",
            path(&cert),
            "-key",
            path(&key),
            "-use_srtp",
            SRTP,
            "-keymatexport",
            "EXTRACTOR-dtls_srtp",
            "-keymatexportlen",
            "60",
            "-verify",
            "1",
            "-naccept",
            "1",
        ],
        &dir.join("s_server.log"),
    );
    // s_server binds before it prints ACCEPT.
    wait_for_text(&server, "ACCEPT");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut ep = DtlsEndpoint::new(context(), Role::Active, Some(fp), Millis(0));
    drive(
        &mut ep,
        &sock,
        Some(format!("127.0.0.1:{port}").parse().expect("addr")),
    );
    let keys = ep.srtp_keys().expect("keys").clone();
    assert_keys_match(&keys, &server.keying_material(), true);
}

#[test]
fn relay_as_server_against_openssl_s_client() {
    if !require_or_skip("openssl") {
        return;
    }
    let dir = scratch_dir("dtls-s-client");
    let (cert, key, fp) = openssl_cert(&dir);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let connect = sock.local_addr().expect("addr").to_string();
    let mut ep = DtlsEndpoint::new(context(), Role::Passive, Some(fp), Millis(0));
    let client = Openssl::spawn(
        &[
            "s_client",
            "-dtls1_2",
            "-connect",
            &connect,
            "-cert",
            path(&cert),
            "-key",
            path(&key),
            "-use_srtp",
            SRTP,
            "-keymatexport",
            "EXTRACTOR-dtls_srtp",
            "-keymatexportlen",
            "60",
        ],
        &dir.join("s_client.log"),
    );
    drive(&mut ep, &sock, None);
    let keys = ep.srtp_keys().expect("keys").clone();
    assert_keys_match(&keys, &client.keying_material(), false);
}

#[test]
fn openssl_peer_with_another_certificate_is_refused() {
    if !require_or_skip("openssl") {
        return;
    }
    let dir = scratch_dir("dtls-wrong-fp");
    let (cert, key, _) = openssl_cert(&dir);
    let other = scratch_dir("dtls-wrong-fp-other");
    let (_, _, wrong) = openssl_cert(&other);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let connect = sock.local_addr().expect("addr").to_string();
    let mut ep = DtlsEndpoint::new(context(), Role::Passive, Some(wrong), Millis(0));
    let _client = Openssl::spawn(
        &[
            "s_client",
            "-dtls1_2",
            "-connect",
            &connect,
            "-cert",
            path(&cert),
            "-key",
            path(&key),
            "-use_srtp",
            SRTP,
        ],
        &dir.join("s_client.log"),
    );
    let start = Instant::now();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let mut peer = None;
    while start.elapsed() < Duration::from_secs(10) {
        let now = Millis(start.elapsed().as_millis() as u64);
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            peer = Some(from);
            let _ = ep.handle_datagram(&buf[..n], now);
        }
        if let Some(to) = peer {
            while let Some(d) = ep.poll_transmit() {
                let _ = sock.send_to(&d, to);
            }
        }
        if matches!(ep.state(), DtlsState::Failed(_)) {
            break;
        }
    }
    assert_eq!(
        ep.state(),
        DtlsState::Failed(rtprelay::dtls::DtlsError::FingerprintMismatch)
    );
    assert!(ep.srtp_keys().is_none());
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn wait_for_text(p: &Openssl, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.log_text().contains(what) {
        assert!(
            Instant::now() < deadline,
            "openssl did not print {what}:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
