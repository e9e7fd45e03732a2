#!/usr/bin/env python3
"""High-availability figures: restore after a restart, standby takeover, and the NG latency that
writing calls to Redis costs.

  python3 bench/ha.py --rtprelay target/release/rtprelay [--calls 10000] [--runs 3]

restore:  N calls set up over NG with --redis; the relay is killed (SIGKILL) and started again;
          time from the new process's start until a probe call forwards again, and the relay's
          own figure for the restore (read + rebind + open).
takeover: N calls on an active relay; a standby (--redis-follow) mirrors them; the active is
          killed and the standby told to take over (SIGUSR1): time until the probe forwards
          again through the standby, and the standby's own figure.
latency:  offer+answer round trips at a fixed call rate, with and without --redis (medians and
          p99 of each command, client side); each call is deleted 2000 calls later.

Runs on loopback as root (the relay needs an open-files limit above 4 sockets per call).
Redis is a local redis-server without persistence. Figures are printed as JSON and a table.
"""

import argparse
import json
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RELAY_IP = "127.0.0.71"
PARTY_IP = "127.0.0.72"
PROBE_IP = "127.0.0.73"
# Calls alive at a time in the latency run.
LIVE = 2000


# --- bencode and NG -------------------------------------------------------------------------

def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(benc(k) + benc(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(v)


def bdec(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        out, i = [], i + 1
        while b[i:i + 1] != b"e":
            v, i = bdec(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while b[i:i + 1] != b"e":
            k, i = bdec(b, i)
            v, i = bdec(b, i)
            out[k.decode()] = v
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


class Ng:
    def __init__(self, port):
        self.addr = ("127.0.0.1", port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(2.0)

    def __call__(self, **msg):
        cookie = "%x" % random.getrandbits(48)
        self.s.sendto(cookie.encode() + b" " + benc(msg), self.addr)
        while True:
            data, _ = self.s.recvfrom(65535)
            if data.startswith(cookie.encode() + b" "):
                return bdec(data[len(cookie) + 1:])[0]


def sdp(ip, port):
    return ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n") % (ip, ip, port)


def media_port(reply):
    m = re.search(rb"m=audio (\d+)", reply[b"sdp"] if b"sdp" in reply else reply["sdp"])
    return int(m.group(1))


def call(ng, cid, a, b):
    """Offer from a, answer from b: the relay ports b and a send to."""
    o = ng(command="offer", **{"call-id": cid, "from-tag": "a", "sdp": sdp(a[0], a[1])})
    r = ng(command="answer", **{"call-id": cid, "from-tag": "a", "to-tag": "b", "sdp": sdp(b[0], b[1])})
    if o.get("result") != b"ok" or r.get("result") != b"ok":
        raise RuntimeError("call %s: %r %r" % (cid, o, r))
    return media_port(o), media_port(r)


# --- processes ------------------------------------------------------------------------------

def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp):
    port = free_tcp_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          text=True).stdout.strip()


def start_relay(binary, ng_port, redis_port, log, extra=()):
    args = [binary, "--config-file=none", "--table=-1", "-f", "-E", "-L", os.environ.get("HA_LOG_LEVEL", "6"),
            "--delete-delay=0", "-i", RELAY_IP, "-n", "127.0.0.1:%d" % ng_port,
            "-m", "10000", "-M", "59999", "--timeout=600", *extra]
    if redis_port is not None:
        args.append("--redis=127.0.0.1:%d/0" % redis_port)
    started = time.monotonic()
    p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    return p, started


def wait_ng(ng_port, timeout=60):
    ng = Ng(ng_port)
    ng.s.settimeout(0.2)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if ng(command="ping").get("result") == b"pong":
                return
        except (socket.timeout, ConnectionRefusedError):
            pass
    raise RuntimeError("relay did not answer ping")


def log_field(log, marker, field):
    for line in open(log):
        if marker in line:
            m = re.search(r"\b%s=(\d+)" % field, line)
            if m:
                return int(m.group(1))
    return None


class Probe:
    """One call with real endpoints: B sends every 2 ms; first_after(t) is when A next got one."""

    def __init__(self):
        self.a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.a.bind((PROBE_IP, 0))
        self.b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.b.bind((PROBE_IP, 0))
        self.a.settimeout(0.002)

    def setup(self, ng, cid):
        self.b_to, _ = call(ng, cid, self.a.getsockname(), self.b.getsockname())

    def first_after(self, t0, timeout=30):
        pkt = bytes([0x80, 0]) + b"\0" * 170
        end = t0 + timeout
        while time.monotonic() < end:
            self.b.sendto(pkt, (RELAY_IP, self.b_to))
            try:
                self.a.recv(2048)
                return time.monotonic()
            except socket.timeout:
                pass
        return None


def set_up_calls(ng, n, tag):
    t = time.monotonic()
    for i in range(n):
        call(ng, "%s-%d" % (tag, i), (PARTY_IP, 20000 + 2 * (i % 10000)), (PARTY_IP, 40000 + 2 * (i % 10000)))
    return time.monotonic() - t


def wait_index(redis_port, node, n, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if int(redis_cli(redis_port, "SCARD", "{rtprelay:%s}:calls" % node) or 0) >= n:
            return True
        time.sleep(0.2)
    return False


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.wait()


# --- the three measurements -----------------------------------------------------------------

def restore_run(args, tmp):
    redis, rport = start_redis(tmp)
    ng_port = free_tcp_port()
    log1, log2 = os.path.join(tmp, "a.log"), os.path.join(tmp, "b.log")
    relay, _ = start_relay(args.rtprelay, ng_port, rport, log1, ["--redis-node=bench"])
    try:
        wait_ng(ng_port)
        ng = Ng(ng_port)
        probe = Probe()
        probe.setup(ng, "probe")
        set_up_calls(ng, args.calls, "r")
        if not wait_index(rport, "bench", args.calls + 1):
            raise RuntimeError("calls did not reach Redis")
        stop(relay)
        relay, started = start_relay(args.rtprelay, ng_port, rport, log2, ["--redis-node=bench"])
        back = probe.first_after(started)
        wait_ng(ng_port)
        return {
            "calls": args.calls,
            "start_to_forwarding_ms": round((back - started) * 1000) if back else None,
            "relay_restore_ms": log_field(log2, "calls restored from Redis", "total_ms"),
            "restored": log_field(log2, "calls restored from Redis", "restored"),
        }
    finally:
        stop(relay)
        stop(redis)


def takeover_run(args, tmp):
    redis, rport = start_redis(tmp)
    ng_a, ng_b = free_tcp_port(), free_tcp_port()
    log_a, log_b = os.path.join(tmp, "active.log"), os.path.join(tmp, "standby.log")
    active, _ = start_relay(args.rtprelay, ng_a, rport, log_a, ["--redis-node=active"])
    standby = None
    try:
        wait_ng(ng_a)
        standby, _ = start_relay(args.rtprelay, ng_b, rport, log_b,
                                 ["--redis-node=standby", "--redis-follow=active"])
        wait_ng(ng_b)
        ng = Ng(ng_a)
        probe = Probe()
        probe.setup(ng, "probe")
        set_up_calls(ng, args.calls, "t")
        if not wait_index(rport, "active", args.calls + 1):
            raise RuntimeError("calls did not reach Redis")
        time.sleep(2)  # the standby reads the stream every few hundred ms at most
        stop(active)
        told = time.monotonic()
        standby.send_signal(signal.SIGUSR1)
        back = probe.first_after(told)
        time.sleep(0.5)
        return {
            "calls": args.calls,
            "told_to_forwarding_ms": round((back - told) * 1000) if back else None,
            "relay_takeover_ms": log_field(log_b, "takeover done", "ms"),
            "restored": log_field(log_b, "took over the node's calls", "restored"),
        }
    finally:
        stop(active)
        if standby:
            stop(standby)
        stop(redis)


def latency_run(args, tmp, with_redis):
    redis, rport = start_redis(tmp)
    ng_port = free_tcp_port()
    log = os.path.join(tmp, "lat.log")
    relay, _ = start_relay(args.rtprelay, ng_port, rport if with_redis else None, log,
                           ["--redis-node=lat"])
    try:
        wait_ng(ng_port)
        ng = Ng(ng_port)
        rtt = {"offer": [], "answer": []}
        gap = 1.0 / args.rate
        t_next = time.monotonic()
        for i in range(args.latency_calls):
            cid = "l-%d" % i
            for cmd, extra_args in (("offer", {"sdp": sdp(PARTY_IP, 20000 + 2 * (i % 10000))}),
                                    ("answer", {"to-tag": "b", "sdp": sdp(PARTY_IP, 40000 + 2 * (i % 10000))})):
                t = time.monotonic()
                r = ng(command=cmd, **{"call-id": cid, "from-tag": "a"}, **extra_args)
                rtt[cmd].append((time.monotonic() - t) * 1e6)
                if r.get("result") != b"ok":
                    raise RuntimeError(r)
            # Calls end as they come: about LIVE calls at a time (the open-files limit).
            if i >= LIVE:
                ng(command="delete", **{"call-id": "l-%d" % (i - LIVE), "from-tag": "a"})
            t_next += gap
            time.sleep(max(0, t_next - time.monotonic()))
        out = {}
        for cmd, v in rtt.items():
            v.sort()
            out[cmd + "_median_us"] = round(statistics.median(v))
            out[cmd + "_p99_us"] = round(v[int(len(v) * 0.99)])
        return out
    finally:
        stop(relay)
        stop(redis)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtprelay", required=True)
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=500, help="calls per second in the latency run")
    ap.add_argument("--latency-calls", type=int, default=5000)
    ap.add_argument("--only", choices=["restore", "takeover", "latency"], action="append")
    ap.add_argument("--logs", help="keep the relays' logs in this directory")
    args = ap.parse_args()
    # Four sockets per call: raise the soft limit to the hard one (raising the hard one needs
    # CAP_SYS_RESOURCE; without it, the hard limit caps the calls a relay can hold).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit < 4 * args.calls + 100:
        sys.exit("open-files limit %d is too low for %d calls (4 sockets each); use --calls %d"
                 % (limit, args.calls, (limit - 100) // 4))
    results = {"restore": [], "takeover": [], "latency_off": [], "latency_on": []}
    only = set(args.only or ["restore", "takeover", "latency"])
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            if args.logs:
                tmp = os.path.join(args.logs, "run%d" % (run + 1))
                os.makedirs(tmp, exist_ok=True)
            if "restore" in only:
                results["restore"].append(restore_run(args, tmp))
            if "takeover" in only:
                results["takeover"].append(takeover_run(args, tmp))
            if "latency" in only:
                results["latency_off"].append(latency_run(args, tmp, False))
                results["latency_on"].append(latency_run(args, tmp, True))
        print("run %d: %s" % (run + 1, json.dumps({k: v[-1] for k, v in results.items() if v})), file=sys.stderr)

    def med(rows, key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    summary = {}
    if results["restore"]:
        summary["restore"] = {k: med(results["restore"], k)
                              for k in ("start_to_forwarding_ms", "relay_restore_ms", "restored")}
    if results["takeover"]:
        summary["takeover"] = {k: med(results["takeover"], k)
                               for k in ("told_to_forwarding_ms", "relay_takeover_ms", "restored")}
    if results["latency_on"]:
        summary["latency"] = {
            k: {"off": med(results["latency_off"], k), "on": med(results["latency_on"], k)}
            for k in results["latency_on"][0]}
    print(json.dumps({"runs": results, "medians": summary}, indent=2))


if __name__ == "__main__":
    main()
