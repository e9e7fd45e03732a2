//! The host's interface addresses, from `getifaddrs(3)`: for `interface = auto|any|DEVICE`, and
//! for the media target checks (the host's own and broadcast addresses).

use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address the host has, as `getifaddrs` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    /// Device name, e.g. `eth0`.
    pub device: String,
    pub addr: IpAddr,
    /// The device is up (`IFF_UP`).
    pub up: bool,
    /// The device is a loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// IPv6 with a non-zero scope id (link-local): never usable for media.
    pub scoped: bool,
}

/// Calls `f` with every entry of the `getifaddrs` list, then frees the list.
fn each_entry(mut f: impl FnMut(&libc::ifaddrs)) -> io::Result<()> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        f(ifa);
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(())
}

/// Every IPv4/IPv6 address of every device, in the order the kernel lists them.
pub fn host_addresses() -> io::Result<Vec<HostAddress>> {
    let mut out = Vec::new();
    each_entry(|ifa| {
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            return;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let device = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let flags = ifa.ifa_flags;
        let up = flags & libc::IFF_UP as u32 != 0;
        let loopback = flags & libc::IFF_LOOPBACK as u32 != 0;
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose family field is readable.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let (addr, scoped) = match family {
            libc::AF_INET => {
                // SAFETY: the family says this sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                (
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                    false,
                )
            }
            libc::AF_INET6 => {
                // SAFETY: the family says this sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                (
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                    sin6.sin6_scope_id != 0,
                )
            }
            _ => return,
        };
        out.push(HostAddress {
            device,
            addr,
            up,
            loopback,
            scoped,
        });
    })?;
    Ok(out)
}

/// The IPv4 broadcast addresses of the host's subnets (`ifa_broadaddr` of devices with
/// `IFF_BROADCAST`): media must never go there.
pub fn broadcast_addresses() -> io::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    each_entry(|ifa| {
        if ifa.ifa_flags & libc::IFF_BROADCAST as u32 == 0 || ifa.ifa_ifu.is_null() {
            return;
        }
        // SAFETY: with IFF_BROADCAST, ifa_ifu is the broadcast sockaddr, non-null (checked), and
        // its family field is readable.
        if i32::from(unsafe { (*ifa.ifa_ifu).sa_family }) != libc::AF_INET {
            return;
        }
        // SAFETY: the family says this sockaddr is a sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_ifu as *const libc::sockaddr_in) };
        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
            sin.sin_addr.s_addr,
        ))));
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn broadcast_addresses_are_ipv4_and_never_the_loopback() {
        let all = super::broadcast_addresses().unwrap();
        assert!(
            all.iter().all(|a| a.is_ipv4() && !a.is_loopback()),
            "{all:?}"
        );
    }

    #[test]
    fn lists_the_loopback_address() {
        let all = super::host_addresses().unwrap();
        assert!(all
            .iter()
            .any(|a| a.loopback && a.addr == std::net::Ipv4Addr::LOCALHOST));
    }
}
