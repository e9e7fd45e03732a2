//! Why a DTLS-SRTP operation failed.

/// Errors of the DTLS-SRTP endpoint, its certificate and the SDP fingerprint.
///
/// Every error an endpoint returns from [`crate::dtls::DtlsEndpoint::handle_datagram`] or
/// [`crate::dtls::DtlsEndpoint::handle_timeout`] is final: the endpoint is failed and stays so;
/// a new handshake needs a new endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// `--dtls-cert-cipher` names a key type this build cannot use.
    #[error("unsupported DTLS certificate cipher {0:?} (supported: prime256v1)")]
    UnsupportedCipher(String),
    /// Making or loading the certificate failed.
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// An `a=fingerprint` value that is not `HASH-FUNC HEX:HEX:...` of the right length.
    #[error("malformed DTLS fingerprint")]
    BadFingerprint,
    /// An `a=fingerprint` hash function other than sha-1/224/256/384/512.
    #[error("unsupported fingerprint hash function {0:?}")]
    UnknownHash(String),
    /// The DTLS options were refused (MTU too small, no SRTP profile allowed).
    #[error("DTLS configuration refused: {0}")]
    Config(String),
    /// The peer's certificate does not hash to the fingerprint its SDP announced.
    #[error("peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// The handshake finished without a peer certificate (DTLS-SRTP needs one both ways).
    #[error("peer sent no certificate")]
    NoPeerCertificate,
    /// The negotiated SRTP protection profile is not one the options allow.
    #[error("SRTP profile {0} not allowed")]
    ProfileNotAllowed(&'static str),
    /// The handshake finished without `use_srtp`: no SRTP keys to export.
    #[error("no SRTP profile negotiated")]
    NoSrtpProfile,
    /// The handshake did not finish within the retransmission budget.
    #[error("DTLS handshake timed out")]
    Timeout,
    /// The peer sent something the handshake cannot continue after (bad signature, alert,
    /// unexpected message); the text is the DTLS library's.
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// The endpoint failed earlier; it accepts nothing more.
    #[error("DTLS endpoint already failed")]
    Failed,
}
