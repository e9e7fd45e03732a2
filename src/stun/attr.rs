//! Attribute types (RFC 8489 §18.3, RFC 8445 §16.1) and the XOR address encoding (RFC 8489
//! §14.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::message::{TransactionId, MAGIC_COOKIE};

/// STUN attribute type codes this crate reads or writes.
pub struct AttrType;

impl AttrType {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// RFC 8445 §16.1.
    pub const PRIORITY: u16 = 0x0024;
    /// RFC 8445 §16.1.
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    pub const SOFTWARE: u16 = 0x8022;
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    pub const FINGERPRINT: u16 = 0x8028;
    /// RFC 8445 §16.1.
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// RFC 8445 §16.1.
    pub const ICE_CONTROLLING: u16 = 0x802A;

    /// Types below 0x8000 must be understood (RFC 8489 §14). Those a connectivity check may
    /// carry and we skip without harm are listed as known here; any other one in that range
    /// makes a request fail with 420.
    pub fn is_known_required(t: u16) -> bool {
        matches!(
            t,
            Self::MAPPED_ADDRESS
                | Self::USERNAME
                | Self::MESSAGE_INTEGRITY
                | Self::ERROR_CODE
                | Self::UNKNOWN_ATTRIBUTES
                | Self::REALM
                | Self::NONCE
                | Self::MESSAGE_INTEGRITY_SHA256
                | Self::PASSWORD_ALGORITHM
                | Self::USERHASH
                | Self::XOR_MAPPED_ADDRESS
                | Self::PRIORITY
                | Self::USE_CANDIDATE
        )
    }
}

/// 487 Role Conflict (RFC 8445 §7.3.1.1).
pub const ERROR_ROLE_CONFLICT: u16 = 487;
/// 401 Unauthenticated (RFC 8489 §6.3.4 calls it Unauthenticated).
pub const ERROR_UNAUTHORIZED: u16 = 401;
/// 420 Unknown Attribute.
pub const ERROR_UNKNOWN_ATTRIBUTE: u16 = 420;

const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// The XOR key for an address: the cookie, then the transaction id (for IPv6).
fn xor_key(tid: &TransactionId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(tid);
    key
}

/// Decodes an XOR-MAPPED-ADDRESS value; `None` for a bad family or length.
pub fn decode_xor_address(value: &[u8], tid: &TransactionId) -> Option<SocketAddr> {
    let key = xor_key(tid);
    let (&[_, family, p0, p1], rest) = value.split_first_chunk::<4>()?;
    let port = u16::from_be_bytes([p0, p1]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (family, rest.len()) {
        (FAMILY_V4, 4) => {
            let mut a = [0u8; 4];
            for (i, b) in a.iter_mut().enumerate() {
                *b = rest.get(i)? ^ key.get(i)?;
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (FAMILY_V6, 16) => {
            let mut a = [0u8; 16];
            for (i, b) in a.iter_mut().enumerate() {
                *b = rest.get(i)? ^ key.get(i)?;
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Encodes an XOR-MAPPED-ADDRESS value (8 bytes for IPv4, 20 for IPv6).
pub(crate) fn encode_xor_address(addr: SocketAddr, tid: &TransactionId) -> Vec<u8> {
    let key = xor_key(tid);
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut v = Vec::with_capacity(20);
    v.push(0);
    match addr.ip() {
        IpAddr::V4(ip) => {
            v.push(FAMILY_V4);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend(ip.octets().iter().zip(key.iter()).map(|(a, k)| a ^ k));
        }
        IpAddr::V6(ip) => {
            v.push(FAMILY_V6);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend(ip.octets().iter().zip(key.iter()).map(|(a, k)| a ^ k));
        }
    }
    v
}
