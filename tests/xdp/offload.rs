//! The kernel fast path: forwarding after learning (IPv4, IPv6), a crashed relay's or a foreign
//! program, strict source, re-INVITE, delete, timeouts, recording, `block media`, and the
//! `query` counters of offloaded calls.

use super::*;

#[test]
fn xdp_forwards_rtp_and_rtcp_both_ways_in_the_kernel_after_learning() {
    forwards_both_ways(&Mode::from_env(), Family::V4);
}

#[test]
fn xdp_forwards_ipv6() {
    forwards_both_ways(&Mode::from_env(), Family::V6);
}

/// A relay killed by SIGKILL may leave its program on the NIC; the next one replaces it at start-up
/// and forwards in the kernel.
#[test]
fn xdp_replaces_the_program_of_a_crashed_relay() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the crash test is about the XDP plane");
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let mut first = mode.start(&topo, "--dataplane=xdp", &[]);
    first.crash();
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    wait_offloaded(&relay, 4.0);
    assert_kernel_forwards(&relay, &call, "after the crashed relay");
}

/// Another program already on the NIC is not ours to replace: the relay leaves it attached and still
/// relays the call (through userspace, as it cannot offload).
#[test]
fn xdp_leaves_a_foreign_program_alone() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the foreign-program test is about the XDP plane");
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let relay_ns = topo.ns(Role::Relay);
    let foreign = common::netns::bpf_object("xdp_pass").unwrap_or_else(|e| panic!("{e}"));
    topo.attach_xdp(&relay_ns, PARTY_IF, &foreign)
        .unwrap_or_else(|e| panic!("{e}"));
    let relay = NsRelay::start(&topo, &["--dataplane=xdp"]);
    let link = topo.link_show(&relay_ns, PARTY_IF);
    assert!(
        link.contains("name xdp_pass"),
        "the foreign program was replaced:\n{link}\n{}",
        relay.log_tail(20)
    );
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    exchange(&call, 1, 10, 10, 1);
}

#[test]
fn xdp_strict_source_drops_an_injector_in_the_kernel() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let d0 = if mode.xdp() {
        relay.metric(DROPPED)
    } else {
        0.0
    };
    let inj = topo.media(Role::Injector, Family::V4, CALLER_PORT);
    let mut injected = 0;
    // Well-formed media only (RTCP to the RTCP port), so nothing is refused for its content instead.
    let rtp = rtp_batch(0x1ec7, 0, 20);
    let rtcp: Vec<Vec<u8>> = (1..=5).map(|n| rtcp_sr(0x1ec7, n)).collect();
    for (to, pkts) in [
        (call.caller_to, &rtp),
        (rtcp_of(call.caller_to), &rtcp),
        (call.callee_to, &rtp),
    ] {
        for p in pkts {
            inj.send_to(p, to).expect("inject");
            injected += 1;
        }
    }
    assert_silent(&call.callee.rtp, QUIET, "injected RTP reached the callee");
    assert_silent(&call.callee.rtcp, QUIET, "injected RTCP reached the callee");
    assert_silent(&call.caller.rtp, QUIET, "injected RTP reached the caller");
    assert_silent(&inj, QUIET, "the injector got media back");
    exchange(&call, 1, 5, 5, 1);
    if mode.xdp() {
        let dropped = wait_growth(&relay, DROPPED, d0, f64::from(injected));
        assert_eq!(
            dropped,
            f64::from(injected),
            "{DROPPED} grew by {dropped}, {injected} injected"
        );
    }
}

#[test]
fn xdp_reinvite_moves_the_flow_at_once() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let mut call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let stale_caller_to = call.caller_to;
    let old = call.reanswer_from(relay.ng(), &topo, 40010);
    // Right after the answer, media goes to the callee's new port, none to the old one.
    let pkts = rtp_batch(SSRC_CALLER, 100, 10);
    relay_and_expect(
        &call.caller.rtp,
        call.caller_to,
        &pkts,
        &call.callee.rtp,
        call.callee_to,
        "RTP caller->new callee port",
    );
    let sr = vec![rtcp_sr(SSRC_CALLER, 100)];
    relay_and_expect(
        &call.caller.rtcp,
        rtcp_of(call.caller_to),
        &sr,
        &call.callee.rtcp,
        rtcp_of(call.callee_to),
        "RTCP caller->new callee port",
    );
    // Nothing reaches the old port, not even through the relay port the caller used before.
    for p in rtp_batch(SSRC_CALLER, 200, 5) {
        call.caller.rtp.send_to(&p, stale_caller_to).expect("send");
    }
    assert_silent(&old.rtp, QUIET, "RTP still went to the old callee port");
    assert_silent(&old.rtcp, QUIET, "RTCP still went to the old callee port");
    while call.callee.rtp.recv_timeout(Duration::ZERO).is_some() {}
    // The callee sends from its new port, its SDP address: learned at once, both ways work.
    exchange(&call, 2, 10, 10, 2);
    if mode.xdp() {
        // The moved flows are offloaded again (they were learned in round 2; the old flows' count may
        // still show for a moment, hence the pause), and forwarded by the kernel from then on.
        std::thread::sleep(Duration::from_millis(500));
        wait_offloaded(&relay, 4.0);
        let f0 = settled(&relay, FORWARDED);
        let sent = exchange(&call, 3, 20, 20, 2).packets() as f64;
        let forwarded = wait_growth(&relay, FORWARDED, f0, sent);
        assert_eq!(forwarded, sent, "{FORWARDED} after the re-INVITE");
    }
    assert_silent(
        &old.rtp,
        Duration::ZERO,
        "media went to the old callee port",
    );
}

#[test]
fn xdp_delete_removes_the_offloaded_flows() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    // `--table=0`, rtpengine's spelling, asks for the kernel plane too.
    let relay = mode.start(&topo, "--table=0", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.offloads() {
        wait_offloaded(&relay, 4.0);
    }
    call.delete(relay.ng());
    // The owning worker takes the rules out of the kernel just after the reply (within about a
    // millisecond): wait for it before probing.
    if mode.offloads() {
        assert!(
            wait_until(OFFLOAD, || relay.metric(OFFLOADED) == 0.0),
            "{OFFLOADED} not back to 0 after delete:\n{}",
            relay.metrics()
        );
    }
    let f0 = if mode.xdp() {
        relay.metric(FORWARDED)
    } else {
        0.0
    };
    for p in rtp_batch(SSRC_CALLER, 10, 5) {
        call.caller.rtp.send_to(&p, call.caller_to).expect("send");
    }
    for p in rtp_batch(SSRC_CALLEE, 10, 5) {
        call.callee.rtp.send_to(&p, call.callee_to).expect("send");
    }
    call.caller
        .rtcp
        .send_to(&rtcp_sr(SSRC_CALLER, 1), rtcp_of(call.caller_to))
        .expect("send");
    assert_silent(&call.callee.rtp, QUIET, "a deleted call still forwards");
    assert_silent(
        &call.caller.rtp,
        QUIET,
        "a deleted call still forwards back",
    );
    assert_silent(
        &call.callee.rtcp,
        QUIET,
        "a deleted call still forwards RTCP",
    );
    if mode.xdp() {
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            relay.metric(FORWARDED),
            f0,
            "the kernel forwarded after delete"
        );
    }
    common::expect_ok(relay.ng().ping(), "ping after delete");
}

/// A call whose media flows only in the kernel stays up (the folded counters feed the timeout), and
/// times out once the media stops, taking its rules with it.
#[test]
fn xdp_offloaded_media_keeps_the_call_alive_and_silence_times_it_out() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &["--timeout=3"]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    // Twice the timeout of media, all of it forwarded by the kernel once offloaded.
    for round in 1..=12u16 {
        exchange(&call, round, 2, 2, 0);
        std::thread::sleep(Duration::from_millis(500));
    }
    let listed = |ng: &common::NgClient| ng.list_calls().expect("list").contains(&call.id);
    assert!(listed(ng), "a call with kernel-forwarded media timed out");
    assert!(
        wait_until(Duration::from_secs(8), || !listed(ng)),
        "the call did not time out after its media stopped"
    );
    if mode.xdp() {
        assert!(
            wait_until(OFFLOAD, || relay.metric(OFFLOADED) == 0.0),
            "{OFFLOADED} not back to 0 after the timeout"
        );
    }
}

/// `start recording` brings the call's RTP back to userspace (where the recorder copies it) at once,
/// and `stop recording` offloads it again.
#[test]
fn xdp_recording_takes_rtp_back_to_userspace_and_stopping_offloads_again() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the recording hand-over is about the XDP plane");
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let spool = tempfile_dir("xdp-spool");
    let spool_arg = format!("--recording-dir={}", spool.display());
    let relay = mode.start(&topo, "--dataplane=xdp", &[&spool_arg]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    warm_up(&call);
    wait_offloaded(&relay, 4.0);
    let cmd = |command: &str| {
        let req = common::bencode::dict([
            ("command", command.into()),
            ("call-id", call.id.as_str().into()),
            ("from-tag", call.caller.tag.as_str().into()),
        ]);
        common::expect_ok(ng.request(req), command)
    };
    cmd("start recording");
    // The two RTP flows leave the kernel; RTCP is not recorded and stays.
    assert!(
        wait_until(OFFLOAD, || relay.metric(OFFLOADED) == 2.0),
        "RTP flows not taken out of the kernel while recording:\n{}",
        relay.metrics()
    );
    let u0 = relay.metric(USERSPACE);
    exchange(&call, 1, 20, 20, 0);
    let userspace = relay.metric(USERSPACE) - u0;
    assert!(
        userspace >= 40.0,
        "recorded RTP must pass through userspace: {userspace} of 40 did"
    );
    cmd("stop recording");
    wait_offloaded(&relay, 4.0);
    let (u1, f1) = (relay.metric(USERSPACE), relay.metric(FORWARDED));
    exchange(&call, 2, 20, 20, 0);
    let forwarded = wait_growth(&relay, FORWARDED, f1, 40.0);
    assert_eq!(forwarded, 40.0, "not offloaded again after stop recording");
    assert!(relay.metric(USERSPACE) - u1 <= USERSPACE_SLACK);
    let _ = std::fs::remove_dir_all(&spool);
}

/// `block media` for the caller keeps its offloaded RTP flow in the kernel with a blocking rule: the
/// kernel drops what the caller sends (counted as XDP drops, and in `query` as received) while the
/// callee's media and the caller's RTCP are still forwarded in the kernel; `unblock media` has the
/// kernel forward the caller's media again.
#[test]
fn xdp_block_media_drops_in_the_kernel_and_unblock_forwards_again() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let cmd = |command: &str| {
        let req = common::bencode::dict([
            ("command", command.into()),
            ("call-id", call.id.as_str().into()),
            ("from-tag", call.caller.tag.as_str().into()),
        ]);
        common::expect_ok(ng.request(req), command)
    };
    let metrics = |relay: &NsRelay| {
        if mode.xdp() {
            [USERSPACE, FORWARDED, DROPPED].map(|m| settled(relay, m))
        } else {
            [0.0; 3]
        }
    };
    cmd("block media");
    // The worker rewrites the rule just after the reply; give it a moment.
    std::thread::sleep(Duration::from_millis(100));
    let [u0, f0, d0] = metrics(&relay);
    let blocked = rtp_batch(SSRC_CALLER, 100, 20);
    for p in &blocked {
        call.caller.rtp.send_to(p, call.caller_to).expect("send");
    }
    assert_silent(&call.callee.rtp, QUIET, "blocked media reached the callee");
    let back = rtp_batch(SSRC_CALLEE, 100, 10);
    relay_and_expect(
        &call.callee.rtp,
        call.callee_to,
        &back,
        &call.caller.rtp,
        call.caller_to,
        "RTP callee->caller while the caller is blocked",
    );
    let sr = vec![rtcp_sr(SSRC_CALLER, 100)];
    relay_and_expect(
        &call.caller.rtcp,
        rtcp_of(call.caller_to),
        &sr,
        &call.callee.rtcp,
        rtcp_of(call.callee_to),
        "RTCP caller->callee while the caller is blocked",
    );
    // Blocked packets count as received on the caller's stream (1 from the warm-up).
    let port = call.caller_to.port();
    wait_until(FOLD, || port_stat(&call.query(ng), port, "packets") == 21);
    assert_eq!(
        port_stat(&call.query(ng), port, "packets"),
        21,
        "the caller's stream counts what it sent while blocked"
    );
    if mode.xdp() {
        assert_eq!(
            relay.metric(OFFLOADED),
            4.0,
            "a blocked flow stays offloaded"
        );
        let dropped = wait_growth(&relay, DROPPED, d0, 20.0);
        assert_eq!(dropped, 20.0, "{DROPPED} grew by {dropped}, 20 blocked");
        let forwarded = wait_growth(&relay, FORWARDED, f0, 11.0);
        assert_eq!(forwarded, 11.0, "{FORWARDED}: the other direction and RTCP");
        let userspace = relay.metric(USERSPACE) - u0;
        assert!(
            userspace <= USERSPACE_SLACK,
            "{userspace} packets reached userspace while blocked"
        );
    }

    cmd("unblock media");
    std::thread::sleep(Duration::from_millis(100));
    let [u1, f1, _] = metrics(&relay);
    let pkts = rtp_batch(SSRC_CALLER, 200, 10);
    relay_and_expect(
        &call.caller.rtp,
        call.caller_to,
        &pkts,
        &call.callee.rtp,
        call.callee_to,
        "RTP caller->callee after unblock",
    );
    if mode.xdp() {
        let forwarded = wait_growth(&relay, FORWARDED, f1, 10.0);
        assert_eq!(forwarded, 10.0, "not forwarded by the kernel after unblock");
        assert!(relay.metric(USERSPACE) - u1 <= USERSPACE_SLACK);
    }
}

/// A fresh empty directory under the system's temp dir.
fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        common::ng::random_cookie()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// `query` reports per stream exactly what was sent, kernel-forwarded packets included.
pub(super) fn query_counts_match(mode: &Mode) {
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    let mut sent = warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    // Different counts per direction, so that swapped counters show.
    for (i, (port, pkts, bytes)) in exchange(&call, 1, 40, 25, 4).0.into_iter().enumerate() {
        sent.0[i].1 += pkts;
        sent.0[i].2 += bytes;
        assert_eq!(sent.0[i].0, port);
    }
    let matches = |q: &common::Value| {
        sent.0.iter().all(|&(port, pkts, bytes)| {
            port_stat(q, port, "packets") == pkts && port_stat(q, port, "bytes") == bytes
        })
    };
    wait_until(FOLD, || matches(&call.query(ng)));
    let q = call.query(ng);
    for &(port, pkts, bytes) in &sent.0 {
        assert_eq!(
            port_stat(&q, port, "packets"),
            pkts,
            "packets on {port}: {q:?}"
        );
        assert_eq!(
            port_stat(&q, port, "bytes"),
            bytes,
            "bytes on {port}: {q:?}"
        );
        assert_eq!(port_stat(&q, port, "errors"), 0, "errors on {port}: {q:?}");
    }
    assert_eq!(total(&q, "RTP", "packets"), 41 + 26, "{q:?}");
    assert_eq!(total(&q, "RTCP", "packets"), 2 * 5, "{q:?}");
}

#[test]
fn xdp_query_counters_match_what_was_sent() {
    query_counts_match(&Mode::from_env());
}
