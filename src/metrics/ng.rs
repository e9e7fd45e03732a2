//! NG request figures the daemon records around each command: rtpengine's per-proxy request
//! counts, seconds and errors, and a latency histogram per command that rtpengine lacks.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    proxy: String,
    request: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Proxy {
    proxy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Command {
    command: &'static str,
}

type LatencyFamily = Family<Command, Histogram, fn() -> Histogram>;

/// Shared by the NG transports (through the daemon's control handle) and `/metrics`.
#[derive(Debug, Clone)]
pub struct NgStats {
    requests: Family<Request, Counter>,
    seconds: Family<Request, Counter<f64, AtomicU64>>,
    errors: Family<Proxy, Counter>,
    latency: LatencyFamily,
    /// The client addresses that have a `proxy` label of their own (see [`MAX_PROXIES`]).
    proxies: Arc<Mutex<HashSet<IpAddr>>>,
}

/// Client addresses named in the `proxy` label. A datagram's source is the sender's to choose
/// (and to spoof, over UDP): past this many, new addresses are counted as `proxy="other"`, so
/// garbage from many sources cannot grow the series without bound.
pub const MAX_PROXIES: usize = 256;

/// 50 µs to about 0.8 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 15))
}

impl Default for NgStats {
    fn default() -> Self {
        NgStats {
            requests: Family::default(),
            seconds: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            proxies: Arc::default(),
        }
    }
}

impl NgStats {
    /// rtpengine's `proxy` label: the client's address without its port; `other` once
    /// [`MAX_PROXIES`] addresses have a label.
    fn proxy(&self, peer: Option<IpAddr>) -> String {
        let Some(ip) = peer else {
            return "local".to_string();
        };
        let mut known = self.proxies.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(&ip) || (known.len() < MAX_PROXIES && known.insert(ip)) {
            ip.to_string()
        } else {
            "other".to_string()
        }
    }

    /// One command `name` from `peer`, answered after `secs` seconds.
    pub fn request(&self, peer: Option<IpAddr>, name: &'static str, secs: f64) {
        let key = Request {
            proxy: self.proxy(peer),
            request: name,
        };
        // rtpengine lists each proxy's error count, 0 included.
        drop(self.errors.get_or_create(&Proxy {
            proxy: key.proxy.clone(),
        }));
        self.requests.get_or_create(&key).inc();
        self.seconds.get_or_create(&key).inc_by(secs);
        self.latency
            .get_or_create(&Command { command: name })
            .observe(secs);
    }

    /// A message from `peer` answered with an error.
    pub fn error(&self, peer: Option<IpAddr>) {
        self.errors
            .get_or_create(&Proxy {
                proxy: self.proxy(peer),
            })
            .inc();
    }

    /// Adds the families to a scrape's registry.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "rtpengine_requests",
            "Total number of NG requests, by proxy and request.",
            self.requests.clone(),
        );
        r.register(
            "rtpengine_request_seconds",
            "Total time spent handling NG requests, by proxy and request.",
            self.seconds.clone(),
        );
        r.register(
            "rtpengine_errors",
            "NG messages answered with an error, by proxy.",
            self.errors.clone(),
        );
        r.register(
            "rtprelay_ng_request_duration_seconds",
            "Time to handle an NG command (parsing, the call table, port binding), by command.",
            self.latency.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_errors_and_latency_are_exposed() {
        let s = NgStats::default();
        let ip: IpAddr = "10.0.0.5".parse().expect("ip");
        s.request(Some(ip), "offer", 0.002);
        s.request(Some(ip), "offer", 0.001);
        s.request(None, "ping", 0.0001);
        s.error(Some(ip));
        let mut r = Registry::default();
        s.register(&mut r);
        let t = crate::metrics::sheet::encode(&r);
        assert!(
            t.contains("rtpengine_requests_total{proxy=\"10.0.0.5\",request=\"offer\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("rtpengine_errors_total{proxy=\"10.0.0.5\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE rtprelay_ng_request_duration_seconds histogram\n"));
        assert!(
            t.contains("rtprelay_ng_request_duration_seconds_count{command=\"offer\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("rtpengine_request_seconds_total{proxy=\"local\",request=\"ping\"}"));
        assert!(
            t.contains("rtpengine_errors_total{proxy=\"local\"} 0\n"),
            "{t}"
        );
    }

    /// Messages from more source addresses than [`MAX_PROXIES`] (spoofable over UDP) add no
    /// series past the limit: the rest are counted under `proxy="other"`.
    #[test]
    fn many_sources_cannot_grow_the_proxy_labels_without_bound() {
        let s = NgStats::default();
        for i in 0..(MAX_PROXIES as u32 + 100) {
            s.error(Some(IpAddr::from(std::net::Ipv4Addr::from(
                0x0a00_0000u32 + i,
            ))));
        }
        let mut r = Registry::default();
        s.register(&mut r);
        let t = crate::metrics::sheet::encode(&r);
        let series = t
            .lines()
            .filter(|l| l.starts_with("rtpengine_errors_total{"))
            .count();
        assert_eq!(series, MAX_PROXIES + 1, "{t}");
        assert!(
            t.contains("rtpengine_errors_total{proxy=\"other\"} 100\n"),
            "{t}"
        );
        assert!(
            t.contains("rtpengine_errors_total{proxy=\"10.0.0.0\"} 1\n"),
            "{t}"
        );
    }
}
