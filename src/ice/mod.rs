//! ICE (RFC 8445) for one media stream, sans-IO: an [`IceAgent`] takes datagrams
//! ([`IceAgent::handle_packet`]), remote candidates from SDP or trickle
//! ([`IceAgent::add_remote_candidate`]) and the time ([`IceAgent::handle_timeout`]); it gives
//! back datagrams to send ([`IceAgent::poll_transmit`]), events ([`IceAgent::poll_event`]) and
//! when it wants to be woken ([`IceAgent::poll_timeout`]).
//!
//! Two modes:
//! - **lite** (RFC 8445 §2.5): the relay only answers connectivity checks and records the pair
//!   the peer nominates with USE-CANDIDATE. It is always the controlled side.
//! - **full**, controlling or controlled: paced checks (Ta), retransmissions, triggered checks,
//!   role conflicts settled by tie breakers (487), regular nomination when controlling.
//!
//! What the relay's media path needs is the [`IceEvent::Verified`] and [`IceEvent::Nominated`]
//! events: they name the (local socket, remote address) pair that passed an authenticated check,
//! so that media latches on it and not on whichever source sent first.
//!
//! Our candidates are host candidates on the relay's sockets; a socket's advertised address
//! (`!ADVERTISED` in the interface configuration) is what goes in the SDP, the bound address
//! (the base) is what the agent is told packets arrive on.

//! Checks run in RFC 8445 §7.3's order: FINGERPRINT, then MESSAGE-INTEGRITY with our password,
//! then USERNAME `our-ufrag:their-ufrag` (the second half only once the peer's SDP is known). A
//! request that fails is dropped and counted ([`IceStats`]), never answered: no 400/401 for a
//! stranger to reflect off the relay, and no state change.
//!
//! Deliberate simplifications, to revisit when wiring:
//! - the valid pair is the pair checked: our candidates are host candidates on the relay's own
//!   sockets, so a peer-reflexive *local* candidate from XOR-MAPPED-ADDRESS is not learnt;
//! - a triggered check on a pair with a check in flight lets that check run instead of
//!   cancelling it (RFC 8445 §7.3.1.4 cancels and re-sends);
//! - no ICE restart (a new ufrag means a new agent), no ICE-TCP, no aggressive nomination
//!   or renomination of our own, no consent freshness (RFC 7675) beyond answering the peer's;
//! - a full agent keeps a nominated pair alive with Binding indications (RFC 8445 §11).

mod agent;
mod candidate;
mod checklist;
mod credentials;
mod stats;

#[cfg(test)]
mod tests;

pub use agent::{IceAgent, IceConfig, IceDrop, IceEvent, IceMode, IceState, Role, Transmit};
pub use candidate::{
    candidate_priority, pair_priority, CandidateRefused, LocalCandidate, RemoteCandidate,
};
pub use checklist::PairState;
pub use credentials::{letters_and_digits, Credentials};
pub use stats::IceStats;
