//! Candidate pairs and their states (RFC 8445 §6.1.2.6), with the one STUN transaction a pair
//! may have in flight.

use std::time::Duration;

use crate::stun::TransactionId;
use crate::time::Millis;

use super::agent::Role;

/// RFC 8445 §6.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairState {
    Frozen,
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

/// A check in flight: its bytes are kept to retransmit them unchanged.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub id: TransactionId,
    pub bytes: Vec<u8>,
    /// When to retransmit (or, after the last transmission, give up).
    pub next_at: Millis,
    pub rto: Duration,
    pub transmits: u32,
    /// The check carried USE-CANDIDATE (a nomination by us, controlling).
    pub use_candidate: bool,
    /// Our role when it was sent (a 487 answer only switches a role we still have).
    pub role: Role,
}

/// A local and a remote candidate of the same component and address family.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pub local: usize,
    pub remote: usize,
    pub component: u16,
    pub priority: u64,
    pub state: PairState,
    pub tx: Option<Transaction>,
    /// The peer (controlling) sent USE-CANDIDATE on this pair: nominated once it succeeds.
    pub remote_nominated: bool,
    pub nominated: bool,
    /// [`super::IceEvent::Verified`] was emitted for this pair.
    pub verified: bool,
    /// Waiting in the triggered-check queue.
    pub triggered: bool,
    /// Role-conflict (487) answers to checks on this pair so far.
    pub conflicts: u8,
}

/// 487 answers a pair takes before it fails: a conflict settles in one switch, a peer that
/// answers 487 to every check would otherwise keep the pair checked forever.
pub const MAX_ROLE_CONFLICTS: u8 = 3;

impl Pair {
    pub fn new(
        local: usize,
        remote: usize,
        component: u16,
        priority: u64,
        state: PairState,
    ) -> Self {
        Pair {
            local,
            remote,
            component,
            priority,
            state,
            tx: None,
            remote_nominated: false,
            nominated: false,
            verified: false,
            triggered: false,
            conflicts: 0,
        }
    }

    /// Still to be checked or being checked.
    pub fn pending(&self) -> bool {
        matches!(
            self.state,
            PairState::Frozen | PairState::Waiting | PairState::InProgress
        )
    }
}
