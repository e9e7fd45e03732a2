//! SRTP keys from the DTLS exporter (RFC 5764 §4.2).
//!
//! The exporter's output (label `EXTRACTOR-dtls_srtp`, no context) is
//! `client_write_key | server_write_key | client_write_salt | server_write_salt`, each key and
//! salt of the negotiated profile's length. The client (`a=setup:active`) protects with the
//! client half and unprotects with the server half; the server the other way round.

use crate::srtp::context::Params;
use crate::srtp::suite::Suite;

use super::endpoint::Role;
use super::DtlsError;

/// The SRTP suites the DTLS stack can negotiate, strongest first. dimpl offers no
/// `SRTP_AES128_CM_HMAC_SHA1_32` (WebRTC does not use it).
pub const SUPPORTED_SUITES: [Suite; 3] = [
    Suite::AeadAes256Gcm,
    Suite::AeadAes128Gcm,
    Suite::AesCm128HmacSha1_80,
];

/// Keys for the two directions of one DTLS-SRTP association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: Suite,
    /// What this side protects its outgoing SRTP/SRTCP with.
    pub local: Params,
    /// What this side unprotects incoming SRTP/SRTCP with.
    pub remote: Params,
}

/// The SRTP suite of a negotiated DTLS-SRTP profile.
pub(super) fn suite_of(profile: dimpl::SrtpProfile) -> Option<Suite> {
    match profile {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => Some(Suite::AesCm128HmacSha1_80),
        dimpl::SrtpProfile::AEAD_AES_128_GCM => Some(Suite::AeadAes128Gcm),
        dimpl::SrtpProfile::AEAD_AES_256_GCM => Some(Suite::AeadAes256Gcm),
        _ => None,
    }
}

/// Split exported keying material into this side's local and remote parameters.
pub(super) fn split(suite: Suite, material: &[u8], role: Role) -> Result<SrtpKeys, DtlsError> {
    let k = suite.master_key_len();
    let s = suite.master_salt_len();
    if material.len() != 2 * (k + s) {
        return Err(DtlsError::Handshake(format!(
            "exporter gave {} bytes, {} needs {}",
            material.len(),
            suite.name(),
            2 * (k + s)
        )));
    }
    let (keys, salts) = material.split_at(2 * k);
    let (client_key, server_key) = keys.split_at(k);
    let (client_salt, server_salt) = salts.split_at(s);
    let client = Params::new(suite, client_key, client_salt);
    let server = Params::new(suite, server_key, server_salt);
    let (local, remote) = match role {
        Role::Active => (client, server),
        Role::Passive => (server, client),
    };
    Ok(SrtpKeys {
        suite,
        local,
        remote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5764_layout_by_role() {
        let suite = Suite::AesCm128HmacSha1_80;
        // client key 0x01.., server key 0x02.., client salt 0x03.., server salt 0x04..
        let mut m = vec![1u8; 16];
        m.extend([2u8; 16]);
        m.extend([3u8; 14]);
        m.extend([4u8; 14]);
        let a = split(suite, &m, Role::Active).expect("split");
        let p = split(suite, &m, Role::Passive).expect("split");
        assert_eq!(a.local.master_key, vec![1; 16]);
        assert_eq!(a.local.master_salt, vec![3; 14]);
        assert_eq!(a.remote.master_key, vec![2; 16]);
        assert_eq!(a.remote.master_salt, vec![4; 14]);
        assert_eq!(a.local, p.remote);
        assert_eq!(a.remote, p.local);
        assert!(split(suite, &m[1..], Role::Active).is_err());
        // GCM: 12-byte salts.
        let g = split(Suite::AeadAes256Gcm, &[0; 2 * (32 + 12)], Role::Passive).expect("gcm");
        assert_eq!(g.local.master_salt.len(), 12);
    }
}
