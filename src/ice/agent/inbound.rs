//! The agent's packet-driven half: Binding requests answered (and turned into triggered checks
//! or nominations), responses to our checks matched to their pairs.

use std::net::SocketAddr;

use rand::RngCore;

use crate::sdp::ice::CandidateType;
use crate::stun::{
    Class, Message, MessageBuilder, BINDING, ERROR_ROLE_CONFLICT, ERROR_UNKNOWN_ATTRIBUTE,
};
use crate::time::Millis;

use super::{
    candidate_priority, IceAgent, IceDrop, IceMode, PairState, RemoteCandidate, Role, Transmit,
};
use crate::ice::checklist::MAX_ROLE_CONFLICTS;

impl IceAgent {
    // ---- input: packets ----

    /// A STUN datagram from `src` arrived on our socket `local`. Checks run in RFC 8445 §7.3's
    /// order (fingerprint, then integrity with the short-term password, then username); a
    /// failure is counted and changes nothing.
    pub fn handle_packet(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), IceDrop> {
        let r = self.handle_inner(now, src, local, bytes);
        if let Err(e) = r {
            let s = &mut self.stats;
            match e {
                IceDrop::Malformed(_) => s.dropped_malformed += 1,
                IceDrop::Fingerprint => s.dropped_bad_fingerprint += 1,
                IceDrop::Integrity => s.dropped_bad_integrity += 1,
                IceDrop::UnknownUsername => s.dropped_unknown_username += 1,
                IceDrop::UnknownLocal => s.dropped_unknown_local += 1,
                IceDrop::UnknownTransaction => s.dropped_unknown_transaction += 1,
                IceDrop::Other => s.dropped_other += 1,
            }
            tracing::trace!(%src, %local, reason = %e, "STUN dropped");
        }
        self.update_state();
        r
    }

    pub(super) fn handle_inner(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), IceDrop> {
        let m = Message::parse(bytes).map_err(IceDrop::Malformed)?;
        if m.method() != BINDING {
            return Err(IceDrop::Other);
        }
        match m.class() {
            Class::Request => self.on_request(now, src, local, &m),
            Class::Success | Class::Error => self.on_response(now, src, local, &m),
            // A keepalive: nothing to do (and nothing to check: it carries no integrity).
            Class::Indication => m.check_fingerprint(true).map_err(|_| IceDrop::Fingerprint),
        }
    }

    pub(super) fn on_request(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
    ) -> Result<(), IceDrop> {
        m.check_fingerprint(true)
            .map_err(|_| IceDrop::Fingerprint)?;
        m.check_integrity(self.local_creds.pwd.as_bytes())
            .map_err(|_| IceDrop::Integrity)?;
        self.check_username(m.username())?;
        let li = self
            .local
            .iter()
            .position(|l| l.base == local)
            .ok_or(IceDrop::UnknownLocal)?;

        if !m.unknown_required().is_empty() {
            let unknown = m.unknown_required().to_vec();
            self.send_error(
                src,
                local,
                m,
                ERROR_UNKNOWN_ATTRIBUTE,
                "Unknown Attribute",
                &unknown,
            );
            return Ok(());
        }
        if self.config.mode == IceMode::Full && !self.resolve_role_conflict(src, local, m) {
            return Ok(());
        }
        self.send_success(src, local, m);

        let Some(component) = self.local.get(li).map(|l| l.component) else {
            return Err(IceDrop::UnknownLocal);
        };
        let ri = match self
            .remote
            .iter()
            .position(|r| r.addr == src && r.component == component)
        {
            Some(ri) => ri,
            None => {
                // A peer-reflexive candidate (RFC 8445 §7.3.1.3).
                let n = self.remote.len();
                let priority = m
                    .priority()
                    .unwrap_or_else(|| candidate_priority(110, 65535, component));
                match self.insert_remote(RemoteCandidate {
                    component,
                    addr: src,
                    priority,
                    foundation: format!("prflx{n}"),
                    typ: CandidateType::PeerReflexive,
                }) {
                    Ok(ri) => ri,
                    // Answered, but no pair can be kept for it.
                    Err(_) => return Ok(()),
                }
            }
        };
        let Some(pi) = self.add_pair(li, ri) else {
            return Ok(());
        };
        let use_candidate = m.use_candidate() && self.role == Role::Controlled;
        match self.config.mode {
            IceMode::Lite => {
                if let Some(p) = self.pairs.get_mut(pi) {
                    p.state = PairState::Succeeded;
                }
                self.mark_verified(pi);
                if use_candidate {
                    self.nominate(pi, now);
                }
            }
            IceMode::Full => {
                let Some(p) = self.pairs.get_mut(pi) else {
                    return Ok(());
                };
                if use_candidate {
                    p.remote_nominated = true;
                }
                match p.state {
                    PairState::Succeeded => {
                        if use_candidate {
                            self.nominate(pi, now);
                        }
                    }
                    // A check of ours is out on it; its answer settles the pair.
                    PairState::InProgress => {}
                    PairState::Frozen | PairState::Waiting | PairState::Failed => {
                        // A triggered check (RFC 8445 §7.3.1.4).
                        p.state = PairState::Waiting;
                        if !p.triggered {
                            p.triggered = true;
                            self.triggered.push_back(pi);
                        }
                        if self.remote_creds.is_some() {
                            // Send it now if the pacing allows, not at the next tick.
                            let paced = self
                                .last_check
                                .is_none_or(|l| now >= l.plus(self.config.ta));
                            if paced {
                                if let Some(i) = self.next_check() {
                                    self.start_check(i, now);
                                    self.last_check = Some(now);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// USERNAME must be `our-ufrag:their-ufrag` (the second part checked once we know it).
    pub(super) fn check_username(&self, username: Option<&[u8]>) -> Result<(), IceDrop> {
        let u = username.ok_or(IceDrop::UnknownUsername)?;
        let u = std::str::from_utf8(u).map_err(|_| IceDrop::UnknownUsername)?;
        let (ours, theirs) = u.split_once(':').ok_or(IceDrop::UnknownUsername)?;
        if ours != self.local_creds.ufrag {
            return Err(IceDrop::UnknownUsername);
        }
        match &self.remote_creds {
            Some(r) if r.ufrag != theirs => Err(IceDrop::UnknownUsername),
            _ => Ok(()),
        }
    }

    /// RFC 8445 §7.3.1.1. Returns false when the request was answered with 487.
    pub(super) fn resolve_role_conflict(
        &mut self,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
    ) -> bool {
        match (self.role, m.ice_controlling(), m.ice_controlled()) {
            (Role::Controlling, Some(theirs), _) => {
                if self.tie_breaker >= theirs {
                    self.stats.role_conflicts += 1;
                    self.send_error(src, local, m, ERROR_ROLE_CONFLICT, "Role Conflict", &[]);
                    return false;
                }
                self.set_role(Role::Controlled);
            }
            (Role::Controlled, _, Some(theirs)) => {
                if self.tie_breaker >= theirs {
                    self.set_role(Role::Controlling);
                } else {
                    self.stats.role_conflicts += 1;
                    self.send_error(src, local, m, ERROR_ROLE_CONFLICT, "Role Conflict", &[]);
                    return false;
                }
            }
            _ => {}
        }
        true
    }

    pub(super) fn send_success(&mut self, src: SocketAddr, local: SocketAddr, m: &Message<'_>) {
        let mut b = MessageBuilder::new(Class::Success, BINDING, m.transaction_id());
        b.xor_mapped_address(src)
            .integrity(self.local_creds.pwd.as_bytes());
        self.stats.requests_answered += 1;
        self.transmits.push_back(Transmit {
            local,
            remote: src,
            bytes: b.fingerprint(),
        });
    }

    pub(super) fn send_error(
        &mut self,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
        code: u16,
        reason: &str,
        unknown: &[u16],
    ) {
        let mut b = MessageBuilder::new(Class::Error, BINDING, m.transaction_id());
        b.error_code(code, reason);
        if !unknown.is_empty() {
            b.unknown_attributes(unknown);
        }
        b.integrity(self.local_creds.pwd.as_bytes());
        self.stats.errors_sent += 1;
        self.transmits.push_back(Transmit {
            local,
            remote: src,
            bytes: b.fingerprint(),
        });
    }

    pub(super) fn on_response(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
    ) -> Result<(), IceDrop> {
        let pi = self
            .pairs
            .iter()
            .position(|p| p.tx.as_ref().is_some_and(|t| &t.id == m.transaction_id()))
            .ok_or(IceDrop::UnknownTransaction)?;
        m.check_fingerprint(true)
            .map_err(|_| IceDrop::Fingerprint)?;
        let pwd = self
            .remote_creds
            .as_ref()
            .map(|c| c.pwd.clone())
            .ok_or(IceDrop::Integrity)?;
        m.check_integrity(pwd.as_bytes())
            .map_err(|_| IceDrop::Integrity)?;
        let Some((base, remote)) = self.pair_addrs(pi) else {
            return Err(IceDrop::UnknownTransaction);
        };
        let Some(p) = self.pairs.get_mut(pi) else {
            return Err(IceDrop::UnknownTransaction);
        };
        let Some(tx) = p.tx.take() else {
            return Err(IceDrop::UnknownTransaction);
        };
        // Non-symmetric addresses fail the pair (RFC 8445 §7.2.5.2.1).
        if src != remote || local != base {
            p.state = PairState::Failed;
            return Ok(());
        }
        if m.class() == Class::Error {
            if m.error_code() == Some(ERROR_ROLE_CONFLICT) && p.conflicts < MAX_ROLE_CONFLICTS {
                // RFC 8445 §7.2.5.1: switch role (unless already switched) and check again.
                p.conflicts += 1;
                p.state = PairState::Waiting;
                if !p.triggered {
                    p.triggered = true;
                    self.triggered.push_back(pi);
                }
                if tx.role == self.role {
                    let other = match self.role {
                        Role::Controlling => Role::Controlled,
                        Role::Controlled => Role::Controlling,
                    };
                    self.set_role(other);
                    // RFC 8445 §16.1: after a 487 the tie breaker MUST change.
                    self.tie_breaker = self.rng.next_u64();
                }
            } else {
                // Any other error fails the pair, a nomination check's too (else the
                // nomination would be retried at once, forever).
                p.state = PairState::Failed;
            }
            return Ok(());
        }
        // Success: the valid pair is the pair checked (our candidates are host candidates;
        // the mapped address is only informative).
        p.state = PairState::Succeeded;
        let component = p.component;
        let nominate = tx.use_candidate || p.remote_nominated && self.role == Role::Controlled;
        if !self.first_valid.iter().any(|(c, _)| *c == component) {
            self.first_valid.push((component, now));
        }
        // Unfreeze the pairs of the same foundation (RFC 8445 §7.2.5.3.3).
        let foundation = self.pair_foundation(pi);
        let same: Vec<usize> = (0..self.pairs.len())
            .filter(|i| self.pair_foundation(*i) == foundation)
            .collect();
        for i in same {
            if let Some(q) = self.pairs.get_mut(i) {
                if q.state == PairState::Frozen {
                    q.state = PairState::Waiting;
                }
            }
        }
        self.mark_verified(pi);
        if nominate {
            self.nominate(pi, now);
        }
        Ok(())
    }

    pub(super) fn pair_foundation(&self, i: usize) -> Option<(&str, &str)> {
        let p = self.pairs.get(i)?;
        Some((
            self.local.get(p.local)?.foundation.as_str(),
            self.remote.get(p.remote)?.foundation.as_str(),
        ))
    }
}
