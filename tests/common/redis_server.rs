//! A `redis-server` child for the call-store tests: on a free loopback port, without
//! persistence, stopped by PID on drop; and the node name the relay writes its keys under.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use super::call::{wait_until, LO};
use super::process::Proc;
use super::{require_or_skip, scratch_dir};

const WAIT: Duration = Duration::from_secs(5);

pub struct RedisServer {
    pub proc: Proc,
    pub port: u16,
}

impl RedisServer {
    /// A server on a free port; `None` (a skip, or a failure in CI) without `redis-server`.
    pub fn start() -> Option<RedisServer> {
        if !require_or_skip("redis-server") {
            return None;
        }
        let port = TcpListener::bind((LO, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free TCP port");
        Some(RedisServer::on(port))
    }

    /// A server on `port` (again, after one was stopped there).
    pub fn on(port: u16) -> RedisServer {
        let dir = scratch_dir("redis");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(&dir);
        let proc = Proc::spawn("redis-server", &mut cmd, &dir.join("redis.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let server = RedisServer { proc, port };
        assert!(
            wait_until(WAIT, || server.connection().is_some()),
            "redis-server did not come up: {}",
            server.proc.log_tail(20)
        );
        server
    }

    /// The relay's `--redis` value.
    pub fn url(&self) -> String {
        format!("127.0.0.1:{}/0", self.port)
    }

    pub fn connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port)).ok()?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        redis::cmd("PING").query::<String>(&mut con).ok()?;
        Some(con)
    }
}

/// The node name the relay uses in its keys: the host name.
pub fn node() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
