//! Builds the media target policy from the configuration and the host's addresses, and keeps
//! the host's addresses current (a DHCP lease or a new container network may add one).

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::guard::{PolicyInputs, RelayPorts, SharedPolicy, TargetPolicy};

/// How often the host's addresses are read again.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// The host's addresses and its subnets' broadcast addresses; empty (with a warning) when they
/// cannot be read.
fn host() -> (Vec<IpAddr>, Vec<IpAddr>) {
    let addrs = match crate::sys::ifaddrs::host_addresses() {
        Ok(a) => a.into_iter().map(|h| h.addr).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the host's addresses for the media target checks");
            Vec::new()
        }
    };
    let bcast = crate::sys::ifaddrs::broadcast_addresses().unwrap_or_default();
    (addrs, bcast)
}

/// The policy for this configuration; `ports` is the table the session layer publishes its
/// ports in.
pub fn policy(cfg: &Config) -> SharedPolicy {
    let ports = Arc::new(RelayPorts::new(cfg.interfaces.iter().map(|i| i.local)));
    let (host, broadcast) = host();
    let inputs = PolicyInputs {
        control: cfg
            .listen_ng
            .iter()
            .chain(&cfg.listen_tcp_ng)
            .chain(&cfg.listen_http)
            .copied()
            .collect(),
        locals: cfg.interfaces.iter().map(|i| i.local).collect(),
        advertised: cfg.interfaces.iter().filter_map(|i| i.advertised).collect(),
        port_min: cfg.port_min,
        port_max: cfg.port_max,
        host,
        broadcast,
        deny: cfg.media_target_deny.clone(),
        allow: cfg.media_target_allow.clone(),
    };
    crate::guard::share(TargetPolicy::new(&inputs, ports))
}

/// Reads the host's addresses again and swaps them into the shared policy.
pub fn refresh(policy: &SharedPolicy) {
    let (host, broadcast) = host();
    let next = policy.load().with_host(host, broadcast);
    policy.store(Arc::new(next));
}
