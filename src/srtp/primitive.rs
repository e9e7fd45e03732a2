//! The crypto primitives, built once per key: AES-CTR keystream (AES-NI when the CPU has it), AES
//! in f8-mode, HMAC-SHA1 and AES-GCM, all from RustCrypto. Nothing here knows packet layouts; `transform` does.

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes_gcm::aead::AeadInPlace;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::error::SrtpError;

/// An expanded AES encryption key of 128, 192 or 256 bits.
#[derive(Clone)]
pub(crate) enum AesKey {
    A128(aes::Aes128Enc),
    A192(aes::Aes192Enc),
    A256(aes::Aes256Enc),
}

/// XORs `data` with the AES-CTR keystream of an expanded key (a copy of the round keys, not a
/// new key schedule).
macro_rules! ctr_xor {
    ($aes:ty, $key:expr, $iv:expr, $data:expr) => {{
        let core =
            ctr::CtrCore::<$aes, ctr::flavors::Ctr128BE>::inner_iv_init($key.clone(), $iv.into());
        ctr::cipher::StreamCipherCoreWrapper::from_core(core).apply_keystream($data);
    }};
}

impl AesKey {
    pub(crate) fn new(key: &[u8]) -> Result<AesKey, SrtpError> {
        let bad = || SrtpError::BadKeyLength {
            what: "AES key",
            want: 16,
            got: key.len(),
        };
        Ok(match key.len() {
            16 => AesKey::A128(aes::Aes128Enc::new_from_slice(key).map_err(|_| bad())?),
            24 => AesKey::A192(aes::Aes192Enc::new_from_slice(key).map_err(|_| bad())?),
            32 => AesKey::A256(aes::Aes256Enc::new_from_slice(key).map_err(|_| bad())?),
            _ => return Err(bad()),
        })
    }

    /// XORs `data` with the AES-CTR keystream that starts at counter block `iv` (the counter is
    /// the whole block, big-endian, as RFC 3711 §4.1.1 says).
    pub(crate) fn ctr_xor(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            AesKey::A128(k) => ctr_xor!(aes::Aes128Enc, k, iv, data),
            AesKey::A192(k) => ctr_xor!(aes::Aes192Enc, k, iv, data),
            AesKey::A256(k) => ctr_xor!(aes::Aes256Enc, k, iv, data),
        }
    }
}

/// AES-128 in f8-mode (RFC 3711 §4.1.2.1): the session key for the keystream, and the session
/// key XOR the mask m (the session salt padded with 0x55 octets to the key's length) that
/// encrypts the IV into IV'.
#[derive(Clone)]
pub(crate) struct F8Key {
    aes: aes::Aes128Enc,
    masked: aes::Aes128Enc,
}

impl F8Key {
    pub(crate) fn new(key: &[u8], salt: &[u8]) -> Result<F8Key, SrtpError> {
        let bad = |what, want: usize, got: usize| SrtpError::BadKeyLength { what, want, got };
        let key: [u8; 16] = key
            .try_into()
            .map_err(|_| bad("AES-f8 key", 16, key.len()))?;
        if salt.len() > key.len() {
            return Err(bad("AES-f8 salt", 14, salt.len()));
        }
        let mut masked = [0x55u8; 16];
        masked[..salt.len()].copy_from_slice(salt);
        for (m, k) in masked.iter_mut().zip(key) {
            *m ^= k;
        }
        Ok(F8Key {
            aes: aes::Aes128Enc::new(&key.into()),
            masked: aes::Aes128Enc::new(&masked.into()),
        })
    }

    /// XORs `data` with the f8 keystream of `iv`: IV' = E(k_e XOR m, IV), S(-1) = 0,
    /// S(j) = E(k_e, IV' XOR j XOR S(j-1)), j counting 128-bit blocks from 0.
    pub(crate) fn xor(&self, iv: &[u8; 16], data: &mut [u8]) {
        let mut iv_prime = aes::Block::from(*iv);
        self.masked.encrypt_block(&mut iv_prime);
        let mut s = aes::Block::default();
        for (j, chunk) in data.chunks_mut(16).enumerate() {
            let j = (j as u128).to_be_bytes();
            for ((s, v), j) in s.iter_mut().zip(iv_prime.iter()).zip(j) {
                *s ^= v ^ j;
            }
            self.aes.encrypt_block(&mut s);
            for (d, k) in chunk.iter_mut().zip(s.iter()) {
                *d ^= k;
            }
        }
    }
}

/// A keyed HMAC-SHA1; each tag starts from a copy of the keyed state.
#[derive(Clone)]
pub(crate) struct HmacSha1(Hmac<Sha1>);

impl HmacSha1 {
    pub(crate) fn new(key: &[u8]) -> HmacSha1 {
        HmacSha1(<Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length"))
    }

    /// HMAC-SHA1 over the concatenation of `parts`.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

/// An AES-GCM key with a 16-byte tag (RFC 7714).
#[derive(Clone)]
pub(crate) enum Gcm {
    A128(Box<aes_gcm::Aes128Gcm>),
    A256(Box<aes_gcm::Aes256Gcm>),
}

impl Gcm {
    pub(crate) fn new(key: &[u8]) -> Result<Gcm, SrtpError> {
        let bad = || SrtpError::BadKeyLength {
            what: "AES-GCM key",
            want: 16,
            got: key.len(),
        };
        Ok(match key.len() {
            16 => Gcm::A128(Box::new(
                aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| bad())?,
            )),
            32 => Gcm::A256(Box::new(
                aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| bad())?,
            )),
            _ => return Err(bad()),
        })
    }

    /// Encrypts `data` in place and returns the tag.
    pub(crate) fn seal(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let nonce = aes_gcm::Nonce::from_slice(iv);
        let tag = match self {
            Gcm::A128(k) => k.encrypt_in_place_detached(nonce, aad, data),
            Gcm::A256(k) => k.encrypt_in_place_detached(nonce, aad, data),
        };
        // The only error is a plaintext longer than GCM allows (64 GiB), not a packet.
        tag.map(Into::into).unwrap_or([0; 16])
    }

    /// Checks `tag` and decrypts `data` in place; on failure `data` is left as it was.
    pub(crate) fn open(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), SrtpError> {
        if tag.len() != 16 {
            return Err(SrtpError::AuthFailed);
        }
        let nonce = aes_gcm::Nonce::from_slice(iv);
        let tag = aes_gcm::Tag::from_slice(tag);
        match self {
            Gcm::A128(k) => k.decrypt_in_place_detached(nonce, aad, data, tag),
            Gcm::A256(k) => k.decrypt_in_place_detached(nonce, aad, data, tag),
        }
        .map_err(|_| SrtpError::AuthFailed)
    }
}

/// Compares two tags in time that does not depend on where they differ.
pub(crate) fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
