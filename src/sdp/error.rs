//! Why an SDP body was refused. The text goes to logs; the NG reply only says "Failed to parse SDP".

/// A parse failure; `line` numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is bigger than we are willing to parse.
    #[error("SDP too large: {len} bytes (limit {max})")]
    TooLarge { len: usize, max: usize },
    /// Nothing but whitespace.
    #[error("empty SDP")]
    Empty,
    /// The first line is not `v=`.
    #[error("SDP does not start with a v= line")]
    MissingVersion,
    /// A second `v=` line inside one session (bodies with several sessions go through `Body`).
    #[error("line {line}: more than one session (second v= line)")]
    MultipleSessions { line: usize },
    /// More sessions in one body than `body::MAX_SESSIONS`.
    #[error("too many sessions in one body")]
    TooManySessions,
    /// The first line is not exactly `v=0`.
    #[error("SDP version is not 0")]
    BadVersion,
    /// A line type SDP does not have (`x=`).
    #[error("line {line}: unknown SDP line type")]
    UnknownLineType { line: usize },
    /// `o=` or `s=` inside a media section.
    #[error("line {line}: session line inside a media section")]
    MisplacedLine { line: usize },
    /// A second `o=` in a session, or a second `c=` at one level.
    #[error("line {line}: second o= or c= line")]
    DuplicateLine { line: usize },
    /// A line that is not `<letter>=<value>`.
    #[error("line {line}: not an SDP line")]
    BadLine { line: usize },
    /// `o=` without its six fields.
    #[error("line {line}: malformed o= line")]
    BadOrigin { line: usize },
    /// `c=` that is not `IN IP4|IP6 <address>` with an address of its family.
    #[error("line {line}: malformed c= line")]
    BadConnection { line: usize },
    /// `m=` without media type, port and protocol.
    #[error("line {line}: malformed m= line")]
    BadMedia { line: usize },
    /// `m=` port (or port count) that is not a number in range.
    #[error("line {line}: bad port in m= line")]
    BadPort { line: usize },
}
