//! What an agent counted: the drops a hostile or confused peer causes, and the work done.

/// Counters of one agent (to be summed into the stream's metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IceStats {
    /// Binding requests answered with a success response.
    pub requests_answered: u64,
    /// Error responses sent (487 role conflict, 420 unknown attribute).
    pub errors_sent: u64,
    /// Connectivity checks sent (first transmissions).
    pub checks_sent: u64,
    /// Retransmissions of checks.
    pub retransmits: u64,
    /// Not a STUN message we could parse.
    pub dropped_malformed: u64,
    /// FINGERPRINT absent or wrong.
    pub dropped_bad_fingerprint: u64,
    /// MESSAGE-INTEGRITY absent or wrong.
    pub dropped_bad_integrity: u64,
    /// USERNAME not ours.
    pub dropped_unknown_username: u64,
    /// Arrived on a socket we have no candidate for.
    pub dropped_unknown_local: u64,
    /// A response to no check of ours.
    pub dropped_unknown_transaction: u64,
    /// A candidate or pair refused because a cap was reached.
    pub dropped_cap: u64,
    /// Other STUN methods or classes we do not handle.
    pub dropped_other: u64,
    /// Role conflicts seen (either direction).
    pub role_conflicts: u64,
}
