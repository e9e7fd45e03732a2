//! The call store's counters: records written to Redis, failed round trips, and operations
//! dropped (Redis down or paused, or the writer's queue full).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// Shared by the daemon (drops on a full queue), the writer thread and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    writes: Counter,
    errors: Counter,
    dropped: Counter,
}

impl StoreStats {
    pub fn written(&self, n: u64) {
        self.writes.inc_by(n);
    }
    pub fn error(&self) {
        self.errors.inc();
    }
    pub fn dropped(&self, n: u64) {
        self.dropped.inc_by(n);
    }

    /// Adds the counters to a scrape's registry.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "rtprelay_redis_writes",
            "Call store operations applied through Redis.",
            self.writes.clone(),
        );
        r.register(
            "rtprelay_redis_errors",
            "Redis round trips of the call store that failed.",
            self.errors.clone(),
        );
        r.register(
            "rtprelay_redis_dropped",
            "Call store operations dropped (Redis failing or paused, or the queue full).",
            self.dropped.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_counters_are_exposed() {
        let s = StoreStats::default();
        s.written(3);
        s.error();
        s.dropped(2);
        let mut r = Registry::default();
        s.register(&mut r);
        let t = crate::metrics::sheet::encode(&r);
        assert!(t.contains("rtprelay_redis_writes_total 3\n"), "{t}");
        assert!(t.contains("rtprelay_redis_errors_total 1\n"), "{t}");
        assert!(t.contains("rtprelay_redis_dropped_total 2\n"), "{t}");
    }
}
