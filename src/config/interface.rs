//! A media interface: `[NAME/]IP[!ADVERTISED]` (parsing comes with the config change).

use std::net::IpAddr;

/// One `--interface` entry. Several entries may share a name (e.g. one IPv4 and one IPv6 address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Logical name used by `direction`/`from-interface`; `default` when none is given.
    pub name: String,
    /// The address sockets are bound to.
    pub local: IpAddr,
    /// The address written into SDP, when it differs from `local` (NAT, containers).
    pub advertised: Option<IpAddr>,
}

impl Interface {
    /// The address that goes into SDP.
    pub fn sdp_address(&self) -> IpAddr {
        self.advertised.unwrap_or(self.local)
    }
}
