//! Restore on the kernel planes: a relay with `--redis` that offloaded a call is killed
//! (SIGKILL) and started again; the restored call is offloaded again and forwarded in the kernel.

use super::*;

#[test]
fn a_restored_call_is_offloaded_again() {
    let mode = Mode::from_env();
    if !mode.offloads() || !common::require_or_skip("redis-server") {
        eprintln!("SKIPPED: restore of offloaded calls is about the kernel planes");
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let relay_ns = topo.ns(Role::Relay);
    let dir = common::scratch_dir("redis-xdp");
    let args: Vec<String> = [
        "--port",
        "6390",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([dir.to_string_lossy().into_owned()])
    .collect();
    let _redis = topo.spawn_in(
        &relay_ns,
        "redis-server",
        std::path::Path::new("/usr/bin/redis-server"),
        &args,
    );
    let store = ["--redis=127.0.0.1:6390/0", "--redis-node=xdp-restore"];
    // Redis takes a moment to listen in the namespace; the writer retries until it does.
    let mut first = mode.start(&topo, "--dataplane=xdp", &store);
    let call = NsCall::setup(first.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    wait_offloaded(&first, 4.0);
    // The record with the latched sources reaches Redis within the writer's flush.
    std::thread::sleep(Duration::from_millis(1500));
    first.crash();

    let relay = mode.start(&topo, "--dataplane=xdp", &store);
    assert!(
        relay.log_text().contains("restored=1 "),
        "the call was not restored: {}",
        relay.log_tail(30)
    );
    warm_up(&call);
    wait_offloaded(&relay, 4.0);
    assert_kernel_forwards(&relay, &call, "after the restore");
}
