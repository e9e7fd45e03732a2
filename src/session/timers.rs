//! Timers: delete-delay, media timeouts, offer timeout and final timeout, driven by `tick(now)`.

use crate::session::engine::Engine;
use crate::time::Now;

/// How often `tick` looks at every call: timeouts and delete-delay count in seconds, and a scan
/// holds the control lock (NG commands wait) for a time that grows with the calls.
pub const SCAN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// Ends calls whose time is up. Call it as often as convenient: it looks at the calls at most
    /// once per `SCAN_INTERVAL`.
    pub fn tick(&mut self, now: Now) {
        // The daemon ticks from its start: uptime counts from there, not from the first command.
        self.started.get_or_insert(now);
        if self.next_scan.is_some_and(|at| now.mono < at) {
            return;
        }
        self.next_scan = Some(now.mono.plus(SCAN_INTERVAL));
        let mut ended = Vec::new();
        for call in self.calls.values() {
            if let Some(at) = call.destroy_at {
                if now.mono >= at {
                    ended.push((call.id.clone(), "deleted"));
                }
                continue;
            }
            let age = now.mono.since(call.created.mono);
            if self.cfg.final_timeout.is_some_and(|f| age >= f) {
                ended.push((call.id.clone(), "final timeout"));
                continue;
            }
            if !call.answered() {
                if now.mono.since(call.last_signal.mono) >= self.cfg.offer_timeout {
                    ended.push((call.id.clone(), "offer timeout"));
                }
                continue;
            }
            let since = call
                .last_packet()
                .unwrap_or(call.last_signal.mono)
                .max(call.last_signal.mono);
            let limit = if call.legs.iter().any(|l| l.on_hold) {
                self.cfg.silent_timeout
            } else {
                self.cfg.timeout
            };
            if now.mono.since(since) >= limit {
                ended.push((call.id.clone(), "media timeout"));
            }
        }
        for (id, why) in ended {
            let _in_call = crate::session::log::call_span(&id, None).entered();
            if why != "deleted" {
                self.totals.calls_timed_out += 1;
                tracing::info!(call_id = ?id, reason = why, "call timed out");
            }
            self.destroy(now, &id);
        }
    }
}
