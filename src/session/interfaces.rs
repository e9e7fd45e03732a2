//! Which configured interface entry a media section uses, as rtpengine chooses it.
//!
//! A leg asks for an interface by name (`direction`, `from-interface`, `to-interface`) or by none
//! (the empty name). rtpengine's rules, which Kamailio configs written for one relay layout rely
//! on when they meet another:
//! - no name: the first entry (in configuration order) of the wanted address family;
//! - a name the relay has: that name's entry in the wanted family, else its first entry;
//! - a name the relay does not have: not an error. `internal` then asks for IPv4 and `external`
//!   for IPv6 (rtpengine's legacy names for bridging), any other name keeps the wanted family
//!   (and is logged), and the entry is chosen as for no name;
//! - no entry of the family at all: the first IPv4 entry, else the first IPv6 one.

use std::net::IpAddr;

use crate::config::Interface;
use crate::sdp::Family;

/// The entry media on interface `name` uses for `family` (`None`: any family).
pub(crate) fn pick<'a>(
    interfaces: &'a [Interface],
    name: &str,
    family: Option<Family>,
) -> Option<&'a Interface> {
    let in_family = |i: &&Interface, f: Option<Family>| f.is_none_or(|f| family_of(i.local) == f);
    let named = || {
        interfaces
            .iter()
            .filter(move |i| !name.is_empty() && i.name == name)
    };
    if let Some(first) = named().next() {
        return named().find(|i| in_family(i, family)).or(Some(first));
    }
    let family = legacy_family(name).or(family);
    interfaces
        .iter()
        .find(|i| in_family(i, family))
        .or_else(|| interfaces.iter().find(|i| in_family(i, Some(Family::V4))))
        .or_else(|| interfaces.first())
}

/// The family rtpengine's legacy interface names ask for when the relay has no such name.
fn legacy_family(name: &str) -> Option<Family> {
    match name {
        "internal" => Some(Family::V4),
        "external" => Some(Family::V6),
        _ => None,
    }
}

/// `internal` or `external`.
pub(crate) fn is_legacy(name: &str) -> bool {
    legacy_family(name).is_some()
}

/// Whether `name` names no configured interface (the empty name is the default, not unknown).
pub(crate) fn is_unknown(interfaces: &[Interface], name: &str) -> bool {
    !name.is_empty() && !interfaces.iter().any(|i| i.name == name)
}

/// The SDP address of the entry [`pick`] chooses.
pub(crate) fn interface_address(
    interfaces: &[Interface],
    name: &str,
    family: Option<Family>,
) -> Option<IpAddr> {
    pick(interfaces, name, family).map(Interface::sdp_address)
}

pub(crate) fn family_of(ip: IpAddr) -> Family {
    match ip {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, ip: &str) -> Interface {
        Interface {
            name: name.into(),
            local: ip.parse().expect("ip"),
            advertised: None,
        }
    }

    fn picked(list: &[Interface], name: &str, family: Option<Family>) -> String {
        pick(list, name, family).map_or("none".into(), |i| format!("{}/{}", i.name, i.local))
    }

    #[test]
    fn named_entries_in_the_wanted_family_else_the_first_of_the_name() {
        let list = [
            iface("priv", "10.0.0.1"),
            iface("pub", "2001:db8::1"),
            iface("pub", "198.51.100.1"),
        ];
        assert_eq!(picked(&list, "pub", Some(Family::V4)), "pub/198.51.100.1");
        assert_eq!(picked(&list, "pub", Some(Family::V6)), "pub/2001:db8::1");
        assert_eq!(picked(&list, "priv", Some(Family::V6)), "priv/10.0.0.1");
    }

    #[test]
    fn no_name_is_the_first_entry_of_the_family() {
        let list = [iface("a", "10.0.0.1"), iface("b", "2001:db8::1")];
        assert_eq!(picked(&list, "", Some(Family::V6)), "b/2001:db8::1");
        assert_eq!(picked(&list, "", Some(Family::V4)), "a/10.0.0.1");
        assert_eq!(picked(&list, "", None), "a/10.0.0.1");
    }

    #[test]
    fn unknown_names_fall_back_like_rtpengine() {
        let list = [
            iface("default", "2001:db8::1"),
            iface("default", "10.0.0.1"),
        ];
        // The legacy names choose the family; other names keep the wanted one.
        assert_eq!(
            picked(&list, "internal", Some(Family::V6)),
            "default/10.0.0.1"
        );
        assert_eq!(
            picked(&list, "external", Some(Family::V4)),
            "default/2001:db8::1"
        );
        assert_eq!(picked(&list, "foo", Some(Family::V4)), "default/10.0.0.1");
        assert_eq!(
            picked(&list, "foo", Some(Family::V6)),
            "default/2001:db8::1"
        );
        // A family the relay has no address in: the first IPv4 entry.
        let v4 = [iface("a", "10.0.0.1"), iface("b", "10.0.0.2")];
        assert_eq!(picked(&v4, "external", Some(Family::V4)), "a/10.0.0.1");
        let v6 = [iface("a", "2001:db8::1")];
        assert_eq!(picked(&v6, "internal", None), "a/2001:db8::1");
        assert!(is_unknown(&list, "foo"));
        assert!(!is_unknown(&list, "default"));
        assert!(!is_unknown(&list, ""));
        assert_eq!(picked(&[], "x", None), "none");
    }
}
