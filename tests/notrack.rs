//! `scripts/notrack.sh` exempts the relay's media range from conntrack, and NG and media still work.
//!
//! In a fresh namespace topology (`common::netns`), the relay's namespace gets a stateful firewall rule
//! (`ct state established,related accept`), which turns connection tracking on there, as Docker's or a
//! firewall's rules do on a host. A call over IPv4 and one over IPv6 then leave conntrack entries for the
//! relay's media ports; after `scripts/notrack.sh MIN MAX` (per backend: nft, iptables-nft, iptables-legacy)
//! calls still connect and forward, and no entry has a media port while the NG exchange is still tracked;
//! after `--remove` the entries come back and the script's rules are gone.
//!
//! Needs root, `nft`, `conntrack` (Debian package `conntrack`), the iptables variants and the topology's
//! tools; without them the test skips, or fails under `RTPRELAY_E2E=1` or `CI=true`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::call::rtcp_sr;
use common::netns::{Family, Role, Topology};
use common::ns_call::{rtcp_of, NsCall};
use common::ns_relay::{NsRelay, NG_PORT, PORT_MAX, PORT_MIN};
use common::{find_program, is_root, scratch_dir, skip_unless, MediaEndpoint, RtpPacket};

const WAIT: Duration = Duration::from_secs(2);

/// `skip_unless`, also failing under `CI=true`.
fn required(cond: bool, why: &str) -> bool {
    if !cond && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {why}");
    }
    skip_unless(cond, why)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/notrack.sh")
}

/// Root and the tools this test and `backend` need.
fn tools_present(backend: &str) -> bool {
    if !required(is_root(), "conntrack rules need root") {
        return false;
    }
    let mut tools = vec!["nft", "conntrack"];
    match backend {
        "iptables-nft" => tools.extend(["iptables-nft", "ip6tables-nft"]),
        "iptables-legacy" => tools.extend(["iptables-legacy", "ip6tables-legacy"]),
        _ => {}
    }
    tools.into_iter().all(|t| {
        required(
            find_program(t).is_some(),
            &format!("`{t}` is not installed (scripts/install-deps.sh)"),
        )
    })
}

/// Runs `program args` in the relay's namespace; its stdout. Panics on failure.
fn in_relay(topo: &Topology, program: &str, args: &[&str]) -> String {
    let out = topo
        .run_in(&topo.ns(Role::Relay), program, args)
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A stateful input chain in the relay's namespace, so that conntrack runs there.
fn turn_conntrack_on(topo: &Topology) {
    let file = scratch_dir("notrack").join("stateful.nft");
    std::fs::write(
        &file,
        "table inet stateful_fw {\n chain input {\n  type filter hook input priority filter; policy accept;\n  \
         ct state established,related accept\n }\n}\n",
    )
    .expect("write nft file");
    in_relay(topo, "nft", &["-f", &file.to_string_lossy()]);
}

/// `scripts/notrack.sh` in the relay's namespace with `args`.
fn notrack(topo: &Topology, backend: &str, args: &[&str]) -> String {
    let script = script();
    let mut all = vec!["--backend", backend];
    all.extend_from_slice(args);
    let program = script.to_string_lossy();
    in_relay(topo, &program, &all)
}

/// The ports of every UDP conntrack entry of `family` in the relay's namespace (both tuples).
fn conntrack_udp(topo: &Topology, family: Family) -> Vec<Vec<u16>> {
    let fam = match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    };
    let text = in_relay(topo, "conntrack", &["-L", "-f", fam, "-p", "udp"]);
    text.lines()
        .map(|line| {
            line.split_whitespace()
                .filter_map(|w| {
                    w.strip_prefix("sport=")
                        .or_else(|| w.strip_prefix("dport="))
                        .and_then(|p| p.parse().ok())
                })
                .collect::<Vec<u16>>()
        })
        .filter(|ports| !ports.is_empty())
        .collect()
}

fn is_media(port: u16) -> bool {
    (PORT_MIN..=PORT_MAX).contains(&port)
}

/// Entries with a port in the relay's media range.
fn media_entries(topo: &Topology, family: Family) -> usize {
    conntrack_udp(topo, family)
        .iter()
        .filter(|ports| ports.iter().any(|&p| is_media(p)))
        .count()
}

/// `pkts` from `from` to `to`, all arriving at `at`.
fn forwards(
    from: &MediaEndpoint,
    to: SocketAddr,
    at: &MediaEndpoint,
    pkts: &[Vec<u8>],
    what: &str,
) {
    for p in pkts {
        from.send_to(p, to).expect("send");
    }
    let got = at.collect(pkts.len(), WAIT);
    assert_eq!(
        got.len(),
        pkts.len(),
        "{what}: forwarded {} of {}",
        got.len(),
        pkts.len()
    );
}

fn rtp(ssrc: u32) -> Vec<Vec<u8>> {
    (0..5)
        .map(|n| RtpPacket::pcmu(ssrc, n).to_bytes())
        .collect()
}

/// A call over `family` (parties on `port` and `port + 2`), media and RTCP both ways, then deleted.
fn call(relay: &NsRelay, topo: &Topology, family: Family, port: u16, what: &str) {
    let id = format!("notrack-{what}-{port}");
    let c = NsCall::setup_with(relay.ng(), topo, family, &[], &id, port, port + 2);
    forwards(&c.caller.rtp, c.caller_to, &c.callee.rtp, &rtp(1), what);
    forwards(&c.callee.rtp, c.callee_to, &c.caller.rtp, &rtp(2), what);
    let sr: Vec<Vec<u8>> = (1..=3).map(|n| rtcp_sr(1, n)).collect();
    forwards(
        &c.caller.rtcp,
        rtcp_of(c.caller_to),
        &c.callee.rtcp,
        &sr,
        what,
    );
    c.delete(relay.ng());
}

fn notrack_exempts_media(backend: &str) {
    if !tools_present(backend) {
        return;
    }
    let Some(topo) = Topology::new() else { return };
    turn_conntrack_on(&topo);
    let relay = NsRelay::start(&topo, &[]);
    let families = [(Family::V4, "v4"), (Family::V6, "v6")];

    // Tracked: every call leaves entries for its media ports, so the check below can see them.
    for (i, &(family, name)) in families.iter().enumerate() {
        call(
            &relay,
            &topo,
            family,
            40000 + 10 * i as u16,
            &format!("tracked-{name}"),
        );
        assert!(
            media_entries(&topo, family) > 0,
            "{name}: no conntrack entry for the media ports although conntrack is on: {:?}",
            conntrack_udp(&topo, family)
        );
    }

    // Exempted: calls still work, the media leave no entry, NG is still tracked.
    let range = format!("{PORT_MIN}-{PORT_MAX}");
    notrack(&topo, backend, &[&range]);
    notrack(&topo, backend, &[&range]); // idempotent
    in_relay(&topo, "conntrack", &["-F"]);
    for (i, &(family, name)) in families.iter().enumerate() {
        call(
            &relay,
            &topo,
            family,
            40100 + 10 * i as u16,
            &format!("notrack-{name}"),
        );
        assert_eq!(
            media_entries(&topo, family),
            0,
            "{backend} {name}: media ports still tracked: {:?}",
            conntrack_udp(&topo, family)
        );
    }
    assert!(
        conntrack_udp(&topo, Family::V4)
            .iter()
            .any(|ports| ports.contains(&NG_PORT)),
        "NG exchange not tracked: conntrack is off, so the check above proves nothing"
    );

    // Removed: the script's rules are gone and the media are tracked again.
    notrack(&topo, backend, &["--remove"]);
    assert_eq!(
        notrack(&topo, backend, &["--show"]).trim(),
        "",
        "rules left after --remove"
    );
    in_relay(&topo, "conntrack", &["-F"]);
    for (i, &(family, name)) in families.iter().enumerate() {
        call(
            &relay,
            &topo,
            family,
            40200 + 10 * i as u16,
            &format!("removed-{name}"),
        );
        assert!(
            media_entries(&topo, family) > 0,
            "{backend} {name}: media not tracked after --remove"
        );
    }
}

#[test]
fn notrack_nft_exempts_media_range() {
    notrack_exempts_media("nft");
}

#[test]
fn notrack_iptables_nft_exempts_media_range() {
    notrack_exempts_media("iptables-nft");
}

#[test]
fn notrack_iptables_legacy_exempts_media_range() {
    notrack_exempts_media("iptables-legacy");
}

#[test]
fn notrack_script_rejects_bad_ranges() {
    if !required(find_program("bash").is_some(), "`bash` is not installed") {
        return;
    }
    for args in [
        &["5", "2"][..],
        &["0", "10"],
        &["30000", "70000"],
        &["x-y"],
        &[],
    ] {
        let out = std::process::Command::new(script())
            .args(args)
            .output()
            .expect("run notrack.sh");
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
    }
}
