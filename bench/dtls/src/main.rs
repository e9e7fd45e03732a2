//! Full DTLS 1.2 handshakes (client + server, in memory, one thread) per second, by library.
//!
//! Each handshake is what the relay does per DTLS-SRTP stream: ECDHE P-256, ECDSA P-256
//! certificates on both sides (the client sends one too, as WebRTC requires), the use_srtp
//! extension, and the SRTP keying material export at the end. Certificates are made once (the
//! relay makes its certificate at start); per handshake only the endpoints are new.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslMethod, SslStream, SslVerifyMode,
};
use openssl::x509::{X509NameBuilder, X509};

/// A self-signed ECDSA P-256 certificate and its key.
struct Cert {
    x509: X509,
    key: PKey<Private>,
}

fn make_cert() -> Cert {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "bench").expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("x509");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    let serial = openssl::bn::BigNum::from_u32(1)
        .expect("bn")
        .to_asn1_integer()
        .expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).expect("t"))
        .expect("na");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    Cert {
        x509: b.build(),
        key,
    }
}

// ---------- openssl: SslStream over an in-memory datagram queue ----------

/// One endpoint's datagram pipe: `read` takes one queued datagram (or WouldBlock), `write`
/// queues one outgoing datagram (openssl writes a whole flight record by record).
#[derive(Default, Debug)]
struct Pipe {
    inbox: VecDeque<Vec<u8>>,
    outbox: Vec<Vec<u8>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inbox.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbox.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn ossl_ctx(cert: &Cert) -> SslContext {
    let mut b = SslContext::builder(SslMethod::dtls()).expect("ctx");
    b.set_certificate(&cert.x509).expect("cert");
    b.set_private_key(&cert.key).expect("key");
    b.set_tlsext_use_srtp("SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80")
        .expect("srtp");
    b.set_cipher_list("ECDHE-ECDSA-AES128-GCM-SHA256")
        .expect("ciphers");
    b.set_min_proto_version(Some(openssl::ssl::SslVersion::DTLS1_2))
        .expect("ver");
    // Self-signed: the relay checks the SDP fingerprint, not a chain.
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |_, _| true,
    );
    b.build()
}

enum Side {
    Mid(MidHandshakeSslStream<Pipe>),
    Done(SslStream<Pipe>),
    Empty,
}

impl Side {
    fn step(&mut self) {
        *self = match std::mem::replace(self, Side::Empty) {
            Side::Mid(m) => match m.handshake() {
                Ok(s) => Side::Done(s),
                Err(HandshakeError::WouldBlock(m)) => Side::Mid(m),
                Err(e) => panic!("openssl handshake: {e}"),
            },
            other => other,
        }
    }
    fn pipe(&mut self) -> &mut Pipe {
        match self {
            Side::Mid(m) => m.get_mut(),
            Side::Done(s) => s.get_mut(),
            Side::Empty => unreachable!(),
        }
    }
    fn start(r: Result<SslStream<Pipe>, HandshakeError<Pipe>>) -> Side {
        match r {
            Ok(s) => Side::Done(s),
            Err(HandshakeError::WouldBlock(m)) => Side::Mid(m),
            Err(e) => panic!("openssl start: {e}"),
        }
    }
}

fn openssl_handshake(cctx: &SslContext, sctx: &SslContext) -> usize {
    let mut client = Side::start(Ssl::new(cctx).expect("ssl").connect(Pipe::default()));
    let server_ssl = Ssl::new(sctx).expect("ssl");
    let mut server = Side::Mid(match server_ssl.accept(Pipe::default()) {
        Err(HandshakeError::WouldBlock(m)) => m,
        _ => panic!("server finished without a ClientHello"),
    });
    let mut bytes = 0;
    for _ in 0..20 {
        let c_out = std::mem::take(&mut client.pipe().outbox);
        bytes += c_out.iter().map(Vec::len).sum::<usize>();
        server.pipe().inbox.extend(c_out);
        server.step();
        let s_out = std::mem::take(&mut server.pipe().outbox);
        bytes += s_out.iter().map(Vec::len).sum::<usize>();
        client.pipe().inbox.extend(s_out);
        client.step();
        if let (Side::Done(c), Side::Done(s)) = (&client, &server) {
            let mut kc = [0u8; 56];
            let mut ks = [0u8; 56];
            c.ssl()
                .export_keying_material(&mut kc, "EXTRACTOR-dtls_srtp", None)
                .expect("exp");
            s.ssl()
                .export_keying_material(&mut ks, "EXTRACTOR-dtls_srtp", None)
                .expect("exp");
            assert_eq!(kc, ks);
            assert!(c.ssl().peer_certificate().is_some() && s.ssl().peer_certificate().is_some());
            return bytes;
        }
    }
    panic!("openssl handshake did not finish");
}

// ---------- dimpl ----------

fn dimpl_handshake(cfg: &Arc<dimpl::Config>, cert: &dimpl::DtlsCertificate, now: Instant) -> usize {
    let mut client = dimpl::Dtls::new_12(cfg.clone(), cert.clone(), now);
    client.set_active(true);
    let mut server = dimpl::Dtls::new_12(cfg.clone(), cert.clone(), now);
    let mut buf = vec![0u8; 2048];
    let mut bytes = 0;
    let mut keys: [Option<Vec<u8>>; 2] = [None, None];
    // dimpl wants a first timer tick on both sides (the server draws its random there).
    client.handle_timeout(now).expect("start");
    server.handle_timeout(now).expect("start");
    for _ in 0..20 {
        for i in 0..2 {
            let (from, to) = if i == 0 {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            let mut out = Vec::new();
            loop {
                match from.poll_output(&mut buf) {
                    dimpl::Output::Packet(p) => out.push(p.to_vec()),
                    dimpl::Output::KeyingMaterial(km, _) => keys[i] = Some(km.to_vec()),
                    dimpl::Output::Timeout(_) => break,
                    dimpl::Output::BufferTooSmall { needed } => buf.resize(needed, 0),
                    _ => {}
                }
            }
            for p in out {
                bytes += p.len();
                to.handle_packet(&p).expect("dimpl packet");
            }
        }
        if keys[0].is_some() && keys[1].is_some() {
            assert_eq!(keys[0], keys[1]);
            return bytes;
        }
    }
    panic!("dimpl handshake did not finish");
}

/// CPU time this thread has run, from the scheduler's accounting (first field of
/// `/proc/thread-self/schedstat`, nanoseconds): the rate per CPU second is what one core
/// sustains, whatever else the machine runs.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .expect("schedstat field");
    Duration::from_nanos(ns)
}

// ---------- rtprelay's DtlsEndpoint ----------

fn relay_handshake(ctx: &Arc<rtprelay::dtls::DtlsContext>) -> usize {
    use rtprelay::dtls::{DtlsEndpoint, DtlsState, Role};
    use rtprelay::time::Millis;
    let fp = ctx.certificate().fingerprint().clone();
    let mut client = DtlsEndpoint::new(ctx.clone(), Role::Active, Some(fp.clone()), Millis(0));
    let mut server = DtlsEndpoint::new(ctx.clone(), Role::Passive, Some(fp), Millis(0));
    let mut bytes = 0;
    for _ in 0..20 {
        while let Some(d) = client.poll_transmit() {
            bytes += d.len();
            server.handle_datagram(&d, Millis(0)).expect("server");
        }
        while let Some(d) = server.poll_transmit() {
            bytes += d.len();
            client.handle_datagram(&d, Millis(0)).expect("client");
        }
        if client.state() == DtlsState::Connected && server.state() == DtlsState::Connected {
            let (c, s) = (
                client.srtp_keys().expect("k"),
                server.srtp_keys().expect("k"),
            );
            assert_eq!(c.local, s.remote);
            return bytes;
        }
    }
    panic!("rtprelay handshake did not finish");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let per_run: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);

    let cert = make_cert();
    let ossl = ossl_ctx(&cert);
    let dcert = dimpl::DtlsCertificate {
        certificate: cert.x509.to_der().expect("der"),
        private_key: cert.key.private_key_to_pkcs8().expect("pkcs8"),
    };
    let cfg = |p: dimpl::crypto::CryptoProvider| {
        Arc::new(
            dimpl::Config::builder()
                .with_crypto_provider(p)
                .dtls12_cipher_suites(&[
                    dimpl::crypto::Dtls12CipherSuite::ECDHE_ECDSA_AES128_GCM_SHA256,
                ])
                .kx_groups(&[dimpl::crypto::NamedGroup::Secp256r1])
                .build()
                .expect("config"),
        )
    };
    let aws = cfg(dimpl::crypto::aws_lc_rs::default_provider());
    let rc = cfg(dimpl::crypto::rust_crypto::default_provider());

    let relay = rtprelay::dtls::DtlsContext::new(
        rtprelay::dtls::Certificate::from_parts(
            dcert.certificate.clone(),
            dcert.private_key.clone(),
        ),
        rtprelay::dtls::DtlsOptions::default(),
        Instant::now(),
    )
    .expect("relay context");

    let names = [
        "openssl (libssl 3.0)",
        "dimpl + aws-lc-rs",
        "dimpl + RustCrypto",
        "rtprelay `DtlsEndpoint` (dimpl + aws-lc-rs, its default groups and suites)",
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut sizes = [0usize; 4];
    for _ in 0..runs {
        for i in 0..names.len() {
            let t = Instant::now();
            let c = thread_cpu();
            for _ in 0..per_run {
                sizes[i] = match i {
                    0 => openssl_handshake(&ossl, &ossl),
                    1 => dimpl_handshake(&aws, &dcert, Instant::now()),
                    2 => dimpl_handshake(&rc, &dcert, Instant::now()),
                    _ => relay_handshake(&relay),
                };
            }
            let el: Duration = t.elapsed();
            let cpu = thread_cpu() - c;
            rates[i].push(per_run as f64 / cpu.as_secs_f64());
            wall[i].push(per_run as f64 / el.as_secs_f64());
        }
    }
    println!("| library | handshakes per CPU second: median | min | max | per wall second: median | bytes on the wire |");
    println!("|---|---|---|---|---|---|");
    for (i, r) in rates.iter_mut().enumerate() {
        let min = r.iter().cloned().fold(f64::MAX, f64::min);
        let max = r.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            names[i],
            median(r),
            min,
            max,
            median(&mut wall[i]),
            sizes[i]
        );
    }
}
