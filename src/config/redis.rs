//! The Redis options (`--redis`, `--redis-write`, `--redis-expires`...), with rtpengine's names and
//! units: where the call store writes, and how it behaves when Redis fails. rtpengine talks to one
//! Redis server; `--redis-sentinel` (with `--redis-sentinel-service`) and `--redis-cluster` are
//! rtprelay's own, for a Redis that survives the loss of a server.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::error::ConfigError;
use super::values;

/// `[PW@]IP:PORT/DB`, as rtpengine takes it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    pub password: Option<String>,
    pub addr: SocketAddr,
    pub db: u32,
}

impl fmt::Debug for RedisEndpoint {
    /// Never prints the password (the config is logged at startup).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEndpoint")
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("addr", &self.addr)
            .field("db", &self.db)
            .finish()
    }
}

impl RedisEndpoint {
    /// Parses `[PW@]IP:PORT/DB`; the password may itself hold `@` (the last one splits).
    pub(crate) fn parse(label: &str, raw: &str) -> Result<RedisEndpoint, ConfigError> {
        let expected = "expected [PASSWORD@]IP:PORT/DB";
        let raw = raw.trim();
        let (password, rest) = match raw.rsplit_once('@') {
            Some((pw, rest)) => (Some(pw.to_string()), rest),
            None => (None, raw),
        };
        let (addr, db) = rest
            .rsplit_once('/')
            .ok_or_else(|| ConfigError::value(label, raw, expected))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| ConfigError::value(label, raw, expected))?;
        let db: u32 = db
            .parse()
            .map_err(|_| ConfigError::value(label, raw, expected))?;
        if addr.port() == 0 {
            return Err(ConfigError::value(label, raw, expected));
        }
        Ok(RedisEndpoint { password, addr, db })
    }
}

/// Where and how calls are written to Redis. Off unless `--redis` or `--redis-write` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `--redis`: the database calls are read from (and written to without `--redis-write`).
    pub read: Option<RedisEndpoint>,
    /// `--redis-write`: a separate database for writes.
    pub write: Option<RedisEndpoint>,
    /// `--redis-expires`: a call key's TTL, refreshed on each write (rtpengine: 86400 s).
    pub expires: Duration,
    /// `--redis-allowed-errors`: consecutive errors before writes pause; `None` never pauses
    /// (rtpengine's -1).
    pub allowed_errors: Option<u32>,
    /// `--redis-disable-time`: how long writes pause after too many errors.
    pub disable_time: Duration,
    /// `--redis-cmd-timeout`: per-command timeout; `None` waits as long as the socket does.
    pub cmd_timeout: Option<Duration>,
    /// `--redis-connect-timeout`.
    pub connect_timeout: Duration,
    /// `--redis-node`: this relay's name in its keys' hash tag; `None` takes the host name.
    pub node: Option<String>,
    /// `--redis-follow`: the nodes this relay mirrors as a hot standby, to take their calls
    /// over.
    pub follow: Vec<String>,
    /// `--redis-sentinel`: Sentinels asked, in this order, for the master of
    /// `--redis-sentinel-service`; the address of `--redis`/`--redis-write` is then not used (their
    /// password and DB are).
    pub sentinels: Vec<SentinelAddr>,
    /// `--redis-sentinel-service`: the master's name in the Sentinels' configuration.
    pub sentinel_service: Option<String>,
    /// `--redis-cluster`: the `--redis`/`--redis-write` address is a Redis Cluster node, from which
    /// the client learns the others.
    pub cluster: bool,
}

/// One Sentinel of `--redis-sentinel`: `[PW@]IP:PORT`.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelAddr {
    pub password: Option<String>,
    pub addr: SocketAddr,
}

impl fmt::Debug for SentinelAddr {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelAddr")
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("addr", &self.addr)
            .finish()
    }
}

impl Default for RedisConfig {
    /// rtpengine's defaults.
    fn default() -> RedisConfig {
        RedisConfig {
            read: None,
            write: None,
            expires: Duration::from_secs(86400),
            allowed_errors: None,
            disable_time: Duration::from_secs(10),
            cmd_timeout: None,
            connect_timeout: Duration::from_millis(1000),
            node: None,
            follow: Vec::new(),
            sentinels: Vec::new(),
            sentinel_service: None,
            cluster: false,
        }
    }
}

impl RedisConfig {
    /// The database the call store writes to, if any.
    pub fn write_endpoint(&self) -> Option<&RedisEndpoint> {
        self.write.as_ref().or(self.read.as_ref())
    }

    /// What stands behind the endpoints, for the logs: `single`, `sentinel` or `cluster`.
    pub fn topology(&self) -> &'static str {
        if self.cluster {
            "cluster"
        } else if !self.sentinels.is_empty() {
            "sentinel"
        } else {
            "single"
        }
    }

    /// The checks that need several Redis options at once: a Sentinel list needs the service's
    /// name (and the other way round), Sentinel and Cluster exclude each other, and Redis Cluster
    /// has only DB 0.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match (self.sentinels.is_empty(), &self.sentinel_service) {
            (false, None) => {
                return Err(ConfigError::invalid(
                    "--redis-sentinel",
                    "needs --redis-sentinel-service=NAME (the master's name in the Sentinels)",
                ))
            }
            (true, Some(_)) => {
                return Err(ConfigError::invalid(
                    "--redis-sentinel-service",
                    "needs --redis-sentinel=IP:PORT[;IP:PORT...]",
                ))
            }
            _ => {}
        }
        if self.cluster && !self.sentinels.is_empty() {
            return Err(ConfigError::invalid(
                "--redis-cluster",
                "cannot be combined with --redis-sentinel (a Redis Cluster fails over by itself)",
            ));
        }
        if self.cluster {
            for (label, e) in [("--redis", &self.read), ("--redis-write", &self.write)] {
                if let Some(e) = e.as_ref().filter(|e| e.db != 0) {
                    return Err(ConfigError::invalid(
                        label,
                        format!(
                            "database {} with --redis-cluster: Redis Cluster has only database 0",
                            e.db
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `--redis-sentinel`: `[PW@]IP:PORT`, several separated by `;` or `,` (a password holding one of
/// those cannot be given here).
pub(crate) fn sentinels(label: &str, raw: &str) -> Result<Vec<SentinelAddr>, ConfigError> {
    let expected = "expected [PASSWORD@]IP:PORT[;[PASSWORD@]IP:PORT...]";
    let mut out = Vec::new();
    for item in raw
        .split([';', ','])
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let (password, addr) = match item.rsplit_once('@') {
            Some((pw, addr)) => (Some(pw.to_string()), addr),
            None => (None, item),
        };
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| ConfigError::value(label, item, expected))?;
        if addr.port() == 0 {
            return Err(ConfigError::value(label, item, expected));
        }
        out.push(SentinelAddr { password, addr });
    }
    if out.is_empty() {
        return Err(ConfigError::value(label, raw, expected));
    }
    Ok(out)
}

/// `--redis-sentinel-service`: a non-empty name without spaces.
pub(crate) fn sentinel_service(label: &str, raw: &str) -> Result<Option<String>, ConfigError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::value(
            label,
            raw,
            "expected the master's name, as in the Sentinels' configuration",
        ));
    }
    Ok(Some(name.to_string()))
}

/// A node name: it goes into every key's hash tag, so only letters, digits, `.`, `_` and `-`,
/// 1 to 64 of them.
pub(crate) fn node_name(label: &str, raw: &str) -> Result<String, ConfigError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ConfigError::value(
            label,
            raw,
            "expected 1 to 64 letters, digits, '.', '_' or '-'",
        ))
    }
}

/// `--redis-expires`: seconds, at least 1.
pub(crate) fn expires(label: &str, raw: &str) -> Result<Duration, ConfigError> {
    let v = values::int_in(label, raw, 1, i64::from(i32::MAX))?;
    Ok(Duration::from_secs(v.unsigned_abs()))
}

/// `--redis-allowed-errors`: -1 (or any negative) means never pause, as in rtpengine.
pub(crate) fn allowed_errors(label: &str, raw: &str) -> Result<Option<u32>, ConfigError> {
    let v = values::int(label, raw, "expected a number (-1 = no limit)")?;
    Ok(u32::try_from(v).ok())
}

/// `--redis-disable-time`: seconds, 0 or more.
pub(crate) fn disable_time(label: &str, raw: &str) -> Result<Duration, ConfigError> {
    let v = values::int_in(label, raw, 0, i64::from(i32::MAX))?;
    Ok(Duration::from_secs(v.unsigned_abs()))
}

/// `--redis-cmd-timeout`: milliseconds; 0 means none.
pub(crate) fn cmd_timeout(label: &str, raw: &str) -> Result<Option<Duration>, ConfigError> {
    let v = values::int_in(label, raw, 0, i64::from(i32::MAX))?;
    Ok((v > 0).then(|| Duration::from_millis(v.unsigned_abs())))
}

/// `--redis-connect-timeout`: milliseconds, at least 1.
pub(crate) fn connect_timeout(label: &str, raw: &str) -> Result<Duration, ConfigError> {
    let v = values::int_in(label, raw, 1, i64::from(i32::MAX))?;
    Ok(Duration::from_millis(v.unsigned_abs()))
}
