//! A whole NG datagram through the dispatcher and the session engine (SDES, DTLS and ICE
//! negotiation included): never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::config::Interface;
use rtprelay::control::dispatch::Dispatcher;
use rtprelay::session::ports::AcceptAll;
use rtprelay::session::{Engine, EngineConfig};
use rtprelay::time::{Millis, Now};

/// One certificate for the whole run (making one costs more than an iteration).
fn dtls() -> std::sync::Arc<rtprelay::dtls::DtlsContext> {
    static CTX: std::sync::OnceLock<std::sync::Arc<rtprelay::dtls::DtlsContext>> =
        std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let cert = rtprelay::dtls::Certificate::generate(Default::default(), 1_700_000_000)
            .expect("certificate");
        rtprelay::dtls::DtlsContext::new(cert, Default::default(), std::time::Instant::now())
            .expect("context")
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(EngineConfig {
        interfaces: vec![Interface { name: "default".into(), local: [203, 0, 113, 1].into(), advertised: None }],
        dtls: Some(dtls()),
        ..EngineConfig::default()
    });
    // Keys of its own, so that SDES offers and answers (transport-protocol, SDES, OSRTP) run.
    engine.set_key_source(Box::new(rtprelay::session::keys::CountingKeys::default()));
    let mut binder = AcceptAll::default();
    let mut dispatcher = Dispatcher::default();
    let now = Now { mono: Millis(1000), unix_us: 1 };
    // Feed the input as several datagrams split on NUL, so sequences (offer then answer) get explored.
    for msg in data.split(|&b| b == 0) {
        let _ = dispatcher.handle(now.mono, b"fuzz", msg, &mut |cmd| {
            engine.plan_ports(&cmd);
            engine.sync_ports(&mut binder);
            engine.handle(now, cmd)
        });
        engine.sync_ports(&mut binder);
    }
});
