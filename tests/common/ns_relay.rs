//! Our relay running inside a topology's `relay` namespace (`ip netns exec`, optionally through a wrapper
//! such as `setpriv`), with its interfaces on the relay's veth addresses, NG on the namespace's 127.0.0.1
//! and `/metrics` over HTTP beside it. The test talks to both through sockets opened inside the namespace.
//! Stopped by PID on drop (declare it after its `Topology`, so it goes first).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::bencode::{dict, get_str, Value};
use super::netns::{in_ns, Role, Topology};
use super::ng::{expect_ok, NgClient};
use super::process::Proc;

/// The relay's NG port inside its namespace (the namespace is fresh, so fixed ports are free).
pub const NG_PORT: u16 = 2223;
/// Its HTTP port (`/metrics`).
pub const HTTP_PORT: u16 = 8080;
/// Its media port range.
pub const PORT_MIN: u16 = 30000;
pub const PORT_MAX: u16 = 30999;
/// How long the relay may take to answer its first ping.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

pub struct NsRelay {
    proc: Proc,
    ns: String,
    ng: NgClient,
}

/// The relay's options in `topo`: both its addresses as interfaces, NG and HTTP on loopback, then `extra`.
pub fn ns_relay_args(topo: &Topology, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--config-file=none".into(),
        "-i".into(),
        topo.v4(Role::Relay).to_string(),
        "-i".into(),
        topo.v6(Role::Relay).to_string(),
        "-f".into(),
        "-E".into(),
        "-L".into(),
        "7".into(),
        "--delete-delay=0".into(),
        "-n".into(),
        ng_addr().to_string(),
        "--listen-http".into(),
        http_addr().to_string(),
        "-m".into(),
        PORT_MIN.to_string(),
        "-M".into(),
        PORT_MAX.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

pub fn ng_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, NG_PORT))
}

pub fn http_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, HTTP_PORT))
}

fn relay_program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rtprelay"))
}

impl NsRelay {
    /// Starts the relay with `extra` options and waits for `pong`; panics with its log otherwise.
    pub fn start(topo: &Topology, extra: &[&str]) -> NsRelay {
        NsRelay::start_wrapped(topo, &[], extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `wrapper... rtprelay args` in the relay namespace and waits (bounded) for `pong`.
    pub fn start_wrapped(
        topo: &Topology,
        wrapper: &[&str],
        extra: &[&str],
    ) -> Result<NsRelay, String> {
        let mut proc = NsRelay::spawn(topo, wrapper, extra);
        let ns = topo.ns(Role::Relay);
        let mut ng = ns_client(&ns);
        ng.timeout = Duration::from_millis(200);
        ng.retries = 0;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = proc.try_wait() {
                return Err(format!(
                    "rtprelay exited before answering ping ({status}); log {}:\n{}",
                    proc.log_path().display(),
                    proc.log_tail(40)
                ));
            }
            if ng
                .ping()
                .is_ok_and(|r| get_str(&r, "result") == Some("pong"))
            {
                ng.timeout = Duration::from_secs(1);
                ng.retries = 2;
                return Ok(NsRelay { proc, ns, ng });
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "rtprelay did not answer ping within {READY_TIMEOUT:?}; log {}:\n{}",
                    proc.log_path().display(),
                    proc.log_tail(40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the relay without waiting for it (for start-up failures).
    pub fn spawn(topo: &Topology, wrapper: &[&str], extra: &[&str]) -> Proc {
        let args = ns_relay_args(topo, extra);
        let program = relay_program();
        match wrapper.split_first() {
            None => topo.spawn_in(&topo.ns(Role::Relay), "rtprelay", &program, &args),
            Some((first, rest)) => {
                let mut all: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
                all.push(program.to_string_lossy().into_owned());
                all.extend(args);
                topo.spawn_in(
                    &topo.ns(Role::Relay),
                    "rtprelay",
                    &PathBuf::from(first),
                    &all,
                )
            }
        }
    }

    /// The NG client (inside the relay namespace).
    pub fn ng(&self) -> &NgClient {
        &self.ng
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// Stops the relay (SIGTERM, then SIGKILL after `grace`); how it exited.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.proc.stop(grace)
    }

    /// Kills the relay with SIGKILL, as a crash would end it, and waits for it to be gone.
    pub fn crash(&mut self) {
        self.proc.signal("KILL");
        self.proc.wait_timeout(Duration::from_secs(5));
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.try_wait().is_none()
    }

    /// The `data plane chosen` log line.
    pub fn plane_line(&self) -> String {
        self.log_text()
            .lines()
            .find(|l| l.contains("data plane chosen"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no `data plane chosen` line:\n{}", self.log_tail(30)))
    }

    /// `statistics.dataplane` of the NG `statistics` reply.
    pub fn statistics_plane(&self) -> String {
        let r = expect_ok(
            self.ng.request(dict([("command", "statistics".into())])),
            "statistics",
        );
        match r.get(b"statistics".as_slice()) {
            Some(Value::Dict(s)) => get_str(s, "dataplane").unwrap_or("").to_owned(),
            other => panic!("no statistics dict: {other:?}"),
        }
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let (status, body) = in_ns(&self.ns, || http_get(http_addr(), "/metrics"))
            .and_then(|r| r)
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        assert_eq!(status, 200, "GET /metrics: {body}");
        body
    }

    /// The sum over all label sets of metric `name`; panics if the relay does not export it.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        metric_sum(&text, name).unwrap_or_else(|| panic!("no metric {name} in /metrics:\n{text}"))
    }
}

/// An NG client opened inside namespace `ns` for the relay there.
pub fn ns_client(ns: &str) -> NgClient {
    in_ns(ns, || NgClient::new(ng_addr()))
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("NG client in {ns}: {e}"))
}

/// A plain HTTP/1.1 GET; the status and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    s.set_read_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// The sum of every sample of metric `name` (`name value` or `name{labels} value`) in Prometheus text;
/// `None` if there is none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.split_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None // another metric whose name starts with `name`
        };
        if let Some(v) = value.and_then(|v| v.trim().parse::<f64>().ok()) {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}
