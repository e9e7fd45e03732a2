//! The agent's clock-driven half: retransmissions, paced checks (Ta), nomination, keepalives.

use rand::RngCore;

use crate::stun::{Class, MessageBuilder, TransactionId, BINDING};
use crate::time::Millis;

use super::{IceAgent, IceMode, PairState, Role, Transaction, Transmit};

impl IceAgent {
    // ---- input: time ----

    /// Retransmits, paces new checks, nominates and keeps alive.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.retransmit(now);
        if self.config.mode == IceMode::Full && self.remote_creds.is_some() {
            if self.role == Role::Controlling {
                self.maybe_nominate(now);
            }
            let paced = self
                .last_check
                .is_none_or(|l| now >= l.plus(self.config.ta));
            if paced {
                if let Some(i) = self.next_check() {
                    self.start_check(i, now);
                    self.last_check = Some(now);
                }
            }
            self.keepalive(now);
        }
        self.update_state();
    }

    pub(super) fn retransmit(&mut self, now: Millis) {
        for i in 0..self.pairs.len() {
            let Some(p) = self.pairs.get_mut(i) else {
                continue;
            };
            let Some(tx) = p.tx.as_mut() else { continue };
            if now < tx.next_at {
                continue;
            }
            if tx.transmits >= self.config.max_transmits {
                // The transaction timed out: the pair fails (RFC 8445 §7.2.5.2.4 via §14).
                p.tx = None;
                p.state = PairState::Failed;
                tracing::debug!(pair = i, "ICE check timed out");
                continue;
            }
            tx.transmits += 1;
            tx.rto = (tx.rto * 2).min(self.config.max_rto);
            tx.next_at = now.plus(tx.rto);
            let bytes = tx.bytes.clone();
            self.stats.retransmits += 1;
            if let Some((local, remote)) = self.pair_addrs(i) {
                self.transmits.push_back(Transmit {
                    local,
                    remote,
                    bytes,
                });
            }
        }
    }

    pub(super) fn component_done(&self, component: u16) -> bool {
        self.nominated.iter().any(|(c, _)| *c == component)
            || self
                .pairs
                .iter()
                .any(|p| p.component == component && p.tx.as_ref().is_some_and(|t| t.use_candidate))
    }

    pub(super) fn has_check_to_send(&self) -> bool {
        !self.triggered.is_empty()
            || self.pairs.iter().any(|p| {
                matches!(p.state, PairState::Waiting | PairState::Frozen)
                    && p.tx.is_none()
                    && !self.component_done(p.component)
            })
    }

    /// The triggered queue first, then the highest-priority Waiting pair, then the
    /// highest-priority Frozen one (RFC 8445 §6.1.4.2), skipping components already nominated.
    pub(super) fn next_check(&mut self) -> Option<usize> {
        while let Some(i) = self.triggered.pop_front() {
            if let Some(p) = self.pairs.get_mut(i) {
                p.triggered = false;
                if p.tx.is_none() && p.state != PairState::Failed {
                    return Some(i);
                }
            }
        }
        let best = |state: PairState| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.state == state && p.tx.is_none() && !self.component_done(p.component)
                })
                .max_by_key(|(i, p)| (p.priority, std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
        };
        best(PairState::Waiting).or_else(|| best(PairState::Frozen))
    }

    pub(super) fn nomination_open(&self, component: u16) -> bool {
        !self.component_done(component)
    }

    /// Regular nomination (RFC 8445 §8.1.1): once the best valid pair of a component has no
    /// better pair left to check, or after `nomination_delay`, check it again with
    /// USE-CANDIDATE.
    pub(super) fn maybe_nominate(&mut self, now: Millis) {
        let comps: Vec<(u16, Millis)> = self.first_valid.clone();
        for (c, first) in comps {
            if !self.nomination_open(c) {
                continue;
            }
            let Some((best, prio)) = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.component == c && p.state == PairState::Succeeded)
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, p)| (i, p.priority))
            else {
                continue;
            };
            let better_pending = self
                .pairs
                .iter()
                .any(|p| p.component == c && p.pending() && p.priority > prio);
            if better_pending && now < first.plus(self.config.nomination_delay) {
                continue;
            }
            tracing::debug!(pair = best, component = c, "ICE nominating");
            self.send_check(best, now, true);
        }
    }

    pub(super) fn keepalive(&mut self, now: Millis) {
        if self.nominated.is_empty() {
            return;
        }
        match self.next_keepalive {
            None => self.next_keepalive = Some(now.plus(self.config.keepalive)),
            Some(k) if now >= k => {
                self.next_keepalive = Some(now.plus(self.config.keepalive));
                let pairs: Vec<usize> = self.nominated.iter().map(|(_, i)| *i).collect();
                for i in pairs {
                    let tid = self.new_tid();
                    let bytes = MessageBuilder::new(Class::Indication, BINDING, &tid).fingerprint();
                    if let Some((local, remote)) = self.pair_addrs(i) {
                        self.transmits.push_back(Transmit {
                            local,
                            remote,
                            bytes,
                        });
                    }
                }
            }
            Some(_) => {}
        }
    }

    pub(super) fn new_tid(&mut self) -> TransactionId {
        let mut tid = [0u8; 12];
        self.rng.fill_bytes(&mut tid);
        tid
    }

    pub(super) fn start_check(&mut self, i: usize, now: Millis) {
        self.send_check(i, now, false);
    }

    /// Sends a Binding request on pair `i` (RFC 8445 §7.2.2): USERNAME `their:our`, PRIORITY,
    /// our role's attribute with the tie breaker, USE-CANDIDATE when nominating.
    pub(super) fn send_check(&mut self, i: usize, now: Millis, nominate: bool) {
        let Some(remote_creds) = self.remote_creds.clone() else {
            return;
        };
        let Some((local, remote, prflx)) = self.pairs.get(i).and_then(|p| {
            let l = self.local.get(p.local)?;
            Some((l.base, self.remote.get(p.remote)?.addr, l.prflx_priority()))
        }) else {
            return;
        };
        let tid = self.new_tid();
        let mut b = MessageBuilder::new(Class::Request, BINDING, &tid);
        b.username(&format!(
            "{}:{}",
            remote_creds.ufrag, self.local_creds.ufrag
        ))
        .priority(prflx);
        match self.role {
            Role::Controlling => b.ice_controlling(self.tie_breaker),
            Role::Controlled => b.ice_controlled(self.tie_breaker),
        };
        let use_candidate = nominate && self.role == Role::Controlling;
        if use_candidate {
            b.use_candidate();
        }
        b.integrity(remote_creds.pwd.as_bytes());
        let bytes = b.fingerprint();
        let rto = self.config.initial_rto;
        let role = self.role;
        let Some(p) = self.pairs.get_mut(i) else {
            return;
        };
        if !use_candidate {
            p.state = PairState::InProgress;
        }
        p.tx = Some(Transaction {
            id: tid,
            bytes: bytes.clone(),
            next_at: now.plus(rto),
            rto,
            transmits: 1,
            use_candidate,
            role,
        });
        self.stats.checks_sent += 1;
        self.transmits.push_back(Transmit {
            local,
            remote,
            bytes,
        });
    }
}
