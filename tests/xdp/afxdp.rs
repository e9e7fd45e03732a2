//! The AF_XDP plane: learning streams through the AF_XDP socket, then the kernel; workers on
//! several queues and devices.

use super::*;

/// The AF_XDP plane: packets the kernel does not forward itself (here: streams still learning,
/// with `--endpoint-learning=delayed`) reach the relay through its AF_XDP socket and are forwarded
/// from there, without the socket layer; once the streams are learned the kernel takes over.
#[test]
fn afxdp_forwards_learning_streams_then_the_kernel_takes_over() {
    const REDIRECTED: &str = "rtprelay_xdp_redirected_packets_total";
    const TRANSMITTED: &str = "rtprelay_afxdp_transmitted_packets_total";
    for family in [Family::V4, Family::V6] {
        let Some(topo) = Topology::new() else { return };
        let relay = NsRelay::start(&topo, &["--dataplane=afxdp", "--endpoint-learning=delayed"]);
        assert_eq!(
            relay.statistics_plane(),
            "afxdp",
            "plane in statistics; start-up: {}",
            relay.plane_line()
        );
        let call = NsCall::setup(relay.ng(), &topo, family, &[]);
        // One packet each way first: a peer's next hop is learnt from its own frames (until then
        // the relay sends to it through the UDP socket).
        warm_up(&call);
        let (r0, u0, t0) = (
            relay.metric(REDIRECTED),
            relay.metric(USERSPACE),
            relay.metric(TRANSMITTED),
        );
        // Within the learning window: every packet goes through the AF_XDP socket.
        let sent = exchange(&call, 1, 30, 30, 3).packets() as f64;
        let redirected = relay.metric(REDIRECTED) - r0;
        assert!(
            redirected >= sent,
            "{family:?}: {redirected} packets redirected to AF_XDP, {sent} sent\n{}",
            relay.metrics()
        );
        assert!(
            relay.metric(USERSPACE) - u0 >= sent,
            "accepted by the worker"
        );
        // Every packet went back out of the AF_XDP socket, rewritten in place.
        let transmitted = relay.metric(TRANSMITTED) - t0;
        assert!(
            transmitted >= sent,
            "{family:?}: {transmitted} of {sent} sent back out of the AF_XDP socket"
        );
        // After the window the streams fix on the next packet and are offloaded.
        std::thread::sleep(Duration::from_millis(3200));
        exchange(&call, 2, 1, 1, 1);
        wait_offloaded(&relay, 4.0);
        let f0 = relay.metric(FORWARDED);
        let sent = exchange(&call, 3, 20, 20, 2).packets() as f64;
        let forwarded = wait_growth(&relay, FORWARDED, f0, sent);
        assert_eq!(
            forwarded, sent,
            "{family:?}: not forwarded by the kernel after learning"
        );
    }
}

/// A call-id that the relay puts on `worker` of `workers` (calls are sharded by call-id).
fn call_id_on(prefix: &str, worker: usize, workers: usize) -> String {
    (0..10_000)
        .map(|k| format!("{prefix}-{}-{k}", std::process::id()))
        .find(|id| {
            rtprelay::worker::worker_index(rtprelay::session::engine::shard_of(id), workers)
                == worker
        })
        .unwrap_or_else(|| panic!("no call-id maps to worker {worker}"))
}

/// Frames the relay's veth `ifname` received on each of its `queues` rx queues, from `ethtool
/// -S` (veth counts them per queue while an XDP program runs).
fn rx_queue_frames(topo: &Topology, ifname: &str, queues: u32) -> Vec<u64> {
    let out = topo
        .run_in(&topo.ns(Role::Relay), "ethtool", &["-S", ifname])
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    (0..queues)
        .map(|q| {
            let name = format!("rx_queue_{q}_xdp_packets:");
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name.as_str()))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in ethtool -S:\n{text}"))
        })
        .collect()
}

/// The AF_XDP plane with two workers on a two-queue device. The device's hash of each packet's
/// addresses and ports, not the call, picks the rx queue and so the worker whose socket receives
/// it: a frame for the other worker's call is handed to that worker, which forwards it and sends it
/// from its own AF_XDP socket.
#[test]
fn afxdp_two_workers_on_two_queues_forward_every_call_through_their_sockets() {
    afxdp_workers_forward_every_call_through_af_xdp(2, 2);
}

/// More workers than queues: the worker without a socket gets its calls' frames from the other,
/// and hands them back rewritten for the other to send out of its socket.
#[test]
fn afxdp_a_worker_without_a_socket_sends_through_another_workers_socket() {
    afxdp_workers_forward_every_call_through_af_xdp(1, 2);
}

/// Many calls on every one of `workers` workers, on a relay device with `queues` queues, all
/// learning (so nothing is offloaded yet): every packet arrives, every queue received some, some
/// frames went from one worker to another, and every packet left through an AF_XDP socket.
fn afxdp_workers_forward_every_call_through_af_xdp(queues: u32, workers: usize) {
    const TRANSMITTED: &str = "rtprelay_afxdp_transmitted_packets_total";
    const HANDED_OFF: &str = "rtprelay_afxdp_handed_off_packets_total";
    const HANDOFF_DROPPED: &str = "rtprelay_afxdp_handoff_dropped_packets_total";
    const CALLS: u16 = 16;
    let Some(topo) = Topology::with_relay_queues(queues) else {
        return;
    };
    let threads = format!("--num-threads={workers}");
    let relay = NsRelay::start(
        &topo,
        &["--dataplane=afxdp", "--endpoint-learning=delayed", &threads],
    );
    let line = relay.plane_line();
    let with_sockets = workers.min(queues as usize);
    assert!(
        line.contains(&format!("{queues} AF_XDP socket(s)"))
            && line.contains(&format!("on {with_sockets} of {workers} worker(s)")),
        "{line}"
    );
    let q0 = rx_queue_frames(&topo, PARTY_IF, queues);
    let h0 = relay.metric(HANDED_OFF);
    let (mut sent, mut transmitted) = (0.0, 0.0);
    for i in 0..CALLS {
        let worker = usize::from(i) % workers;
        let family = if i % 4 < 2 { Family::V4 } else { Family::V6 };
        let id = call_id_on(&format!("afxq{i}"), worker, workers);
        let (a, b) = (41000 + 4 * i, 42000 + 4 * i);
        let call = NsCall::setup_with(relay.ng(), &topo, family, &[], &id, a, b);
        // Next hops are learnt from the peers' own frames; then, well within the learning
        // window, media both ways.
        warm_up(&call);
        let t0 = relay.metric(TRANSMITTED);
        sent += exchange(&call, 1, 5, 5, 1).packets() as f64;
        transmitted += relay.metric(TRANSMITTED) - t0;
    }
    let per_queue: Vec<u64> = rx_queue_frames(&topo, PARTY_IF, queues)
        .iter()
        .zip(&q0)
        .map(|(now, before)| now - before)
        .collect();
    assert!(
        per_queue.iter().all(|&n| n > 0),
        "frames on one queue only: {per_queue:?}"
    );
    let handed = relay.metric(HANDED_OFF) - h0;
    assert!(handed > 0.0, "no frame was handed to the other worker");
    assert_eq!(
        relay.metric(HANDOFF_DROPPED),
        0.0,
        "hand-off queue overflowed"
    );
    assert!(
        transmitted >= sent,
        "{transmitted} of {sent} sent out of the AF_XDP sockets ({handed} handed over, \
         per queue {per_queue:?})\n{}",
        relay.metrics()
    );
}

/// The AF_XDP plane on two devices: the caller reaches the relay over the LAN (its veth0, two
/// queues), the far callee over the relay's second link (veth1, one queue), both to the relay's
/// LAN address. Frames arrive on either device, for calls on either worker, and each leaves from
/// a socket on the device of the peer it goes to; the worker with no socket on veth1 has the other
/// send its frames there.
#[test]
fn afxdp_forwards_between_two_devices() {
    const TRANSMITTED: &str = "rtprelay_afxdp_transmitted_packets_total";
    const CALLS: u16 = 8;
    let Some(mut topo) = Topology::with_relay_queues(2) else {
        return;
    };
    let far = topo.add_far_party();
    let second = format!("far/{}", topo.far_v4(Role::Relay));
    let relay = NsRelay::start(
        &topo,
        &[
            "--dataplane=afxdp",
            "--endpoint-learning=delayed",
            "--num-threads=2",
            "-i",
            &second,
        ],
    );
    let line = relay.plane_line();
    assert!(
        line.contains("3 AF_XDP socket(s)") && line.contains("on 2 of 2 worker(s)"),
        "{line}"
    );
    let far0 = rx_queue_frames(&topo, "veth1", 1)[0];
    let (mut sent, mut transmitted) = (0.0, 0.0);
    for i in 0..CALLS {
        let id = call_id_on(&format!("afxd{i}"), usize::from(i % 2), 2);
        let caller = NsParty::bind(&topo, Role::Caller, Family::V4, 41000 + 4 * i, "tag-caller");
        let callee = NsParty::bind_in(
            &far,
            topo.far_v4(Role::Callee).into(),
            42000 + 4 * i,
            "tag-callee",
        );
        let call = NsCall::between(relay.ng(), caller, callee, Family::V4, &[], &id);
        assert_eq!(call.callee_to.ip(), topo.addr(Role::Relay, Family::V4));
        warm_up(&call);
        let t0 = relay.metric(TRANSMITTED);
        sent += exchange(&call, 1, 5, 5, 1).packets() as f64;
        transmitted += relay.metric(TRANSMITTED) - t0;
    }
    let far_frames = rx_queue_frames(&topo, "veth1", 1)[0] - far0;
    assert!(
        far_frames >= sent as u64 / 2,
        "{far_frames} frames on veth1 for {sent} sent"
    );
    assert!(
        transmitted >= sent,
        "{transmitted} of {sent} sent out of the AF_XDP sockets\n{}",
        relay.metrics()
    );
}
