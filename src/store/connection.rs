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

use std::time::{Duration, Instant};

use redis::cluster::{ClusterClientBuilder, ClusterConnection};
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

fn tcp(addr: std::net::SocketAddr) -> ConnectionAddr {
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

fn cluster(cfg: &RedisConfig, endpoint: &RedisEndpoint) -> RedisResult<ClusterConnection> {
    let seed = node_info(endpoint, tcp(endpoint.addr))?;
    let mut builder = ClusterClientBuilder::new(vec![seed])
        .connection_timeout(cfg.connect_timeout)
        .retries(CLUSTER_RETRIES)
        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS);
    if let Some(t) = cfg.cmd_timeout {
        builder = builder.response_timeout(t);
    }
    builder.build()?.get_connection()
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
