//! Opening the call store's Redis connection, whatever stands behind it: one server
//! (`--redis`), the master that Redis Sentinel names (`--redis-sentinel`), or a Redis Cluster
//! (`--redis-cluster`). Every mode gives a [`StoreConnection`], used as any redis-rs connection
//! (`redis::cmd(..).query(&mut conn)`, pipelines); the connect timeout bounds every connect and
//! the command timeout every reply.
//!
//! Following a failover is the caller's part: after an error it drops the connection and opens a
//! new one, which asks the Sentinels again (or, in a cluster, reads the slots again). A master
//! that a Sentinel failover left behind may take a while to notice it: a Sentinel connection
//! asks the Sentinels every second whether they still name it, and errors when they do not.
//!
//! Sentinel discovery is done here rather than with redis-rs's `sentinel` feature: at 1.2.2 its
//! blocking client connects to the Sentinels and checks the master's role with no timeout at all,
//! so one unreachable Sentinel could hold the writer thread for minutes.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, ConnectionLike, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisResult, Value,
};

use crate::config::{RedisConfig, RedisEndpoint, SentinelAddr};

/// Tries of one cluster request after MOVED, ASK or a lost node, and the longest wait between
/// them (ms): small, since the writer has its own pause and retries with the next flush.
const CLUSTER_RETRIES: u32 = 2;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 200;

/// A connection to the call store's Redis.
pub enum StoreConnection {
    /// One server: `--redis`.
    Single(redis::Connection),
    /// The master the Sentinels name (`--redis-sentinel`).
    Sentinel(SentinelConnection),
    /// A Redis Cluster. Pipelines are sent whole to the node of their first key's slot, so a
    /// pipeline must stay within one slot; the store's keys carry the node's hash tag, so all
    /// of a node's do.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for StoreConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreConnection::Single(_) => "StoreConnection::Single",
            StoreConnection::Sentinel(_) => "StoreConnection::Sentinel",
            StoreConnection::Cluster(_) => "StoreConnection::Cluster",
        })
    }
}

impl StoreConnection {
    /// Replaces the command timeout (`None`: wait as long as the socket does), e.g. for a
    /// blocking read.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> RedisResult<()> {
        match self {
            StoreConnection::Single(c) => c.set_read_timeout(dur),
            StoreConnection::Sentinel(c) => c.conn.set_read_timeout(dur),
            StoreConnection::Cluster(c) => c.set_read_timeout(dur),
        }
    }

    fn set_timeouts(&self, dur: Option<Duration>) -> RedisResult<()> {
        match self {
            StoreConnection::Single(c)
            | StoreConnection::Sentinel(SentinelConnection { conn: c, .. }) => {
                c.set_read_timeout(dur)?;
                c.set_write_timeout(dur)
            }
            StoreConnection::Cluster(c) => {
                c.set_read_timeout(dur)?;
                c.set_write_timeout(dur)
            }
        }
    }
}

impl ConnectionLike for StoreConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            StoreConnection::Single(c) => c.req_packed_command(cmd),
            StoreConnection::Sentinel(c) => {
                c.check()?;
                c.conn.req_packed_command(cmd)
            }
            StoreConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            StoreConnection::Single(c) => c.req_packed_commands(cmd, offset, count),
            StoreConnection::Sentinel(c) => {
                c.check()?;
                c.conn.req_packed_commands(cmd, offset, count)
            }
            StoreConnection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            StoreConnection::Single(c) => c.req_command(cmd),
            StoreConnection::Sentinel(c) => {
                c.check()?;
                c.conn.req_command(cmd)
            }
            // Loaded on every master that answers (the same SHA everywhere): redis-rs's default
            // for SCRIPT LOAD fails when one master is down, even one not holding our slot.
            StoreConnection::Cluster(c) if is_script_load(cmd) => c.route_command(
                cmd,
                RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::OneSucceeded),
                )),
            ),
            StoreConnection::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            StoreConnection::Single(c) => c.get_db(),
            StoreConnection::Sentinel(c) => c.conn.get_db(),
            StoreConnection::Cluster(c) => c.get_db(),
        }
    }

    /// Always: redis-rs's cluster connection says no because a pipeline could span slots, but
    /// it sends one whole to its first key's node, which is right for the store's pipelines (see
    /// [`StoreConnection::Cluster`]).
    fn supports_pipelining(&self) -> bool {
        true
    }

    fn check_connection(&mut self) -> bool {
        match self {
            StoreConnection::Single(c) => c.check_connection(),
            StoreConnection::Sentinel(c) => c.conn.check_connection(),
            StoreConnection::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            StoreConnection::Single(c) => c.is_open(),
            StoreConnection::Sentinel(c) => c.conn.is_open(),
            StoreConnection::Cluster(c) => c.is_open(),
        }
    }
}

/// Whether `cmd` is `SCRIPT LOAD ...`.
fn is_script_load(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(b) => b,
        _ => b"",
    });
    matches!(
        (args.next(), args.next()),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b"SCRIPT") && b.eq_ignore_ascii_case(b"LOAD")
    )
}

/// Opens a connection to `endpoint` (one of `cfg`'s), in the mode `cfg` says, with its timeouts.
pub fn open(cfg: &RedisConfig, endpoint: &RedisEndpoint) -> RedisResult<StoreConnection> {
    let conn = if cfg.cluster {
        StoreConnection::Cluster(cluster(cfg, endpoint)?)
    } else if let Some(service) = cfg.sentinel_service.as_deref() {
        StoreConnection::Sentinel(SentinelConnection::open(cfg, endpoint, service)?)
    } else {
        let info = node_info(endpoint, tcp(endpoint.addr))?;
        StoreConnection::Single(single(&info, cfg.connect_timeout)?)
    };
    conn.set_timeouts(cfg.cmd_timeout)?;
    Ok(conn)
}

fn tcp(addr: SocketAddr) -> ConnectionAddr {
    ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
}

/// Where to connect, with `endpoint`'s password and DB.
fn node_info(endpoint: &RedisEndpoint, addr: ConnectionAddr) -> RedisResult<ConnectionInfo> {
    let mut redis = RedisConnectionInfo::default().set_db(i64::from(endpoint.db));
    if let Some(pw) = &endpoint.password {
        redis = redis.set_password(pw);
    }
    connection_info(addr, redis)
}

fn connection_info(
    addr: ConnectionAddr,
    redis: RedisConnectionInfo,
) -> RedisResult<ConnectionInfo> {
    Ok(addr.into_connection_info()?.set_redis_settings(redis))
}

fn single(info: &ConnectionInfo, connect_timeout: Duration) -> RedisResult<redis::Connection> {
    redis::Client::open(info.clone())?.get_connection_with_timeout(connect_timeout)
}

/// The nodes each `--redis-cluster` seed led to, as `CLUSTER SLOTS` listed them: a reconnect
/// tries them after the seed, so that losing the seed node does not cut the relay off its cluster.
static CLUSTER_NODES: Mutex<Vec<(SocketAddr, Vec<HostPort>)>> = Mutex::new(Vec::new());

/// A node's host (as Redis gives it) and port.
type HostPort = (String, u16);

fn cluster(cfg: &RedisConfig, endpoint: &RedisEndpoint) -> RedisResult<ClusterConnection> {
    let mut seeds = vec![node_info(endpoint, tcp(endpoint.addr))?];
    let seed = (endpoint.addr.ip().to_string(), endpoint.addr.port());
    for (host, port) in known_nodes(endpoint.addr)
        .into_iter()
        .filter(|n| *n != seed)
    {
        seeds.push(node_info(endpoint, ConnectionAddr::Tcp(host, port))?);
    }
    let mut builder = ClusterClientBuilder::new(seeds)
        .connection_timeout(cfg.connect_timeout)
        .retries(CLUSTER_RETRIES)
        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS);
    if let Some(t) = cfg.cmd_timeout {
        builder = builder.response_timeout(t);
    }
    let mut conn = builder.build()?.get_connection()?;
    match redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(&mut conn) {
        Ok(slots) => remember_nodes(endpoint.addr, slot_nodes(&slots)),
        Err(e) => tracing::debug!(error = %e, "CLUSTER SLOTS failed: the known nodes stay"),
    }
    Ok(conn)
}

fn known_nodes(seed: SocketAddr) -> Vec<HostPort> {
    let known = CLUSTER_NODES.lock().unwrap_or_else(|p| p.into_inner());
    known
        .iter()
        .find(|(s, _)| *s == seed)
        .map(|(_, nodes)| nodes.clone())
        .unwrap_or_default()
}

fn remember_nodes(seed: SocketAddr, nodes: Vec<HostPort>) {
    if nodes.is_empty() {
        return;
    }
    let mut known = CLUSTER_NODES.lock().unwrap_or_else(|p| p.into_inner());
    match known.iter_mut().find(|(s, _)| *s == seed) {
        Some((_, old)) => *old = nodes,
        None => known.push((seed, nodes)),
    }
}

/// Every node (masters and replicas) of a `CLUSTER SLOTS` reply: `[[first, last, [host, port,
/// id, ...], [host, port, id, ...]...]...]`, each once, in the order met; hosts a node does not
/// know (empty, `?`) are left out.
fn slot_nodes(reply: &Value) -> Vec<HostPort> {
    let mut out: Vec<HostPort> = Vec::new();
    let Value::Array(ranges) = reply else {
        return out;
    };
    for range in ranges {
        let Value::Array(range) = range else { continue };
        for node in range.iter().skip(2) {
            let Value::Array(node) = node else { continue };
            let host = match node.first() {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Value::SimpleString(s)) => s.clone(),
                _ => continue,
            };
            let port = match node.get(1) {
                Some(Value::Int(p)) => u16::try_from(*p).ok().filter(|&p| p != 0),
                _ => None,
            };
            if let Some(port) = port.filter(|_| !host.is_empty() && host != "?") {
                if !out.iter().any(|(h, p)| *h == host && *p == port) {
                    out.push((host, port));
                }
            }
        }
    }
    out
}

/// The Sentinels of `--redis-sentinel`, asked in order for the master of the service; the one
/// that answered last is asked first next time, on the connection it answered on.
struct Sentinels {
    list: Vec<SentinelAddr>,
    service: String,
    connect_timeout: Duration,
    /// How long a Sentinel's reply may take: `--redis-cmd-timeout`, else the connect timeout
    /// (a Sentinel answers from memory).
    wait: Duration,
    /// The Sentinel that answered last, and the connection to it.
    last: Option<(usize, redis::Connection)>,
}

impl Sentinels {
    /// The master's host and port, from the first Sentinel that knows the service.
    fn master(&mut self) -> RedisResult<(String, u16)> {
        let mut last_err = None;
        let first = self.last.as_ref().map_or(0, |(i, _)| *i);
        for k in 0..self.list.len() {
            let i = (first + k) % self.list.len();
            let mut conn = match self.last.take() {
                Some((j, conn)) if j == i => conn,
                _ => match self.connect(i) {
                    Ok(conn) => conn,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                },
            };
            match ask(&mut conn, &self.service) {
                Ok(Some(master)) => {
                    self.last = Some((i, conn));
                    return Ok(master);
                }
                Ok(None) => {
                    last_err = Some(RedisError::from((
                        ErrorKind::MasterNameNotFoundBySentinel,
                        "the Sentinel knows no master of that name",
                        format!("{} at {}", self.service, self.list[i].addr),
                    )))
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| RedisError::from((ErrorKind::EmptySentinelList, "no Sentinel"))))
    }

    fn connect(&self, i: usize) -> RedisResult<redis::Connection> {
        let sentinel = &self.list[i];
        let mut redis = RedisConnectionInfo::default();
        if let Some(pw) = &sentinel.password {
            redis = redis.set_password(pw);
        }
        let info = connection_info(tcp(sentinel.addr), redis)?;
        let conn = single(&info, self.connect_timeout)?;
        conn.set_read_timeout(Some(self.wait))?;
        conn.set_write_timeout(Some(self.wait))?;
        Ok(conn)
    }
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME service`: the master's host and port, or `None` when the
/// Sentinel does not know the service.
fn ask(conn: &mut redis::Connection, service: &str) -> RedisResult<Option<(String, u16)>> {
    let reply: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(service)
        .query(conn)?;
    match reply {
        None => Ok(None),
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) if port != 0 => Ok(Some((host, port))),
            _ => Err(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "the Sentinel named a master with a bad port",
                port,
            ))),
        },
    }
}

/// How often a connection to a Sentinel-named master asks whether the Sentinels still name it.
/// A Sentinel demotes the old master only when it next sees it (up to 10 s after a failover it
/// ordered), and writes there meanwhile would be lost: asking bounds that window.
pub const SENTINEL_CHECK: Duration = Duration::from_secs(1);

/// A connection to the master the Sentinels name, which checks (at most every
/// [`SENTINEL_CHECK`], before a request) that they still name it, and fails the request when
/// they have moved on, so that the caller reconnects to the new master.
pub struct SentinelConnection {
    conn: redis::Connection,
    master: (String, u16),
    sentinels: Sentinels,
    next_check: Instant,
}

impl SentinelConnection {
    fn open(
        cfg: &RedisConfig,
        endpoint: &RedisEndpoint,
        service: &str,
    ) -> RedisResult<SentinelConnection> {
        let mut sentinels = Sentinels {
            list: cfg.sentinels.clone(),
            service: service.to_string(),
            connect_timeout: cfg.connect_timeout,
            wait: cfg.cmd_timeout.unwrap_or(cfg.connect_timeout),
            last: None,
        };
        let master = sentinels.master()?;
        let info = node_info(endpoint, ConnectionAddr::Tcp(master.0.clone(), master.1))?;
        let mut conn = single(&info, cfg.connect_timeout)?;
        conn.set_read_timeout(Some(sentinels.wait))?;
        conn.set_write_timeout(Some(sentinels.wait))?;
        // A Sentinel may not know yet of a failover.
        let role: Vec<Value> = redis::cmd("ROLE").query(&mut conn)?;
        if !is_master(&role) {
            return Err(RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "the server the Sentinel names is not a master",
                format!("{service} at {}:{}", master.0, master.1),
            )));
        }
        tracing::info!(service, master = %format!("{}:{}", master.0, master.1), "Redis master from Sentinel");
        Ok(SentinelConnection {
            conn,
            master,
            sentinels,
            next_check: Instant::now() + SENTINEL_CHECK,
        })
    }

    /// Fails when the Sentinels now name another master; a Sentinel that cannot be reached
    /// says nothing (the master may well be fine).
    fn check(&mut self) -> RedisResult<()> {
        let now = Instant::now();
        if now < self.next_check {
            return Ok(());
        }
        self.next_check = now + SENTINEL_CHECK;
        match self.sentinels.master() {
            Ok(master) if master != self.master => Err(RedisError::from((
                ErrorKind::Io,
                "the Sentinels name a new Redis master",
                format!(
                    "{}:{} instead of {}:{}",
                    master.0, master.1, self.master.0, self.master.1
                ),
            ))),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "no Sentinel answered; the Redis master is kept");
                Ok(())
            }
        }
    }
}

/// Whether a `ROLE` reply is a master's (`["master", offset, replicas]`).
fn is_master(role: &[Value]) -> bool {
    match role.first() {
        Some(Value::BulkString(b)) => b.as_slice() == b"master",
        Some(Value::SimpleString(s)) => s == "master",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_info_carries_the_password_and_db() {
        let e = RedisEndpoint {
            password: Some("p@ss word".into()),
            addr: "127.0.0.1:6379".parse().expect("addr"),
            db: 3,
        };
        let info = node_info(&e, tcp(e.addr)).expect("info");
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("127.0.0.1".into(), 6379));
        assert_eq!(info.redis_settings().password(), Some("p@ss word"));
        assert_eq!(info.redis_settings().db(), 3);
        let e = RedisEndpoint {
            password: None,
            addr: "[::1]:6380".parse().expect("addr"),
            db: 0,
        };
        let info = node_info(&e, tcp(e.addr)).expect("info");
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("::1".into(), 6380));
        assert_eq!(info.redis_settings().password(), None);
    }

    #[test]
    fn cluster_slots_name_every_node_once() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 7001),
                node("10.0.0.1", 7000),
                node("", 7009),
                node("?", 7010),
                node("10.0.0.9", 0),
            ]),
            Value::Int(3),
        ]);
        assert_eq!(
            slot_nodes(&reply),
            [("10.0.0.1", 7000), ("10.0.0.4", 7003), ("10.0.0.2", 7001)]
                .map(|(h, p)| (h.to_string(), p))
        );
        assert!(slot_nodes(&Value::Nil).is_empty());
    }

    #[test]
    fn known_nodes_are_kept_per_seed() {
        let seed: SocketAddr = "192.0.2.1:7000".parse().expect("addr");
        let other: SocketAddr = "192.0.2.1:7001".parse().expect("addr");
        assert!(known_nodes(seed).is_empty());
        remember_nodes(seed, vec![("192.0.2.2".into(), 7002)]);
        remember_nodes(seed, vec![]);
        assert_eq!(known_nodes(seed), [("192.0.2.2".to_string(), 7002)]);
        assert!(known_nodes(other).is_empty());
    }

    #[test]
    fn script_load_is_recognised() {
        assert!(is_script_load(
            redis::cmd("SCRIPT").arg("LOAD").arg("return 1")
        ));
        assert!(is_script_load(redis::cmd("script").arg("load").arg("x")));
        assert!(!is_script_load(redis::cmd("SCRIPT").arg("FLUSH")));
        assert!(!is_script_load(redis::cmd("EVALSHA").arg("LOAD")));
        assert!(!is_script_load(&redis::cmd("SCRIPT")));
    }

    #[test]
    fn only_a_master_role_is_a_master() {
        let master = [
            Value::BulkString(b"master".to_vec()),
            Value::Int(0),
            Value::Array(vec![]),
        ];
        assert!(is_master(&master));
        let replica = [Value::BulkString(b"slave".to_vec()), Value::Nil];
        assert!(!is_master(&replica));
        assert!(!is_master(&[]));
        assert!(!is_master(&[Value::Int(1)]));
    }
}
