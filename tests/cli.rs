//! The `rtprelay` command line as operators and rtpengine's test harness use it: `--version`, errors for
//! unknown options and bad values (exit 2, naming the option), the harness's full rtpengine command line,
//! clean exit on SIGTERM and SIGINT, `--config-file` with `[rtpengine]` and `[rtprelay]` sections, and the
//! pidfile.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::call::LO;
use common::*;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rtprelay"))
}

/// Runs the binary with `args` to completion (it must not start a daemon), bounded to 10 s.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtprelay");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("rtprelay {args:?} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_exits_zero() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
        "version output: {:?}",
        text(&out.stdout)
    );
}

#[test]
fn unknown_option_exits_two_naming_it() {
    let out = run(&["--config-file=none", "--frobnicate-harder"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--frobnicate-harder"), "stderr: {err}");
}

#[test]
fn bad_value_exits_two_naming_the_option() {
    let out = run(&["--config-file=none", "--port-min=abc"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--port-min"), "stderr: {err}");
}

#[test]
fn rtpengine_harness_command_line_starts_and_answers_ping() {
    let ports = PortBlock::acquire();
    let ng = ports.ng_addr().to_string();
    let args: Vec<String> = [
        "--config-file=none",
        "-t",
        "-1",
        "-i",
        "203.0.113.1",
        "-i",
        "2001:db8:4321::1",
        "-n",
        &ng,
        "-c",
        "12345",
        "-f",
        "-L",
        "7",
        "-E",
        "-u",
        "2222",
        "--silence-detect=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut relay =
        Relay::spawn("rtprelay", bin(), &args, ports.ng_addr()).unwrap_or_else(|e| panic!("{e}"));
    expect_ok(relay.client().ping(), "ping");
    // The harness ends the daemon with SIGINT and wants exit 0.
    relay.signal("INT");
    let status = relay
        .wait_timeout(Duration::from_secs(2))
        .expect("exit after SIGINT");
    assert_eq!(status.code(), Some(0));
}

fn exits_zero_on(sig: &str) {
    let ports = PortBlock::acquire();
    let mut relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    // With a call up, so shutdown has sockets and state to tear down.
    let _call = common::call::Call::setup(&relay.client(), &ports, &[]);
    let sent = Instant::now();
    relay.signal(sig);
    let status = relay.wait_timeout(Duration::from_secs(2));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIG{sig}: {status:?} after {:?}; log:\n{}",
        sent.elapsed(),
        relay.log_tail(20)
    );
}

#[test]
fn sigterm_exits_zero_within_two_seconds() {
    exits_zero_on("TERM");
}

#[test]
fn sigint_exits_zero_within_two_seconds() {
    exits_zero_on("INT");
}

/// Starts the binary with only `--config-file FILE` (plus foreground/stderr logging), waiting for `ng`.
fn start_with_file(name: &str, file: &str, ng: SocketAddr) -> Relay {
    let path = scratch_dir(name).join("rtprelay.conf");
    std::fs::write(&path, file).expect("write config");
    let args = vec![
        "--config-file".to_owned(),
        path.display().to_string(),
        "-f".to_owned(),
        "-E".to_owned(),
    ];
    Relay::spawn(name, bin(), &args, ng).unwrap_or_else(|e| panic!("{e}"))
}

fn section(name: &str, ports: &PortBlock, ng: SocketAddr) -> String {
    let (min, max) = ports.media_range();
    format!(
        "[{name}]\ninterface = 127.0.0.1\nlisten-ng = {ng}\nport-min = {min}\nport-max = {max}\n\
         table = -1\ndelete-delay = 0\n\n"
    )
}

#[test]
fn config_file_rtpengine_section_is_read() {
    let ports = PortBlock::acquire();
    let file = format!(
        "# rtpengine.conf\n{}",
        section("rtpengine", &ports, ports.ng_addr())
    );
    let relay = start_with_file("conf-rtpengine", &file, ports.ng_addr());
    let ng = relay.client();
    let c = common::call::Call::setup(&ng, &ports, &[]);
    let (min, max) = ports.media_range();
    assert!(
        (min..=max).contains(&c.a_to.port()),
        "port range from the file: {}",
        c.a_to
    );
}

#[test]
fn config_file_rtprelay_section_wins_over_rtpengine() {
    let ports = PortBlock::acquire();
    let other_ng = SocketAddr::from((LO, ports.port(16)));
    let file = format!(
        "{}{}",
        section("rtpengine", &ports, other_ng),
        section("rtprelay", &ports, ports.ng_addr())
    );
    let relay = start_with_file("conf-rtprelay", &file, ports.ng_addr());
    expect_ok(relay.client().ping(), "ping on the [rtprelay] port");
    let mut other = NgClient::new(other_ng).expect("client");
    other.timeout = Duration::from_millis(300);
    other.retries = 0;
    assert!(
        other.ping().is_err(),
        "the [rtpengine] section's NG port answers too"
    );
}

#[test]
fn pidfile_is_written_and_removed_on_exit() {
    let ports = PortBlock::acquire();
    let pidfile = scratch_dir("pidfile").join("rtprelay.pid");
    let pf = pidfile.display().to_string();
    let mut relay = Relay::start(RelayKind::Rtprelay, &ports, &["--pidfile", &pf]);
    let written = std::fs::read_to_string(&pidfile).expect("pidfile written");
    assert_eq!(written.trim(), relay.pid().to_string());
    relay.signal("TERM");
    let status = relay.wait_timeout(Duration::from_secs(2)).expect("exit");
    assert_eq!(status.code(), Some(0));
    assert!(!pidfile.exists(), "pidfile left behind after exit");
}
