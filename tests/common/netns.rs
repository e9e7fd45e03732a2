//! A network-namespace topology for data-plane tests that need real NICs (XDP attaches to one): a `lan`
//! namespace holding a Linux bridge, and the parties `caller`, `callee`, `relay` and `injector`, each in
//! its own namespace and joined to the bridge by a veth pair (`veth0` on the party side, `l-<role>` on the
//! bridge side). One subnet, a one-armed relay: 10.x.0.1 relay, .2 caller, .3 callee, .4 injector on /24,
//! and fdxx::1..4 on /64 (`nodad`, usable at once). Optionally the relay's veth has several queues
//! ([`Topology::with_relay_queues`]), and the relay has a second link to a `far` party on no LAN
//! ([`Topology::add_far_party`]), for the AF_XDP tests.
//!
//! Two veth pitfalls are handled while the links are still down: TX checksum offload is turned off on
//! every party's veth (a partial checksum would make an incremental update in XDP wrong, and toggling it
//! on a live pair made packets skip XDP), and the bridge side of the relay's veth runs a trivial
//! `XDP_PASS` program (a frame sent into a veth with `XDP_TX` or a redirect is dropped unless the peer runs
//! one). Every topology has fresh namespaces with unique names (`rpxt-<pid>-<n>-<role>`), deleted on drop,
//! panics included; those of earlier runs whose process is gone are swept on first use. Running `ip`,
//! entering a namespace and the sweep come from the crate's test kit (`rtprelay::testkit::netns`),
//! shared with the unit tests in `src/sys`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::media::MediaEndpoint;
use super::process::Proc;
use super::{find_program, is_root, scratch_dir, skip_unless};

/// Prefix of every namespace this harness makes.
const PREFIX: &str = "rpxt";
/// The party-side name of each veth.
pub const PARTY_IF: &str = "veth0";
/// The bridge in the `lan` namespace.
pub const BRIDGE: &str = "br0";

/// A party of the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Relay,
    Caller,
    Callee,
    /// A stranger on the same LAN, for strict-source tests.
    Injector,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Relay, Role::Caller, Role::Callee, Role::Injector];

    pub fn name(self) -> &'static str {
        match self {
            Role::Relay => "relay",
            Role::Caller => "caller",
            Role::Callee => "callee",
            Role::Injector => "inj",
        }
    }

    /// The last byte / group of the party's addresses.
    fn host(self) -> u8 {
        match self {
            Role::Relay => 1,
            Role::Caller => 2,
            Role::Callee => 3,
            Role::Injector => 4,
        }
    }
}

/// IPv4 or IPv6, for tests that run over either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// A built topology; its namespaces are deleted on drop.
pub struct Topology {
    /// `rpxt-<pid>-<n>`: every namespace name starts with it.
    pub id: String,
    /// The subnet byte `x` of 10.x.0.0/24 and fdxx::/64.
    pub net: u8,
    /// Namespaces created so far (all of them once `new` returns).
    created: Vec<String>,
    /// Receive and transmit queues of both ends of the relay's veth.
    relay_queues: u32,
}

impl Topology {
    /// Builds a fresh topology, or prints why it cannot and returns `None` (the test returns): not root,
    /// or `ip netns`, `ethtool` or `clang` missing. Under `RTPRELAY_E2E=1` those are failures instead.
    pub fn new() -> Option<Topology> {
        Topology::with_relay_queues(1)
    }

    /// As [`Topology::new`], with `queues` receive and transmit queues on both ends of the
    /// relay's veth: the bridge side picks a transmit queue per flow (by its hash), and the
    /// relay side receives on the queue of the same number, as RSS would spread them.
    pub fn with_relay_queues(queues: u32) -> Option<Topology> {
        if !skip_unless(is_root(), "network namespaces need root") {
            return None;
        }
        for tool in ["ip", "ethtool", "clang"] {
            if !skip_unless(
                find_program(tool).is_some(),
                &format!("the namespace topology needs `{tool}`"),
            ) {
                return None;
            }
        }
        sweep_stale();
        let xdp_pass = match xdp_pass_object() {
            Ok(p) => p,
            Err(e) => {
                skip_unless(false, &e);
                return None;
            }
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut topo = Topology {
            id: format!("{PREFIX}-{}-{n}", std::process::id()),
            net: 100 + (n % 100) as u8,
            created: Vec::new(),
            relay_queues: queues.max(1),
        };
        // `ip netns add` needs a working netns setup; a host without it skips (never after a partial build).
        let lan = topo.lan();
        if let Err(e) = ip(&["netns", "add", &lan]) {
            skip_unless(false, &format!("`ip netns add` failed: {e}"));
            return None;
        }
        topo.created.push(lan.clone());
        topo.build(&xdp_pass);
        Some(topo)
    }

    /// Everything after the `lan` namespace exists; panics (and `Drop` cleans up) on any failure.
    fn build(&mut self, xdp_pass: &Path) {
        let lan = self.lan();
        for role in Role::ALL {
            let ns = self.ns(role);
            must(ip(&["netns", "add", &ns]));
            self.created.push(ns);
        }
        for ns in self.created.clone() {
            must(ip(&["-n", &ns, "link", "set", "lo", "up"]));
        }
        must(ip(&[
            "-n",
            &lan,
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ]));
        must(ip(&["-n", &lan, "link", "set", BRIDGE, "up"]));
        for role in Role::ALL {
            let ns = self.ns(role);
            let peer = Self::lan_ifname(role);
            let queues = if role == Role::Relay {
                self.relay_queues
            } else {
                1
            }
            .to_string();
            let q = ["numtxqueues", &queues, "numrxqueues", &queues];
            let mut add = vec!["-n", &lan, "link", "add", &peer];
            add.extend(q);
            add.extend(["type", "veth", "peer", "name", PARTY_IF]);
            add.extend(q);
            add.extend(["netns", &ns]);
            must(ip(&add));
            // Before either end is up, and before any traffic: see the module doc.
            must(exec_in(&ns, "ethtool", &["-K", PARTY_IF, "tx", "off"]));
            if role == Role::Relay {
                self.attach_xdp(&lan, &peer, xdp_pass)
                    .unwrap_or_else(|e| panic!("building the topology: {e}"));
            }
            must(ip(&["-n", &lan, "link", "set", &peer, "master", BRIDGE]));
            must(ip(&["-n", &lan, "link", "set", &peer, "up"]));
            let v4 = format!("{}/24", self.v4(role));
            let v6 = format!("{}/64", self.v6(role));
            must(ip(&["-n", &ns, "addr", "add", &v4, "dev", PARTY_IF]));
            must(ip(&[
                "-n", &ns, "addr", "add", &v6, "dev", PARTY_IF, "nodad",
            ]));
            must(ip(&["-n", &ns, "link", "set", PARTY_IF, "up"]));
        }
    }

    /// The namespace holding the bridge.
    pub fn lan(&self) -> String {
        format!("{}-lan", self.id)
    }

    /// The namespace of `role`.
    pub fn ns(&self, role: Role) -> String {
        format!("{}-{}", self.id, role.name())
    }

    /// The bridge-side name of `role`'s veth (in the `lan` namespace).
    pub fn lan_ifname(role: Role) -> String {
        format!("l-{}", role.name())
    }

    pub fn v4(&self, role: Role) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 0, role.host())
    }

    pub fn v6(&self, role: Role) -> Ipv6Addr {
        Ipv6Addr::new(
            0xfd00 | u16::from(self.net),
            0,
            0,
            0,
            0,
            0,
            0,
            role.host().into(),
        )
    }

    pub fn addr(&self, role: Role, family: Family) -> IpAddr {
        match family {
            Family::V4 => self.v4(role).into(),
            Family::V6 => self.v6(role).into(),
        }
    }

    /// A UDP socket bound to `addr` inside namespace `ns` (it stays there whichever thread uses it).
    pub fn udp_socket(&self, ns: &str, addr: SocketAddr) -> UdpSocket {
        in_ns(ns, move || UdpSocket::bind(addr))
            .and_then(|r| r)
            .unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"))
    }

    /// A media endpoint of `role` on its own address and `port`.
    pub fn media(&self, role: Role, family: Family, port: u16) -> MediaEndpoint {
        let addr = SocketAddr::new(self.addr(role, family), port);
        let ns = self.ns(role);
        in_ns(&ns, move || MediaEndpoint::bind(addr))
            .and_then(|r| r)
            .unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"))
    }

    /// Starts `program args` inside `ns` (through `ip netns exec`, which execs it, so the guard's PID is
    /// the program's), logging to a scratch file named after `name`.
    pub fn spawn_in(&self, ns: &str, name: &str, program: &Path, args: &[String]) -> Proc {
        let log = scratch_dir(name).join(format!("{name}.log"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program).args(args);
        Proc::spawn(name, &mut cmd, &log).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Attaches the XDP program (section `xdp`) in object `obj` to `ifname` in `ns`.
    pub fn attach_xdp(&self, ns: &str, ifname: &str, obj: &Path) -> Result<(), String> {
        let obj = obj.to_string_lossy();
        ip(&[
            "-n", ns, "link", "set", "dev", ifname, "xdp", "obj", &obj, "sec", "xdp",
        ])
        .map(|_| ())
    }

    /// How an XDP program is attached to `ifname` in `ns`, as `ip link` says: `xdp` (native),
    /// `xdpgeneric`, `xdpoffload` or `xdpmulti`; `None` without one.
    pub fn xdp_attached(&self, ns: &str, ifname: &str) -> Option<String> {
        let text = self.link_show(ns, ifname);
        let first = text.lines().next().unwrap_or("");
        first
            .split_whitespace()
            .find(|w| w.starts_with("xdp"))
            .map(str::to_owned)
    }

    /// `ip link show dev IFNAME` in `ns` (with the attached XDP program's id and name).
    pub fn link_show(&self, ns: &str, ifname: &str) -> String {
        let out = must(ip(&["-n", ns, "link", "show", "dev", ifname]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A second link of the relay, to a party on no LAN: `veth1` in the relay namespace
    /// (10.x.1.1/24) to `veth0` in a new `far` namespace (10.x.1.3/24), whose default route
    /// is the relay. The far party reaches the relay's LAN address through that link, so its
    /// packets arrive on the relay's second device. Call before starting the relay (it attaches
    /// to the devices of its `--interface` addresses at start). Returns the far namespace.
    pub fn add_far_party(&mut self) -> String {
        let (relay, far) = (self.ns(Role::Relay), format!("{}-far", self.id));
        must(ip(&["netns", "add", &far]));
        self.created.push(far.clone());
        must(ip(&["-n", &far, "link", "set", "lo", "up"]));
        must(ip(&[
            "-n", &relay, "link", "add", "veth1", "type", "veth", "peer", "name", PARTY_IF,
            "netns", &far,
        ]));
        for (ns, dev) in [(&relay, "veth1"), (&far, PARTY_IF)] {
            must(exec_in(ns, "ethtool", &["-K", dev, "tx", "off"]));
        }
        let xdp_pass = xdp_pass_object().unwrap_or_else(|e| panic!("{e}"));
        self.attach_xdp(&far, PARTY_IF, &xdp_pass)
            .unwrap_or_else(|e| panic!("building the far link: {e}"));
        let (r, f) = (self.far_v4(Role::Relay), self.far_v4(Role::Callee));
        must(ip(&[
            "-n",
            &relay,
            "addr",
            "add",
            &format!("{r}/24"),
            "dev",
            "veth1",
        ]));
        must(ip(&[
            "-n",
            &far,
            "addr",
            "add",
            &format!("{f}/24"),
            "dev",
            PARTY_IF,
        ]));
        must(ip(&["-n", &relay, "link", "set", "veth1", "up"]));
        must(ip(&["-n", &far, "link", "set", PARTY_IF, "up"]));
        must(ip(&[
            "-n",
            &far,
            "route",
            "add",
            "default",
            "via",
            &r.to_string(),
        ]));
        far
    }

    /// `role`'s address on the far link of [`Topology::add_far_party`] (relay or callee).
    pub fn far_v4(&self, role: Role) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 1, role.host())
    }

    /// Runs `program args` inside `ns` to completion; its output, or why it failed.
    pub fn run_in(&self, ns: &str, program: &str, args: &[&str]) -> Result<Output, String> {
        exec_in(ns, program, args)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Parties first, the bridge's namespace (holding the peers) last.
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("warning: deleting namespace {ns}: {e}");
            }
        }
    }
}

pub use rtprelay::testkit::netns::in_ns;
use rtprelay::testkit::netns::{run, try_ip as ip};

/// `ip netns exec NS PROGRAM ARGS`.
fn exec_in(ns: &str, program: &str, args: &[&str]) -> Result<Output, String> {
    run(Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args))
}

fn must(r: Result<Output, String>) -> Output {
    r.unwrap_or_else(|e| panic!("building the topology: {e}"))
}

/// Deletes namespaces of this harness left by test processes that no longer run (killed mid-test).
fn sweep_stale() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| rtprelay::testkit::netns::sweep_stale(PREFIX));
}

/// `xdp_pass.bpf.c` compiled once per test process.
fn xdp_pass_object() -> Result<PathBuf, String> {
    static OBJ: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    OBJ.get_or_init(|| bpf_object("xdp_pass")).clone()
}

/// `tests/common/<name>.bpf.c` compiled with clang into a fresh scratch directory.
pub fn bpf_object(name: &str) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/common/{name}.bpf.c"));
    let obj = scratch_dir(name).join(format!("{name}.o"));
    run(Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj))
    .map(|_| obj)
    .map_err(|e| format!("cannot build the BPF program {name}: {e}"))
}
