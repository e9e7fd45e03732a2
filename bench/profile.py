#!/usr/bin/env python3
"""Where a relay's CPU per forwarded packet goes: user vs kernel, netfilter/conntrack, syscalls, wake-ups.

For each relay and conntrack mode: a fresh network namespace (bench/netns.py's LoopbackNetns, with a
stateful firewall rule so that conntrack runs, as on a host with Docker's or a firewall's rules), the
media range exempted with scripts/notrack.sh for the "+notrack" runs, the relay pinned to CPU 1 and
rtprelay-bench to CPU 0 at a fixed load. Once the calls are up, `perf stat` counts the relay's
task-clock, syscalls (raw_syscalls:sys_enter) and context switches over --seconds, and `perf record -e
cpu-clock` samples it over the same length, one after the other; figures are per forwarded packet at
the generator's measured rate. Needs root and perf (software events only: works in VMs without PMU).

  bench/profile.py --relays rtprelay-uring,rtprelay-mmsg,rtpengine --notrack both --calls 500 --out DIR
"""
import argparse, json, os, re, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare, netns  # noqa: E402

# Kernel symbols counted as netfilter (hooks, nftables/iptables evaluation, conntrack).
NETFILTER = re.compile(r"^(nf_|nft_|__nf_|ipt_|ip6t_|ipv4_conntrack|ipv6_conntrack|ipv4_confirm|ipv6_confirm|"
                       r"__nft_|nf_ct_|__nf_ct_|nf_conntrack|hash_conntrack|resolve_normal_ct|init_conntrack|"
                       r"udp_packet|nf_nat)")

# Kernel work a socket plane's options target, as shares of the relay's samples (profile.json): the
# route lookup of an addressed send (--connect-latched), the file lookup of an io_uring request
# (--uring-fixed-files), the UDP socket lookup of a received packet.
GROUPS = {
    "route_lookup": re.compile(r"^(ip_route_output_key_hash|ip_route_output_key_hash_rcu|ip_route_output_flow|"
                               r"fib_table_lookup|fib_lookup|__fib_lookup|fib_rules_lookup|ip_route_output_key|"
                               r"__ip_route_output_key|fib4_rule_action|fib_select_path)$"),
    "file_lookup": re.compile(r"^(fget|__fget_light|__fget_files|fdget|io_file_get_normal|sock_from_file|fput|"
                              r"__fget|io_file_get_fixed)$"),
    "udp_lookup": re.compile(r"^(__udp4_lib_lookup|udp4_lib_lookup2|udp_lib_lookup2|__udp4_lib_lookup_skb|"
                             r"udp4_lib_lookup_skb|compute_score|udp4_csum_init)$"),
}


def udp_in(ns):
    """UDP datagrams received in namespace `ns` so far (/proc/net/snmp, Udp InDatagrams)."""
    text = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True,
                          text=True).stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("InDatagrams")])


def perf_stat(pid, seconds):
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", "task-clock,raw_syscalls:sys_enter,context-switches",
                          "-p", str(pid), "--", "sleep", str(seconds)], capture_output=True, text=True)
    vals = {}
    for line in out.stderr.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0] not in ("", "<not counted>", "<not supported>"):
            vals[f[2]] = float(f[0])
    return vals


# Call-graph subtrees (a sample counts if the symbol is anywhere on its kernel stack), as shares of the
# relay's samples. `net_rx_action` is the receive softirq: on loopback (and veth) a send is delivered
# into the receiving socket in the sender's own softirq, so this is the generator's receive path
# (IP input, netfilter input hooks, UDP socket lookup, queueing, waking the generator) that the bench's
# topology charges to the relay; with a NIC the receiving host pays it. The others split the relay's
# own path: the send syscall, the receive syscall, and the wait for work.
SUBTREES = {
    "delivery": "net_rx_action",
    "send": "udp_sendmsg",
    "receive": "udp_recvmsg",
    "wake_up_receiver": "__wake_up_sync_key",
}


def perf_record(pid, seconds, data):
    subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "4999", "-o", data, "-p", str(pid),
                    "--", "sleep", str(seconds)], capture_output=True, text=True)
    children = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "sym", "--stdio", "-g", "none",
                               "--percent-limit", "0", "-q"], capture_output=True, text=True).stdout
    subtrees = dict.fromkeys(SUBTREES, 0.0)
    for line in children.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(\S+)", line)
        if m:
            for name, sym in SUBTREES.items():
                if m.group(3) == sym:
                    subtrees[name] = max(subtrees[name], float(m.group(1)) / 100)
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
                          "--percent-limit", "0", "-q"], capture_output=True, text=True).stdout
    kernel = netfilter = total = 0.0
    nf_syms = []
    groups = dict.fromkeys(GROUPS, 0.0)
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(\S+)", line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        total += pct
        if kind == "k" or dso.startswith("[kernel"):
            kernel += pct
            for g, rx in GROUPS.items():
                if rx.match(sym):
                    groups[g] += pct
            if NETFILTER.match(sym):
                netfilter += pct
                nf_syms.append((sym, pct))
    total = total or 100.0
    top = sorted(nf_syms, key=lambda x: -x[1])[:8]
    return {"kernel_share": kernel / total, "netfilter_share": netfilter / total,
            "groups": {g: v / total for g, v in groups.items()}, "subtrees": subtrees,
            "netfilter_top": [f"{sym} {pct / total * 100:.1f}%" for sym, pct in top]}


def profile_one(name, args, on):
    with netns.LoopbackNetns(stateful=True) as topo:
        netns.notrack(topo.ns, args.port_min, args.port_max, on)
        binary = args.rtprelay if name.startswith("rtprelay") else None
        cmd = compare.relay_cmd(name, args.ng_port, args.port_min, args.port_max, binary, 1, "1")
        relay = subprocess.Popen(topo.in_relay(["taskset", "-c", "1"] + cmd),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gen = None
        try:
            if not compare.ng_ping(args.ng_port, topo=topo):
                raise RuntimeError(f"{name} did not answer NG ping")
            total = args.settle + 2 * args.seconds + 5
            gen = subprocess.Popen(topo.in_gen(["taskset", "-c", "0", args.bench, "--ng", f"127.0.0.1:{args.ng_port}",
                                                "--relay-pid", str(relay.pid), "--calls", str(args.calls),
                                                "--seconds", str(total), "--warmup", "1", "--label", name]),
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(args.settle)  # calls set up and media flowing
            # Forwarded packets in the perf stat window: every forwarded packet is received twice
            # in the namespace, by the relay and then by the generator (NG is negligible).
            before = udp_in(topo.ns)
            stat = perf_stat(relay.pid, args.seconds)
            forwarded = (udp_in(topo.ns) - before) / 2
            with tempfile.TemporaryDirectory(prefix="rpb-perf-") as tmp:
                shares = perf_record(relay.pid, args.seconds, os.path.join(tmp, "perf.data"))
            out, _ = gen.communicate(timeout=total + 120)
            r = json.loads(out)
            conntrack = compare.conntrack_count(topo)
        finally:
            if gen and gen.poll() is None:
                gen.kill()
                gen.wait()
            relay.send_signal(signal.SIGTERM)
            try:
                relay.wait(timeout=5)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
    pps = forwarded / args.seconds
    pkts = forwarded or 1
    cpu_us = stat.get("task-clock", 0) * 1000 / pkts  # task-clock is in ms
    return {"label": name + ("+notrack" if on else ""), "calls": args.calls, "forwarded_pps": pps,
            "cpu_us_per_packet": cpu_us, "user_us": cpu_us * (1 - shares["kernel_share"]),
            "kernel_us": cpu_us * shares["kernel_share"], "netfilter_us": cpu_us * shares["netfilter_share"],
            "kernel_share": shares["kernel_share"], "netfilter_share": shares["netfilter_share"],
            "syscalls_per_packet": stat.get("raw_syscalls:sys_enter", 0) / pkts,
            "context_switches_per_1k_packets": stat.get("context-switches", 0) * 1000 / pkts,
            "loss_ratio": r["loss_ratio"], "conntrack_entries": conntrack, "nominal_pps": r["nominal_pps"],
            "netfilter_top": shares["netfilter_top"],
            # Without the generator's receive path (see SUBTREES): what the relay itself costs.
            "own_us": cpu_us * (1 - shares["subtrees"]["delivery"]),
            **{f"{g}_share": v for g, v in shares["groups"].items()},
            **{f"{g}_share": v for g, v in shares["subtrees"].items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relays", default="rtprelay-uring,rtprelay-mmsg,rtpengine")
    ap.add_argument("--notrack", choices=("off", "on", "both"), default="both")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=5, help="length of perf stat, then of perf record")
    ap.add_argument("--settle", type=int, default=8, help="seconds from the generator's start to the first perf")
    ap.add_argument("--rtprelay", default=os.path.join(compare.ROOT, "target/release/rtprelay"))
    ap.add_argument("--bench", default=os.path.join(compare.ROOT, "target/release/rtprelay-bench"))
    ap.add_argument("--ng-port", type=int, default=22300)
    ap.add_argument("--port-min", type=int, default=10000)
    ap.add_argument("--port-max", type=int, default=32767)
    ap.add_argument("--runs", type=int, default=1, help="profiles per relay and mode; the table gives medians")
    ap.add_argument("--out", default=None, help="directory for profile.json and profile.md")
    args = ap.parse_args()
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.notrack]
    runs = []
    for run in range(args.runs):
        for on in modes:  # interleaved, as in compare.py
            for name in args.relays.split(","):
                r = profile_one(name, args, on)
                r["run"] = run
                runs.append(r)
                print(json.dumps(r), flush=True)
    rows = []
    for label in dict.fromkeys(r["label"] for r in runs):
        rs = [r for r in runs if r["label"] == label]
        m = {k: statistics.median(r[k] for r in rs) for k in rs[0]
             if isinstance(rs[0][k], (int, float)) and all(r.get(k) is not None for r in rs)}
        m.update(label=label, calls=rs[0]["calls"], conntrack_entries=rs[-1]["conntrack_entries"])
        rows.append(m)
    table = ["| relay | calls | forwarded pps in the window | CPU µs/packet (perf task-clock) | user µs | kernel µs | of which netfilter µs | kernel share | "
             "syscalls/packet | context switches per 1000 packets | conntrack entries | loss |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['label']} | {r['calls']} | {r['forwarded_pps']:.0f} | {r['cpu_us_per_packet']:.2f} | {r['user_us']:.2f} | "
                     f"{r['kernel_us']:.2f} | {r['netfilter_us']:.2f} ({r['netfilter_share'] * 100:.0f} %) | "
                     f"{r['kernel_share'] * 100:.0f} % | {r['syscalls_per_packet']:.3f} | "
                     f"{r['context_switches_per_1k_packets']:.1f} | {r['conntrack_entries']} | {r['loss_ratio']:.5f} |")
    # The same CPU split by call graph: what loopback delivery into the generator's sockets costs the
    # relay, and the relay's own path, each compared with rtpengine's in the same mode.
    table += ["", "| relay | CPU µs/packet | generator's receive path µs (share) | own path µs | of which send µs | "
              "receive µs | ratio to rtpengine, CPU | ratio to rtpengine, own path |", "|---|---|---|---|---|---|---|---|"]
    by_label = {r["label"]: r for r in rows}
    for r in rows:
        peer = by_label.get("rtpengine" + ("+notrack" if r["label"].endswith("+notrack") else ""))
        ratio = (lambda k: f"{r[k] / peer[k]:.2f}" if peer and peer is not r and peer[k] else "")
        send = r["cpu_us_per_packet"] * (r["send_share"] - r["delivery_share"])
        table.append(f"| {r['label']} | {r['cpu_us_per_packet']:.2f} | {r['cpu_us_per_packet'] * r['delivery_share']:.2f} "
                     f"({r['delivery_share'] * 100:.0f} %) | {r['own_us']:.2f} | {max(send, 0):.2f} | "
                     f"{r['cpu_us_per_packet'] * r['receive_share']:.2f} | {ratio('cpu_us_per_packet')} | {ratio('own_us')} |")
    print("\n".join(table))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "profile.json"), "w") as f:
            json.dump(runs, f, indent=1)
        with open(os.path.join(args.out, "profile.md"), "w") as f:
            f.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
