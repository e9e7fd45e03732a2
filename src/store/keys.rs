//! Redis key names. Every key of a node carries the node's hash tag (`{rtprelay:NODE}`), so that
//! a node's calls, tombstones and index live in one Redis Cluster slot and one script can touch
//! them together.

/// The key of a call's record.
pub fn call(node: &str, call_id: &str) -> String {
    format!("{{rtprelay:{node}}}:call:{call_id}")
}

/// The key that marks a deleted call for a while, so that a late write cannot bring it back.
pub fn tombstone(node: &str, call_id: &str) -> String {
    format!("{{rtprelay:{node}}}:gone:{call_id}")
}

/// The node's index: a SET of its call keys (restore reads it instead of KEYS or SCAN).
pub fn index(node: &str) -> String {
    format!("{{rtprelay:{node}}}:calls")
}

/// The node's change stream: one entry per applied write or delete, for hot standbys.
pub fn changes(node: &str) -> String {
    format!("{{rtprelay:{node}}}:changes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_nodes_hash_tag() {
        assert_eq!(call("a", "x@y"), "{rtprelay:a}:call:x@y");
        assert_eq!(tombstone("a", "x@y"), "{rtprelay:a}:gone:x@y");
        assert_eq!(index("a"), "{rtprelay:a}:calls");
        assert_eq!(changes("a"), "{rtprelay:a}:changes");
    }
}
