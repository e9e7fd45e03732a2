//! Without the capabilities: the relay falls back to userspace, or with `-F` exits naming XDP.

use super::*;

#[test]
fn xdp_without_capabilities_falls_back_and_no_fallback_exits() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the fallback test is about the XDP plane");
        return;
    }
    if !common::require_or_skip("setpriv") {
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let program = Path::new(env!("CARGO_BIN_EXE_rtprelay"));
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ];
    {
        let relay =
            NsRelay::start_wrapped(&topo, &nobody, &["--dataplane=xdp"]).unwrap_or_else(|e| {
                panic!(
                    "as nobody (is {} executable by all?): {e}",
                    program.display()
                )
            });
        let line = relay.plane_line();
        assert!(
            !line.contains("plane=\"xdp\"") && !line.contains("plane=xdp"),
            "XDP chosen without capabilities: {line}"
        );
        assert!(line.contains("falling back"), "no fallback reason: {line}");
        assert_ne!(relay.statistics_plane(), "xdp");
        assert_eq!(
            topo.xdp_attached(&topo.ns(Role::Relay), PARTY_IF),
            None,
            "a program is attached although the relay fell back"
        );
        let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
        exchange(&call, 0, 5, 5, 1);
    }
    let mut proc = NsRelay::spawn(&topo, &nobody, &["--dataplane=xdp", "-F"]);
    let status = proc.wait_timeout(Duration::from_secs(5));
    let log = proc.log_text();
    match status {
        Some(s) => assert!(!s.success(), "-F without capabilities exited 0:\n{log}"),
        None => panic!("-F without capabilities kept running:\n{log}"),
    }
    // The fatal error, as `main` prints it (`rtprelay: ...` on stderr, or an ERROR log line).
    let names_xdp = log
        .lines()
        .filter(|l| l.starts_with("rtprelay: ") || l.contains("ERROR"))
        .any(|l| l.to_lowercase().contains("xdp"));
    assert!(names_xdp, "no error naming XDP:\n{log}");
}
