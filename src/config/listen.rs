//! Control listener addresses: `[IP46|HOSTNAME:]PORT`, as rtpengine's `--listen-ng` takes them.
//!
//! A bare port listens on every address, IPv4 and IPv6 (`0.0.0.0:PORT` and `[::]:PORT`), as
//! rtpengine does. Host names are not resolved (no DNS in config parsing), except `localhost`,
//! which means 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::interface::parse_ip;

fn parse_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port '{s}' is not a number 1-65535")),
    }
}

/// Parses one `--listen-cli` value: like [`parse`], except that a bare port is 127.0.0.1's. The
/// CLI has no authentication and can end every call, so it is not opened to the network unless
/// an address says so.
pub fn parse_cli(value: &str) -> Result<SocketAddr, String> {
    let addrs = parse(value)?;
    let first = addrs.first().copied().ok_or("no address")?;
    Ok(if addrs.len() > 1 {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), first.port())
    } else {
        first
    })
}

/// Parses one listener value into one or two socket addresses. The error is a reason.
pub fn parse(value: &str) -> Result<Vec<SocketAddr>, String> {
    let s = value.trim();
    let Some((host, port)) = s.rsplit_once(':') else {
        if s.contains('.') {
            return Err("an address needs a port: use IP:PORT".into());
        }
        let port = parse_port(s)?;
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ]);
    };
    let port = parse_port(port)?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        parse_ip(host).ok_or_else(|| {
            format!(
                "'{host}' is not an IP address (host names other than localhost are not resolved)"
            )
        })?
    };
    Ok(vec![SocketAddr::new(ip, port)])
}

/// One line per control socket, `udp ADDR`, `tcp ADDR` (NG over TCP) or `http ADDR`, in the
/// order they are bound: what `--list-control-sockets` prints. A container health check runs it
/// with the relay's own arguments, so it probes the sockets the relay listens on, config file
/// included, instead of guessing them.
pub fn listing(ng: &[SocketAddr], tcp_ng: &[SocketAddr], http: &[SocketAddr]) -> String {
    let lines = [("udp", ng), ("tcp", tcp_ng), ("http", http)]
        .into_iter()
        .flat_map(|(kind, addrs)| addrs.iter().map(move |a| format!("{kind} {a}")));
    lines.collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(s: &str) -> String {
        let v = parse(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v[0].to_string()
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse("2223").unwrap(),
            vec![
                "0.0.0.0:2223".parse().unwrap(),
                "[::]:2223".parse().unwrap()
            ]
        );
        assert_eq!(one("127.0.0.1:22222"), "127.0.0.1:22222");
        assert_eq!(one("localhost:2223"), "127.0.0.1:2223");
        assert_eq!(one("[::1]:2223"), "[::1]:2223");
        assert_eq!(one("::1:2223"), "[::1]:2223");
        assert_eq!(one(" 10.0.0.1:9 "), "10.0.0.1:9");
    }

    #[test]
    fn rejects() {
        assert!(parse("127.0.0.1").unwrap_err().contains("needs a port"));
        assert!(parse("0").unwrap_err().contains("1-65535"));
        assert!(parse("70000").unwrap_err().contains("1-65535"));
        assert!(parse("abc").unwrap_err().contains("'abc'"));
        assert!(parse("example.com:22")
            .unwrap_err()
            .contains("not resolved"));
        assert!(parse("[10.0.0.1]:22").is_err());
    }
}
