"""A two-namespace topology for benchmarks that need a real network device (the XDP plane).

`gen` and `relay` are joined by one veth pair: the generator's sockets live in `gen`, the relay in
`relay`, and the relay's media interface is its veth, where the XDP program attaches. The
generator's veth gets an XDP_PASS program (frames XDP_TXed into a veth are dropped unless its peer
has one) and TX checksum offload off (partial checksums). Created fresh and deleted on exit.
"""
import os, subprocess, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASS_SRC = os.path.join(ROOT, "tests", "common", "xdp_pass.bpf.c")


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


class Topology:
    RELAY_IP = "10.201.0.1"
    GEN_IP = "10.201.0.2"

    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.relay = f"rpb-relay-{tag}"
        self.gen = f"rpb-gen-{tag}"
        self.tmp = tempfile.mkdtemp(prefix="rpb-")
        self.stats_before = None

    def __enter__(self):
        try:
            self._build()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _build(self):
        for ns in (self.relay, self.gen):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "rpbr", "netns", self.relay, "type", "veth", "peer", "name", "rpbg", "netns", self.gen)
        sh("ip", "-n", self.relay, "addr", "add", f"{self.RELAY_IP}/24", "dev", "rpbr")
        sh("ip", "-n", self.gen, "addr", "add", f"{self.GEN_IP}/24", "dev", "rpbg")
        sh("ip", "netns", "exec", self.gen, "ethtool", "-K", "rpbg", "tx", "off")
        obj = os.path.join(self.tmp, "pass.o")
        sh("clang", "-O2", "-g", "-target", "bpf", "-c", PASS_SRC, "-o", obj)
        sh("ip", "-n", self.gen, "link", "set", "dev", "rpbg", "xdp", "obj", obj, "sec", "xdp")
        for ns, dev in ((self.relay, "rpbr"), (self.gen, "rpbg")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        # The XDP program's run time is what XDP costs (it runs in softirq, outside the relay).
        self.stats_before = sh("sysctl", "-n", "kernel.bpf_stats_enabled", check=False).stdout.strip() or "0"
        sh("sysctl", "-qw", "kernel.bpf_stats_enabled=1", check=False)
        # Neighbours resolve once so that the first packets are not lost to ARP.
        sh("ip", "netns", "exec", self.gen, "ping", "-c", "1", "-W", "2", self.RELAY_IP, check=False)

    def __exit__(self, *exc):
        if self.stats_before is not None:
            sh("sysctl", "-qw", f"kernel.bpf_stats_enabled={self.stats_before}", check=False)
        for ns in (self.relay, self.gen):
            sh("ip", "netns", "del", ns, check=False)
        sh("rm", "-rf", self.tmp, check=False)

    def in_relay(self, cmd):
        return ["ip", "netns", "exec", self.relay] + cmd

    def in_gen(self, cmd):
        return ["ip", "netns", "exec", self.gen] + cmd

    def relay_ns(self):
        return self.relay


class LoopbackNetns:
    """One fresh network namespace for a loopback run: relay and generator on its 127.0.0.1.

    With `stateful` its input chain holds one stateful-firewall rule (`ct state established,related
    accept`, policy accept), which makes the kernel track every packet in the namespace, as on a host
    whose firewall or Docker rules load conntrack. A fresh namespace tracks nothing until such a rule
    asks for it, so without it notrack would have nothing to save. Deleted on exit."""
    RELAY_IP = "127.0.0.1"
    GEN_IP = "127.0.0.1"

    def __init__(self, stateful=True):
        self.ns = f"rpb-lo-{os.getpid() % 100000}"
        self.stateful = stateful
        self.made = False

    def __enter__(self):
        try:
            sh("ip", "netns", "add", self.ns)
            self.made = True
            sh("ip", "-n", self.ns, "link", "set", "lo", "up")
            if self.stateful:
                add_stateful_firewall(self.ns)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.made:
            sh("ip", "netns", "del", self.ns, check=False)

    def in_relay(self, cmd):
        return ["ip", "netns", "exec", self.ns] + cmd

    in_gen = in_relay

    def relay_ns(self):
        return self.ns


def add_stateful_firewall(ns):
    """A typical stateful input chain in `ns` (accepting everything), which turns conntrack on there."""
    rules = ("table inet rpb_fw {\n chain input {\n  type filter hook input priority filter; policy accept;\n"
             "  ct state established,related accept\n }\n}\n")
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True,
                   capture_output=True)


NOTRACK = os.path.join(ROOT, "scripts", "notrack.sh")


def notrack(ns, pmin, pmax, on):
    """Adds (on) or removes the media range's notrack rules in `ns` (None: this namespace)."""
    cmd = [NOTRACK] + ([str(pmin), str(pmax)] if on else ["--remove"])
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    subprocess.run(cmd, check=True, capture_output=True, text=True)
