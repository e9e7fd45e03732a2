//! One CLI command line (what `rtpengine-ctl` sends to `--listen-cli`) through the parser, the
//! session engine and the text renderer: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::config::Interface;
use rtprelay::control::cli;
use rtprelay::session::ports::AcceptAll;
use rtprelay::session::{Engine, EngineConfig};
use rtprelay::time::{Millis, Now};

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(EngineConfig {
        interfaces: vec![Interface { name: "default".into(), local: [203, 0, 113, 1].into(), advertised: None }],
        ..EngineConfig::default()
    });
    let mut binder = AcceptAll::default();
    let now = Now { mono: Millis(1000), unix_us: 1 };
    for line in data.split(|&b| b == b'\n') {
        let req = cli::parse(line);
        let _ = match req.command() {
            Some(cmd) => {
                engine.plan_ports(&cmd);
                engine.sync_ports(&mut binder);
                cli::render(&req, &engine.handle(now, cmd))
            }
            None => cli::render_local(&req, 6),
        };
    }
});
