#!/usr/bin/env python3
"""Side-by-side: rtprelay against Debian's rtpengine (--table=-1) at several call counts.

Each relay runs pinned to one core and the generator to the other. For every call count and
relay, the generator runs --runs times; the table shows medians and the ratio of rtprelay's
CPU per packet to rtpengine's measured in the same run.

  bench/compare.py --calls 100,500 --runs 3 --seconds 10 [--out bench/results]
  bench/compare.py --relays rtprelay-mmsg,rtprelay-uring,rtpengine

A relay named rtprelay-PLANE runs rtprelay with --dataplane=PLANE (mmsg, uring, auto).
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ng_ping(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(b"p1 d7:command4:pinge", ("127.0.0.1", port))
            if b"pong" in s.recv(1000):
                return True
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.1)
    return False


def relay_cmd(name, port, pmin, pmax, binary):
    common = ["-i", "127.0.0.1", "-n", f"127.0.0.1:{port}", "-m", str(pmin), "-M", str(pmax),
              "-f", "-E", "-L", "4", "--table=-1", "--delete-delay=0"]
    if name == "rtpengine":
        return [binary or "rtpengine", "--config-file=none", "--num-threads=2"] + common
    plane = ["--dataplane=" + name.split("-", 1)[1]] if name.startswith("rtprelay-") else []
    return [binary, "--config-file=none", "--num-threads=1"] + plane + common


def run_one(name, binary, calls, args, relay_cpu, gen_cpu, bench_bin):
    port = args.ng_port
    proc = subprocess.Popen(["taskset", "-c", relay_cpu] + relay_cmd(name, port, 30000, 40000, binary),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not ng_ping(port):
            raise RuntimeError(f"{name} did not answer NG ping")
        out = subprocess.run(["taskset", "-c", gen_cpu, bench_bin, "--ng", f"127.0.0.1:{port}",
                              "--relay-pid", str(proc.pid), "--calls", str(calls), "--seconds", str(args.seconds),
                              "--pps", str(args.pps), "--warmup", str(args.warmup), "--label", name],
                             capture_output=True, text=True, timeout=args.seconds + 120)
        if out.returncode != 0:
            raise RuntimeError(f"generator failed: {out.stderr.strip()}")
        return json.loads(out.stdout)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="100,500")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--pps", type=int, default=50)
    ap.add_argument("--relays", default="rtprelay,rtpengine")
    ap.add_argument("--rtprelay", default=os.path.join(ROOT, "target/release/rtprelay"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "target/release/rtprelay-bench"))
    ap.add_argument("--out", default=None, help="directory for results.json and results.md")
    ap.add_argument("--ng-port", type=int, default=22300, help="NG port the relays listen on")
    ap.add_argument("--warmup", type=int, default=2, help="generator warm-up seconds")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if any run lost packets or left a stream silent (a correctness smoke test)")
    args = ap.parse_args()
    ncpu = os.cpu_count() or 1
    relay_cpu, gen_cpu = ("1", "0") if ncpu > 1 else ("0", "0")
    relays = args.relays.split(",")
    if "rtpengine" in relays and not shutil.which("rtpengine"):
        sys.exit("rtpengine is not installed (apt-get install rtpengine-daemon)")
    results = []
    for calls in [int(c) for c in args.calls.split(",")]:
        for run in range(args.runs):
            for name in relays:  # interleaved, so both see the same machine conditions
                r = run_one(name, args.rtprelay if name.startswith("rtprelay") else None, calls, args, relay_cpu, gen_cpu, args.bench)
                r["run"] = run
                results.append(r)
                print(f"{name:9} calls={calls:5} run={run} cpu/pkt={r['relay_cpu_us_per_packet']:.2f}us "
                      f"pps={r['forwarded_pps']:.0f} loss={r['loss_ratio']:.5f} p99={r['latency_us']['p99']}us "
                      f"rss={r['relay_rss_kib']}KiB", flush=True)
    table = ["| calls | relay | CPU µs/packet (median) | forwarded pps | loss | p99 latency µs | RSS KiB | ratio vs rtpengine |",
             "|---|---|---|---|---|---|---|---|"]
    for calls in sorted({r["calls"] for r in results}):
        med = {}
        for name in relays:
            rs = [r for r in results if r["calls"] == calls and r["label"] == name]
            med[name] = {k: statistics.median(x[k] for x in rs) for k in
                         ("relay_cpu_us_per_packet", "forwarded_pps", "loss_ratio", "relay_rss_kib")}
            med[name]["p99"] = statistics.median(x["latency_us"]["p99"] for x in rs)
        for name in relays:
            m = med[name]
            ratio = ""
            if name != "rtpengine" and "rtpengine" in med and med["rtpengine"]["relay_cpu_us_per_packet"]:
                ratio = f"{m['relay_cpu_us_per_packet'] / med['rtpengine']['relay_cpu_us_per_packet']:.2f}"
            table.append(f"| {calls} | {name} | {m['relay_cpu_us_per_packet']:.2f} | {m['forwarded_pps']:.0f} | "
                         f"{m['loss_ratio']:.5f} | {m['p99']:.0f} | {m['relay_rss_kib']:.0f} | {ratio} |")
    print("\n".join(table))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write("\n".join(table) + "\n")
        plot(results, relays, os.path.join(args.out, "cpu_per_packet.png"))
    if args.check:
        bad = [r for r in results if r["loss_ratio"] > 0.001 or r["silent_streams"] > 0]
        for r in bad:
            print(f"CHECK FAILED: {r['label']} calls={r['calls']} run={r['run']} "
                  f"loss={r['loss_ratio']:.5f} silent_streams={r['silent_streams']}")
        print(f"check: {len(results) - len(bad)} passed, {len(bad)} failed")
        sys.exit(1 if bad else 0)


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
        ys = [statistics.median(r["relay_cpu_us_per_packet"] for r in results
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
