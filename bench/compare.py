#!/usr/bin/env python3
"""Side-by-side: rtprelay against Debian's rtpengine (--table=-1) at several call counts.

Each relay runs pinned to one core and the generator to the other. For every call count and
relay, the generator runs --runs times; the table shows medians and the ratio of rtprelay's
CPU per packet to rtpengine's measured in the same run. A run where the generator sent less
than 95 % of the nominal rate is marked generator-bound: it measured the generator, not the relay.

  bench/compare.py --calls 100,500 --runs 3 --seconds 10 [--out bench/results]
  bench/compare.py --relays rtprelay-mmsg,rtprelay-uring,rtpengine
  bench/compare.py --workers 2 --calls 2000            # relay on 2 pinned workers
  bench/compare.py --max-rate --calls 500 --seconds 3  # highest forwarded rate with loss <= 0.1 %
  bench/compare.py --netns --relays rtprelay-xdp,rtprelay-uring,rtpengine   # over a veth pair (root)
  bench/compare.py --notrack both --relays rtprelay-uring,rtpengine   # conntrack on, then media exempted (root)
  bench/compare.py --srtp none,aes-cm --calls 500 --port-min 2000 --port-max 9999   # SDES SRTP<->RTP bridging

A relay named rtprelay-PLANE runs rtprelay with --dataplane=PLANE (mmsg, uring, xdp, auto);
a suffix adds a variant's options: rtprelay-uring+connect (--connect-latched=yes), +noconnect,
+fixed (--uring-fixed-files=yes); they combine: rtprelay-uring+connect+fixed.
With --netns the relay and the generator run in two network namespaces joined by a veth pair
(bench/netns.py), so that the xdp plane has a device to attach to; its cost is the relay's CPU
plus the XDP program's run time (kernel.bpf_stats_enabled), which runs outside the relay's threads.
With --notrack on|both the relay's namespace (a fresh one on loopback, bench/netns.py's LoopbackNetns)
has a stateful firewall rule, so conntrack tracks its packets, and scripts/notrack.sh exempts the media
range for the "+notrack" runs; "both" alternates off and on within each run.
With --srtp aes-cm|aes-gcm the caller side of every call is SDES-SRTP (AES_CM_128_HMAC_SHA1_80 or
AEAD_AES_128_GCM) and the callee side plain RTP: the relay decrypts one direction and encrypts the
other. A comma list (none,aes-cm) measures each mode in turn within every run (labels +aes-cm), and
the ratios compare each relay with rtpengine in the same mode.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ng_ping(port, timeout=10.0, host="127.0.0.1", topo=None):
    if topo:  # from inside the generator's namespace
        code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); import compare; "
                f"sys.exit(0 if compare.ng_ping({port}, {timeout}, {host!r}) else 1)")
        return subprocess.run(topo.in_gen([sys.executable, "-c", code])).returncode == 0
    end = time.time() + timeout
    while time.time() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(b"p1 d7:command4:pinge", (host, port))
            if b"pong" in s.recv(1000):
                return True
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.1)
    return False


def relay_cmd(name, port, pmin, pmax, binary, workers, relay_cpu, ip="127.0.0.1", extra=()):
    extra = list(extra)
    common = ["-i", ip, "-n", f"{ip}:{port}", "-m", str(pmin), "-M", str(pmax),
              "-f", "-E", "-L", "4", "--table=-1", "--delete-delay=0"]
    if name == "rtpengine":
        # rtpengine's media threads; its control and timer threads come on top.
        return [binary or "rtpengine", "--config-file=none", f"--num-threads={max(2, workers)}"] + common
    base, *variants = name.split("+")
    plane = ["--dataplane=" + base.split("-", 1)[1]] if base.startswith("rtprelay-") else []
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"unknown relay variant +{v} in {name} (known: {', '.join(VARIANTS)})")
        extra += VARIANTS[v]
    return [binary, "--config-file=none", f"--num-threads={workers}", f"--cpu-affinity={relay_cpu}"] + plane + common + extra


# Variants of an rtprelay relay, named by suffixes (rtprelay-uring+connect): the options they add,
# so that a feature is measured on and off in the same run.
VARIANTS = {
    "connect": ["--connect-latched=yes"],
    "noconnect": ["--connect-latched=no"],
    "fixed": ["--uring-fixed-files=yes"],
}


def run_one(name, binary, calls, args, relay_cpu, gen_cpu, bench_bin, pps=None, label=None, srtp=None):
    port = args.ng_port
    srtp = srtp or srtp_modes(args)[0]
    label = label or name
    pps = pps or args.pps
    topo = getattr(args, "topo", None)
    ip, local = (topo.RELAY_IP, topo.GEN_IP) if topo else ("127.0.0.1", "127.0.0.1")
    wrap_relay = topo.in_relay if topo else (lambda c: c)
    wrap_gen = topo.in_gen if topo else (lambda c: c)
    cmd = relay_cmd(name, port, args.port_min, args.port_max, binary, args.workers, relay_cpu, ip,
                    args.rtprelay_args.split() if args.rtprelay_args else ())
    if getattr(args, "notrack", "off") != "off" and shutil.which("conntrack"):
        # Each run starts from an empty table: entries of the run before would otherwise linger (UDP
        # streams stay 120 s) and both add to the count and keep their flows tracked.
        subprocess.run(["ip", "netns", "exec", topo.relay_ns(), "conntrack", "-F"], capture_output=True)
    proc = subprocess.Popen(wrap_relay(["taskset", "-c", relay_cpu] + cmd),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not ng_ping(port, host=ip, topo=topo):
            raise RuntimeError(f"{name} did not answer NG ping")
        if proc.poll() is not None:
            # Another relay answered on the NG port (e.g. a second bench run): measuring it would
            # give meaningless figures.
            raise RuntimeError(f"{name} exited at start (NG port {port} taken?), exit code {proc.returncode}")
        out = subprocess.run(wrap_gen(["taskset", "-c", gen_cpu, bench_bin, "--ng", f"{ip}:{port}", "--local", local,
                              "--relay-pid", str(proc.pid), "--calls", str(calls), "--seconds", str(args.seconds),
                              "--pps", str(pps), "--warmup", str(args.warmup), "--label", label,
                              "--threads", str(args.threads), "--srtp", srtp]
                             + (["--connected"] if args.connected else [])),
                             capture_output=True, text=True, timeout=args.seconds + 180)
        if out.returncode != 0:
            raise RuntimeError(f"generator failed: {out.stderr.strip()}")
        r = json.loads(out.stdout)
        r["relay_workers"] = args.workers
        if getattr(args, "notrack", "off") != "off":
            r["conntrack_entries"] = conntrack_count(topo)
        return r
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def conntrack_count(topo):
    """Entries in the relay namespace's conntrack table right after a run (None without the tool):
    with the media range exempted only the NG exchange's few remain."""
    if not shutil.which("conntrack"):
        return None
    out = subprocess.run(["ip", "netns", "exec", topo.relay_ns(), "conntrack", "-C"],
                         capture_output=True, text=True)
    try:
        return int(out.stdout.strip())
    except ValueError:
        return None


CROWDED = 10.0  # % of the window a process waited for a CPU above which a run is marked crowded


def crowded(r):
    """Another process took the relay's or the generator's CPU during the window."""
    return max(r.get("relay_runqueue_wait_percent", 0), r.get("generator_runqueue_wait_percent", 0)) > CROWDED


def fmt_run(r):
    note = " GENERATOR-BOUND" if r.get("generator_bound") else ""
    if crowded(r):
        note += (f" CROWDED (run-queue wait relay {r['relay_runqueue_wait_percent']:.0f}%,"
                 f" generator {r['generator_runqueue_wait_percent']:.0f}%)")
    if r.get("srtp_failures"):
        note += f" SRTP-FAILURES={r['srtp_failures']}"
    if r.get("wrong_length"):
        note += f" WRONG-LENGTH={r['wrong_length']}"
    return (f"{r['label']:9} calls={r['calls']:5} pps/stream={r['pps_per_stream']} run={r.get('run', 0)} "
            f"cpu/pkt={cost(r):.2f}us" + (f" (xdp {r['relay_bpf_ns_per_packet']:.0f}ns)" if r.get("relay_bpf_ns_per_packet") is not None else "") + f" fwd={r['forwarded_pps']:.0f}pps "
            f"sent={r['sent_pps']:.0f}/{r['nominal_pps']:.0f}pps loss={r['loss_ratio']:.5f} "
            f"p99={r['latency_us']['p99']}us relay_cpu={r['relay_cpu_percent']:.0f}% "
            f"gen_cpu={r['generator_cpu_percent']:.0f}% ({r['generator_cpu_us_per_sent_packet']:.2f}us/sent) rss={r['relay_rss_kib']}KiB "
            f"setup={r['setup_seconds']:.1f}s"
            + (f" conntrack={r['conntrack_entries']}" if r.get("conntrack_entries") is not None else "") + note)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="100,500")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--pps", type=int, default=50, help="packets per second per stream (start rate with --max-rate)")
    ap.add_argument("--relays", default="rtprelay,rtpengine")
    ap.add_argument("--rtprelay", default=os.path.join(ROOT, "target/release/rtprelay"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "target/release/rtprelay-bench"))
    ap.add_argument("--out", default=None, help="directory for results.json and results.md")
    ap.add_argument("--ng-port", type=int, default=22300, help="NG port the relays listen on")
    # Below Linux's ephemeral range (32768-60999 by default), where the generator's sockets live.
    ap.add_argument("--port-min", type=int, default=10000, help="first relay media port")
    ap.add_argument("--port-max", type=int, default=32767, help="last relay media port (4 per call)")
    ap.add_argument("--warmup", type=int, default=2, help="generator warm-up seconds")
    ap.add_argument("--threads", type=int, default=1, help="generator threads")
    ap.add_argument("--connected", action="store_true",
                    help="generator sends on connected sockets instead of sendmmsg batches")
    ap.add_argument("--workers", type=int, default=1,
                    help="relay worker threads, pinned one per CPU (rtprelay --num-threads/--cpu-affinity)")
    ap.add_argument("--relay-cpus", default=None, help="CPU list for the relay (default: 1, or 0,1 with 2 workers)")
    ap.add_argument("--gen-cpus", default=None, help="CPU list for the generator (default: 0)")
    ap.add_argument("--max-rate", action="store_true",
                    help="search the highest forwarded rate with loss <= 0.1 %% instead of the fixed-rate table")
    ap.add_argument("--max-rate-budget", type=int, default=150,
                    help="wall-clock seconds the --max-rate search may take per relay")
    ap.add_argument("--max-rate-bisect", type=int, default=3, help="bisection steps after the doubling")
    ap.add_argument("--rtprelay-args", default="",
                    help="extra options for the rtprelay relays, e.g. --xdp-no-offload to measure the afxdp path alone")
    ap.add_argument("--netns", action="store_true",
                    help="run relay and generator in two network namespaces over a veth pair (needs root; for xdp)")
    ap.add_argument("--notrack", choices=("off", "on", "both"), default="off",
                    help="on: exempt the media range from conntrack (scripts/notrack.sh) in the relay's namespace, "
                         "which has a stateful firewall rule so that conntrack runs; both: each run without, then "
                         "with (labels +notrack); needs root and nft. Loopback runs then use a fresh namespace")
    ap.add_argument("--srtp", default="none",
                    help="SRTP on the caller's side: none, aes-cm (AES_CM_128_HMAC_SHA1_80) or aes-gcm "
                         "(AEAD_AES_128_GCM), bridged to plain RTP on the callee's; a comma list measures "
                         "each in turn within every run (labels +aes-cm, +aes-gcm)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if any run lost packets, left a stream silent, or delivered a packet twice or "
                         "to the wrong socket or from the wrong source (a correctness smoke test)")
    return ap.parse_args()


def cpu_lists(args):
    ncpu = os.cpu_count() or 1
    if ncpu == 1:
        relay, gen = "0", "0"
    elif args.workers > 1:
        relay, gen = ",".join(str(i) for i in range(min(args.workers, ncpu))), "0"
    else:
        relay, gen = "1", "0"
    return args.relay_cpus or relay, args.gen_cpus or gen


def main():
    args = parse_args()
    relay_cpu, gen_cpu = cpu_lists(args)
    relays = args.relays.split(",")
    if "rtpengine" in relays and not shutil.which("rtpengine"):
        sys.exit("rtpengine is not installed (apt-get install rtpengine-daemon)")
    counts = [int(c) for c in args.calls.split(",")]
    ports = args.port_max - args.port_min + 1
    if 4 * max(counts) > ports:
        sys.exit(f"{max(counts)} calls need {4 * max(counts)} relay ports; --port-min/--port-max give {ports}")
    if args.max_rate and args.notrack == "both":
        sys.exit("--max-rate takes --notrack on or off, not both")
    if args.max_rate and len(srtp_modes(args)) > 1:
        sys.exit("--max-rate takes one --srtp mode")
    if args.netns:
        import netns
        with netns.Topology() as topo:
            args.topo = topo
            if args.notrack != "off":
                netns.add_stateful_firewall(topo.relay_ns())
            return measure(args, relays, counts, relay_cpu, gen_cpu)
    if args.notrack != "off":
        import netns
        with netns.LoopbackNetns(stateful=True) as topo:
            args.topo = topo
            return measure(args, relays, counts, relay_cpu, gen_cpu)
    return measure(args, relays, counts, relay_cpu, gen_cpu)


NOTRACK_SUFFIX = "+notrack"
SRTP_MODES = ("none", "aes-cm", "aes-gcm")


def srtp_modes(args):
    modes = [m.strip() for m in args.srtp.split(",") if m.strip()] or ["none"]
    bad = [m for m in modes if m not in SRTP_MODES]
    if bad:
        sys.exit(f"--srtp: unknown mode {','.join(bad)} (none, aes-cm, aes-gcm)")
    return modes


def srtp_suffix(mode):
    return "" if mode == "none" else "+" + mode


def modes(args):
    """The conntrack modes to measure: False (tracked), True (media range exempted)."""
    return {"off": [False], "on": [True], "both": [False, True]}[args.notrack]


def set_notrack(args, on):
    if args.notrack == "off":
        return
    import netns
    netns.notrack(args.topo.relay_ns(), args.port_min, args.port_max, on)


def base_of(label):
    """The rtpengine run a relay's label is compared with: the one in the same SRTP and conntrack
    modes (the label's suffixes, after the relay's name)."""
    return "rtpengine" + (label[label.index("+"):] if "+" in label else "")


def cost(r):
    """Relay CPU per forwarded packet, including the XDP program's run time when there is one."""
    return r.get("relay_total_us_per_packet", r["relay_cpu_us_per_packet"])


def measure(args, relays, counts, relay_cpu, gen_cpu):
    if args.max_rate:
        set_notrack(args, args.notrack == "on")
        try:
            return max_rate(args, relays, counts[0], relay_cpu, gen_cpu)
        finally:
            set_notrack(args, False)
    results = []
    label_of = lambda name, srtp, on: name + srtp_suffix(srtp) + (NOTRACK_SUFFIX if on else "")
    labels = [label_of(n, m, on) for on in modes(args) for m in srtp_modes(args) for n in relays]
    try:
        for calls in counts:
            for run in range(args.runs):
                for on in modes(args):  # interleaved, so every relay and mode sees the same machine conditions
                    set_notrack(args, on)
                    for srtp in srtp_modes(args):
                        for name in relays:
                            r = run_one(name, args.rtprelay if name.startswith("rtprelay") else None, calls, args,
                                        relay_cpu, gen_cpu, args.bench, label=label_of(name, srtp, on), srtp=srtp)
                            r["run"] = run
                            r["notrack"] = on
                            r["srtp_mode"] = srtp
                            results.append(r)
                            print(fmt_run(r), flush=True)
    finally:
        set_notrack(args, False)
    relays = labels
    table = ["| calls | relay | SRTP (caller side) | CPU µs/packet (median) | of which XDP program ns | forwarded pps | loss | p99 latency µs | RSS KiB | ratio vs rtpengine | per-run ratios (median) | generator sent/nominal | generator CPU % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for calls in sorted({r["calls"] for r in results}):
        med = {}
        for name in relays:
            rs = [r for r in results if r["calls"] == calls and r["label"] == name]
            med[name] = {k: statistics.median(x[k] for x in rs) for k in
                         ("forwarded_pps", "loss_ratio", "relay_rss_kib", "send_ratio", "generator_cpu_percent")}
            med[name]["srtp"] = rs[0].get("srtp") or "none"
            med[name]["srtp_failures"] = sum(x.get("srtp_failures", 0) for x in rs)
            med[name]["relay_cpu_us_per_packet"] = statistics.median(cost(x) for x in rs)
            bpf = [x["relay_bpf_ns_per_packet"] for x in rs if x.get("relay_bpf_ns_per_packet") is not None]
            med[name]["bpf"] = f"{statistics.median(bpf):.0f}" if bpf else ""
            med[name]["p99"] = statistics.median(x["latency_us"]["p99"] for x in rs)
            med[name]["bound"] = sum(1 for x in rs if x.get("generator_bound"))
            med[name]["crowded"] = sum(1 for x in rs if crowded(x))
        for name in relays:
            m = med[name]
            ratio, run_ratio = "", ""
            base = base_of(name)
            if name != base and base in med and med[base]["relay_cpu_us_per_packet"]:
                ratio = f"{m['relay_cpu_us_per_packet'] / med[base]['relay_cpu_us_per_packet']:.2f}"
                # The same ratio within each run (the runs interleave the relays), then its median:
                # less exposed to a load that changed between runs.
                pairs = [(cost(x), cost(y)) for x in results for y in results
                         if x["calls"] == calls == y["calls"] and x["run"] == y["run"]
                         and x["label"] == name and y["label"] == base and cost(y)]
                if pairs:
                    run_ratio = f"{statistics.median(a / b for a, b in pairs):.2f}"
            gen = f"{m['send_ratio'] * 100:.0f} %"
            if m["bound"]:
                gen += f" generator-bound ({m['bound']}/{args.runs} runs)"
            if m["crowded"]:
                gen += f" crowded ({m['crowded']}/{args.runs} runs)"
            loss = f"{m['loss_ratio']:.5f}"
            if m["srtp_failures"]:
                loss += f" ({m['srtp_failures']} failed SRTP checks)"
            table.append(f"| {calls} | {name} | {m['srtp']} | {m['relay_cpu_us_per_packet']:.2f} | {m['bpf']} | {m['forwarded_pps']:.0f} | "
                         f"{loss} | {m['p99']:.0f} | {m['relay_rss_kib']:.0f} | {ratio} | {run_ratio} | {gen} | {m['generator_cpu_percent']:.0f} |")
    if args.notrack == "both":
        # What the exemption saves per relay: median CPU per packet with notrack over without.
        table += ["", "| calls | relay | CPU µs/packet tracked | with notrack | notrack / tracked | conntrack entries after a run (tracked / notrack) |",
                  "|---|---|---|---|---|---|"]
        for calls in sorted({r["calls"] for r in results}):
            for name in [n for n in relays if not n.endswith(NOTRACK_SUFFIX)]:
                off = [r for r in results if r["calls"] == calls and r["label"] == name]
                on = [r for r in results if r["calls"] == calls and r["label"] == name + NOTRACK_SUFFIX]
                c_off, c_on = statistics.median(cost(x) for x in off), statistics.median(cost(x) for x in on)
                ent = lambda rs: statistics.median(x["conntrack_entries"] for x in rs) \
                    if all(x.get("conntrack_entries") is not None for x in rs) else "?"
                table.append(f"| {calls} | {name} | {c_off:.2f} | {c_on:.2f} | {c_on / c_off:.2f} | {ent(off)} / {ent(on)} |")
    print("\n".join(table))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write("\n".join(table) + "\n")
        plot(results, relays, os.path.join(args.out, "cpu_per_packet.png"))
    if args.check:
        # Loss counts distinct packets that arrived on their stream's socket from the relay
        # address that socket sends to; a duplicate or a misrouted packet fails on its own.
        bad = [r for r in results if r["loss_ratio"] > 0.001 or r["silent_streams"] > 0
               or r["duplicates"] > 0 or r["misrouted"] > 0 or r.get("srtp_failures", 0) > 0
               or r.get("wrong_length", 0) > 0]
        for r in bad:
            print(f"CHECK FAILED: {r['label']} calls={r['calls']} run={r['run']} "
                  f"loss={r['loss_ratio']:.5f} silent_streams={r['silent_streams']} "
                  f"duplicates={r['duplicates']} misrouted={r['misrouted']} "
                  f"srtp_failures={r.get('srtp_failures', 0)} wrong_length={r.get('wrong_length', 0)}")
        print(f"check: {len(results) - len(bad)} passed, {len(bad)} failed")
        sys.exit(1 if bad else 0)


MAX_LOSS = 0.001  # loss ratio a max-rate step may have and still pass


def max_rate(args, relays, calls, relay_cpu, gen_cpu):
    """Per relay: double the per-stream rate until a step loses more than 0.1 % (or the generator
    cannot offer the rate), then bisect between the last good and the first bad rate. Each step is
    one fresh relay and one generator run of --seconds; the search stops when --max-rate-budget runs out."""
    summary, steps = [], []
    for name in relays:
        binary = args.rtprelay if name.startswith("rtprelay") else None
        start = time.time()
        good, bad, pps, limit = None, None, args.pps, "loss"
        def step(pps):
            r = run_one(name, binary, calls, args, relay_cpu, gen_cpu, args.bench, pps=pps)
            r["max_rate_step"] = len(steps)
            steps.append(r)
            print(fmt_run(r), flush=True)
            return r
        while time.time() - start < args.max_rate_budget:
            r = step(pps)
            if r["loss_ratio"] > MAX_LOSS or r["silent_streams"] > 0:
                bad = pps
                break
            good = r
            if r.get("generator_bound"):
                limit = "generator"  # the relay kept up with all the generator could send
                break
            pps *= 2
        else:
            limit = "budget"
        lo = good["pps_per_stream"] if good else 0
        for _ in range(args.max_rate_bisect if bad else 0):
            mid = (lo + bad) // 2
            if mid <= lo or time.time() - start >= args.max_rate_budget:
                break
            r = step(mid)
            if r["loss_ratio"] > MAX_LOSS or r["silent_streams"] > 0:
                bad = mid
            else:
                good, lo = r, mid
                if r.get("generator_bound"):
                    limit = "generator"
                    break
        mine = [r for r in steps if r["label"] == name]
        row = {"label": name, "calls": calls, "limit": limit, "search_seconds": time.time() - start,
               "steps": len(mine), "crowded_steps": sum(1 for r in mine if crowded(r))}
        if good:
            # Per core fully used: from the cost per packet, which also counts the XDP program's
            # run time (it runs outside the relay's threads, so CPU % alone would miss it).
            per_core = 1e6 / cost(good) if cost(good) > 0 else 0
            row.update({"pps_per_stream": good["pps_per_stream"], "forwarded_pps": good["forwarded_pps"],
                        "loss_ratio": good["loss_ratio"], "relay_cpu_percent": good["relay_cpu_percent"],
                        "forwarded_pps_per_relay_core": per_core,
                        "relay_cpu_us_per_packet": cost(good),
                        "generator_bound": bool(good.get("generator_bound"))})
        summary.append(row)
    table = ["| relay | calls | highest rate with loss ≤ 0.1 % (forwarded pps) | relay CPU % | forwarded pps per relay core | CPU µs/packet | stopped by |",
             "|---|---|---|---|---|---|---|"]
    for m in summary:
        if "forwarded_pps" not in m:
            table.append(f"| {m['label']} | {m['calls']} | none | | | | {m['limit']} ({m['crowded_steps']}/{m['steps']} steps crowded) |")
            continue
        at_least = "≥ " if m["limit"] != "loss" else ""
        note = f" ({m['crowded_steps']}/{m['steps']} steps crowded)" if m["crowded_steps"] else ""
        table.append(f"| {m['label']} | {m['calls']} | {at_least}{m['forwarded_pps']:.0f} | {m['relay_cpu_percent']:.0f} | "
                     f"{m['forwarded_pps_per_relay_core']:.0f} | {m['relay_cpu_us_per_packet']:.2f} | {m['limit']}{note} |")
    print("\n".join(table))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "max_rate.json"), "w") as f:
            json.dump({"summary": summary, "steps": steps}, f, indent=1)
        with open(os.path.join(args.out, "max_rate.md"), "w") as f:
            f.write("\n".join(table) + "\n")


def plot(results, relays, path):
    """CPU µs per packet against calls, one line per relay (median of the runs); needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib not installed (pip install matplotlib), no plot written")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in relays:
        xs = sorted({r["calls"] for r in results if r["label"] == name})
        ys = [statistics.median(cost(r) for r in results
                                if r["label"] == name and r["calls"] == c) for c in xs]
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("concurrent calls (G.711, 50 pps each way)")
    ax.set_ylabel("relay CPU µs per forwarded packet")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
