//! Call records as Redis may hold them (anyone who can write to Redis can write anything): a
//! record is decoded and restored into an engine, then the engine runs its timers; never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::config::Interface;
use rtprelay::session::ports::AcceptAll;
use rtprelay::session::{Engine, EngineConfig};
use rtprelay::store::CallRecord;
use rtprelay::time::{Millis, Now};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Several records, one per line, so that records claiming each other's ports get explored.
    let records: Vec<CallRecord> = text.lines().filter_map(CallRecord::decode).collect();
    if records.is_empty() {
        return;
    }
    let mut engine = Engine::new(EngineConfig {
        interfaces: vec![Interface { name: "default".into(), local: [192, 0, 2, 1].into(), advertised: None }],
        port_min: 30000,
        port_max: 30099,
        ..EngineConfig::default()
    });
    let mut binder = AcceptAll::default();
    let now = Now { mono: Millis(1_000_000), unix_us: 1_700_000_000_000_000 };
    let _ = engine.restore(now, &records, &mut binder);
    while engine.poll_action().is_some() {}
    engine.sync_ports(&mut binder);
    engine.tick(Now { mono: Millis(2_000_000), unix_us: 1_700_001_000_000_000 });
    engine.sync_ports(&mut binder);
});
