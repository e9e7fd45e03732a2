//! A media interface: `[NAME/]ADDRESS[!ADVERTISED]`, as rtpengine's `--interface` takes it.
//!
//! ADDRESS is an IPv4 or IPv6 address (IPv6 bare or in brackets), `any` (every non-loopback
//! address of the host, as in rtpengine), `auto` (rtprelay: the host's first non-loopback IPv4
//! address), or a network device name such as `eth0`. The last three depend on the host, so
//! parsing keeps them as an [`InterfaceSpec`] and [`resolve`] turns them into [`Interface`]s from a
//! list of host addresses that the I/O layer reads.

use std::net::IpAddr;

use crate::sys::ifaddrs::HostAddress;

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

/// The name an interface gets when the spec has none.
pub const DEFAULT_NAME: &str = "default";

/// Where an interface's local address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceAddress {
    /// A literal address.
    Ip(IpAddr),
    /// `any`: every up, non-loopback address of the host (IPv6 link-local excluded).
    Any,
    /// `auto`: the first up, non-loopback IPv4 address of the host.
    Auto,
    /// A network device name: every up address of that device (IPv6 link-local excluded).
    Device(String),
}

/// One parsed `--interface` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    pub name: String,
    pub address: InterfaceAddress,
    pub advertised: Option<IpAddr>,
}

/// What parsing one `--interface` value gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedInterface {
    Spec(InterfaceSpec),
    /// `NAME=OTHER`: an alias of another interface name (accepted, not supported yet).
    Alias {
        name: String,
        target: String,
    },
}

/// Parses an IP address, IPv6 optionally in brackets.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let ip: IpAddr = inner.parse().ok()?;
    // Brackets only belong around IPv6.
    if inner.len() != s.len() && ip.is_ipv4() {
        return None;
    }
    Some(ip)
}

/// Linux device names: 1-15 bytes (`eth0`, `eth0.100` VLANs, `eth0:1` aliases).
fn is_device_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

/// Parses one `--interface` value. The error is a reason, to be prefixed with the option.
pub fn parse(value: &str) -> Result<ParsedInterface, String> {
    let s = value.trim();
    let (name, rest) = match s.find(['/', '=']) {
        Some(i) => {
            let (name, rest) = s.split_at(i);
            if name.is_empty() {
                return Err("empty interface name".into());
            }
            if let Some(target) = rest.strip_prefix('=') {
                return Ok(ParsedInterface::Alias {
                    name: name.to_string(),
                    target: target.trim().to_string(),
                });
            }
            (name.to_string(), rest.get(1..).unwrap_or_default())
        }
        None => (DEFAULT_NAME.to_string(), s),
    };
    let (addr, adv) = match rest.split_once('!') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let address = if let Some(ip) = parse_ip(addr) {
        if ip.is_unspecified() {
            return Err(format!(
                "'{addr}' is the unspecified address; use 'any' or a real address"
            ));
        }
        InterfaceAddress::Ip(ip)
    } else if addr == "any" {
        InterfaceAddress::Any
    } else if addr == "auto" {
        InterfaceAddress::Auto
    } else if is_device_name(addr) && !addr.chars().all(|c| c.is_ascii_digit() || c == '.') {
        InterfaceAddress::Device(addr.to_string())
    } else {
        return Err(format!(
            "'{addr}' is not an IP address, 'any', 'auto' or a network device name"
        ));
    };
    let advertised = match adv {
        None => None,
        Some(a) => match parse_ip(a) {
            Some(ip) if !ip.is_unspecified() => Some(ip),
            _ => {
                return Err(format!(
                    "advertised address '{a}' is not a usable IP address"
                ))
            }
        },
    };
    Ok(ParsedInterface::Spec(InterfaceSpec {
        name,
        address,
        advertised,
    }))
}

impl InterfaceSpec {
    /// The interface if it needs nothing from the host.
    pub fn literal(&self) -> Option<Interface> {
        match self.address {
            InterfaceAddress::Ip(ip) => Some(Interface {
                name: self.name.clone(),
                local: ip,
                advertised: self.advertised,
            }),
            _ => None,
        }
    }

    fn with_local(&self, local: IpAddr) -> Interface {
        Interface {
            name: self.name.clone(),
            local,
            advertised: self.advertised,
        }
    }
}

/// Turns specs into interfaces, in order, using the host's addresses for `any`, `auto` and device
/// names. The error names the spec that matched nothing.
pub fn resolve(specs: &[InterfaceSpec], host: &[HostAddress]) -> Result<Vec<Interface>, String> {
    let usable = |h: &&HostAddress| h.up && !h.scoped && !h.addr.is_unspecified();
    let mut out = Vec::new();
    for spec in specs {
        let before = out.len();
        match &spec.address {
            InterfaceAddress::Ip(ip) => out.push(spec.with_local(*ip)),
            InterfaceAddress::Any => out.extend(
                host.iter()
                    .filter(usable)
                    .filter(|h| !h.loopback)
                    .map(|h| spec.with_local(h.addr)),
            ),
            InterfaceAddress::Auto => out.extend(
                host.iter()
                    .filter(usable)
                    .find(|h| !h.loopback && h.addr.is_ipv4())
                    .map(|h| spec.with_local(h.addr)),
            ),
            InterfaceAddress::Device(dev) => out.extend(
                host.iter()
                    .filter(usable)
                    .filter(|h| &h.device == dev)
                    .map(|h| spec.with_local(h.addr)),
            ),
        }
        if out.len() == before {
            let what = match &spec.address {
                InterfaceAddress::Ip(_) => String::new(),
                InterfaceAddress::Any => {
                    "'any': the host has no usable non-loopback address".into()
                }
                InterfaceAddress::Auto => {
                    "'auto': the host has no usable non-loopback IPv4 address".into()
                }
                InterfaceAddress::Device(d) => format!(
                    "'{d}' is neither an IP address nor an up network device with an address \
                     (host names are not resolved)"
                ),
            };
            return Err(format!("interface '{}': {what}", spec.name));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(v: &str) -> InterfaceSpec {
        match parse(v).unwrap() {
            ParsedInterface::Spec(s) => s,
            other => panic!("not a spec: {other:?}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_named_and_advertised() {
        let s = spec("203.0.113.1");
        assert_eq!(s.name, "default");
        assert_eq!(s.address, InterfaceAddress::Ip(ip("203.0.113.1")));
        assert_eq!(s.advertised, None);

        let s = spec("pub/10.0.0.5!198.51.100.7");
        assert_eq!(s.name, "pub");
        assert_eq!(s.address, InterfaceAddress::Ip(ip("10.0.0.5")));
        assert_eq!(s.advertised, Some(ip("198.51.100.7")));
        let i = s.literal().unwrap();
        assert_eq!(i.sdp_address(), ip("198.51.100.7"));
    }

    #[test]
    fn ipv6_bare_and_bracketed() {
        assert_eq!(
            spec("2001:db8:4321::1").address,
            InterfaceAddress::Ip(ip("2001:db8:4321::1"))
        );
        let s = spec("v6/[2001:db8::1]![2001:db8::2]");
        assert_eq!(s.name, "v6");
        assert_eq!(s.address, InterfaceAddress::Ip(ip("2001:db8::1")));
        assert_eq!(s.advertised, Some(ip("2001:db8::2")));
        assert!(parse("[10.0.0.1]").is_err());
    }

    #[test]
    fn host_dependent_forms() {
        assert_eq!(spec("any").address, InterfaceAddress::Any);
        assert_eq!(spec("ext/auto").address, InterfaceAddress::Auto);
        assert_eq!(
            spec("int/eth0").address,
            InterfaceAddress::Device("eth0".into())
        );
        assert_eq!(spec("eth0").literal(), None);
        assert_eq!(
            spec("eth0.100").address,
            InterfaceAddress::Device("eth0.100".into())
        );
    }

    #[test]
    fn alias() {
        assert_eq!(
            parse("foo=bar").unwrap(),
            ParsedInterface::Alias {
                name: "foo".into(),
                target: "bar".into()
            }
        );
    }

    #[test]
    fn rejects() {
        assert!(parse("0.0.0.0").unwrap_err().contains("unspecified"));
        assert!(parse("/1.2.3.4")
            .unwrap_err()
            .contains("empty interface name"));
        assert!(parse("1.2.3.4!nope").unwrap_err().contains("advertised"));
        assert!(parse("1.2.3.4!::").unwrap_err().contains("advertised"));
        assert!(parse("300.1.1.1").unwrap_err().contains("'300.1.1.1'"));
        assert!(parse("").is_err());
    }

    fn host() -> Vec<HostAddress> {
        let h = |device: &str, a: &str, loopback: bool, scoped: bool| HostAddress {
            device: device.into(),
            addr: ip(a),
            up: true,
            loopback,
            scoped,
        };
        vec![
            h("lo", "127.0.0.1", true, false),
            h("lo", "::1", true, false),
            h("eth0", "fe80::1", false, true),
            h("eth0", "2001:db8::5", false, false),
            h("eth0", "192.0.2.10", false, false),
            HostAddress {
                up: false,
                ..h("eth1", "192.0.2.99", false, false)
            },
        ]
    }

    #[test]
    fn resolve_in_order() {
        let specs = vec![
            spec("a/auto"),
            spec("b/any"),
            spec("c/10.9.9.9"),
            spec("d/eth0!1.1.1.1"),
        ];
        let got = resolve(&specs, &host()).unwrap();
        let pairs: Vec<_> = got.iter().map(|i| (i.name.as_str(), i.local)).collect();
        assert_eq!(
            pairs,
            vec![
                ("a", ip("192.0.2.10")),
                ("b", ip("2001:db8::5")),
                ("b", ip("192.0.2.10")),
                ("c", ip("10.9.9.9")),
                ("d", ip("2001:db8::5")),
                ("d", ip("192.0.2.10")),
            ]
        );
        assert_eq!(got[4].advertised, Some(ip("1.1.1.1")));
    }

    #[test]
    fn resolve_errors_name_the_spec() {
        let e = resolve(&[spec("x/eth1")], &host()).unwrap_err();
        assert!(e.contains("interface 'x'") && e.contains("'eth1'"), "{e}");
        let e = resolve(&[spec("auto")], &host()[..2]).unwrap_err();
        assert!(e.contains("no usable non-loopback IPv4"), "{e}");
    }
}
