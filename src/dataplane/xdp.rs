//! Starting the kernel fast path: find the NICs behind `--interface`, load and attach the XDP
//! program, and describe the outcome in one log line.

use std::net::IpAddr;

use crate::sys::ifaddrs::HostAddress;
use crate::sys::xdp::{AttachMode, XdpError, XdpProgram};

/// Why the XDP plane is not running.
#[derive(Debug, thiserror::Error)]
pub enum XdpStartError {
    #[error("no network device holds interface address {0}")]
    NoDevice(IpAddr),
    #[error("cannot find device {name}: {source}")]
    Device {
        name: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Program(#[from] XdpError),
}

/// The devices that carry `locals`, each once, in order: the program must see packets where
/// they arrive, which is the NIC holding the address the relay's sockets are bound to.
pub fn devices_for(locals: &[IpAddr], host: &[HostAddress]) -> Result<Vec<String>, XdpStartError> {
    let mut out: Vec<String> = Vec::new();
    for ip in locals {
        let dev = host
            .iter()
            .find(|h| h.addr == *ip)
            .map(|h| h.device.clone())
            .ok_or(XdpStartError::NoDevice(*ip))?;
        if !out.contains(&dev) {
            out.push(dev);
        }
    }
    Ok(out)
}

/// Load the program and attach it to `devices`.
pub fn start(devices: &[String]) -> Result<XdpProgram, XdpStartError> {
    if !crate::sys::xdp::built() {
        return Err(XdpError::NotBuilt.into());
    }
    let mut indexes = Vec::with_capacity(devices.len());
    for name in devices {
        let idx = crate::sys::xdp::ifindex(name).map_err(|source| XdpStartError::Device {
            name: name.clone(),
            source,
        })?;
        indexes.push(idx);
    }
    Ok(XdpProgram::load_and_attach(&indexes)?)
}

/// "native on eth0, generic on eth1".
pub fn describe(p: &XdpProgram) -> String {
    p.attachments()
        .iter()
        .map(|a| {
            let mode = match a.mode {
                AttachMode::Native => "native",
                AttachMode::Generic => "generic",
            };
            format!("{mode} on {}", a.ifname)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(device: &str, addr: &str) -> HostAddress {
        HostAddress {
            device: device.into(),
            addr: addr.parse().expect("addr"),
            up: true,
            loopback: false,
            scoped: false,
        }
    }

    #[test]
    fn devices_follow_addresses_once_each() {
        let h = [
            host("eth0", "192.0.2.1"),
            host("eth0", "2001:db8::1"),
            host("eth1", "198.51.100.1"),
        ];
        let ips: Vec<IpAddr> = ["2001:db8::1", "198.51.100.1", "192.0.2.1"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(
            devices_for(&ips, &h).expect("devices"),
            vec!["eth0", "eth1"]
        );
    }

    #[test]
    fn unknown_address_names_it() {
        let e = devices_for(
            &["203.0.113.7".parse().expect("ip")],
            &[host("eth0", "192.0.2.1")],
        )
        .expect_err("no device");
        assert!(e.to_string().contains("203.0.113.7"), "{e}");
    }
}
