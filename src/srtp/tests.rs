//! Known-answer vectors (RFC 3711 Appendix B including the AES-f8 one, RFC 6188 §7, RFC 7714 §16 and §17, libsrtp's
//! validation packet), round trips over every suite, and hostile input.

use super::context::{Params, SrtpContext};
use super::error::SrtpError;
use super::kdf::{derive, prf, SessionKeys};
use super::primitive::{AesKey, F8Key};
use super::suite::Suite;
use super::transform::{
    cm_iv, f8_rtcp_iv, f8_rtp_iv, rtcp_protect, rtp_parts, rtp_protect, rtp_unprotect, Layout,
    Transform,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(s.len() % 2 == 0, "odd hex: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn keystream(key: &str, iv: &str, len: usize) -> Vec<u8> {
    let k = AesKey::new(&hex(key)).expect("key");
    let iv: [u8; 16] = hex(iv).try_into().expect("16 bytes");
    let mut out = vec![0u8; len];
    k.ctr_xor(&iv, &mut out);
    out
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().expect("14");
    // With SSRC and index zero the IV is the shifted salt, the RFC's "offset".
    assert_eq!(
        cm_iv(&salt, 0, 0).to_vec(),
        hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
    );
    let ks = keystream(
        "2B7E151628AED2A6ABF7158809CF4F3C",
        "F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000",
        65282 * 16,
    );
    assert_eq!(
        ks[..48],
        hex("E03EAD0935C95E80E166B16DD92B4EB4
             D23513162B02D0F72A43A2FE4A5F97AB
             41E95B3BB0A2E8DD477901E4FCA894C0")
    );
    assert_eq!(
        ks[ks.len() - 48..],
        hex("EC8CDF7398607CB0F2D21675EA9EA1E4
             362B7C3C6773516318A077D7FC5073AE
             6A2CC3787889374FBEB4C81B17BA6C44")
    );
}

#[test]
fn rfc3711_b3_key_derivation() {
    let key = AesKey::new(&hex("E1F97A0D3E018BE0D64FA32C06DE4139")).expect("key");
    let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
    let mut cipher_key = [0u8; 16];
    prf(&key, &salt, 0x00, &mut cipher_key);
    assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut cipher_salt = [0u8; 14];
    prf(&key, &salt, 0x02, &mut cipher_salt);
    assert_eq!(cipher_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 94];
    prf(&key, &salt, 0x01, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex(
            "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
        )
    );
    // The same through the suite: 20 bytes of auth key for HMAC-SHA1.
    let (rtp, _) = derive(
        Suite::AesCm128HmacSha1_80,
        &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
        &salt,
    )
    .expect("lengths");
    assert_eq!(rtp.encryption, hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(rtp.salt, hex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(rtp.auth, auth[..20].to_vec());
}

#[test]
fn rfc6188_7_1_aes_256_cm_keystream() {
    let ks = keystream(
        "57f82fe3613fd170a85ec93c40b1f092 2ec4cb0dc025b58272147cc438944a98",
        "f0f1f2f3f4f5f6f7f8f9fafbfcfd0000",
        48,
    );
    assert_eq!(
        ks,
        hex("92bdd28a93c3f52511c677d08b5515a4
             9da71b2378a854f67050756ded165bac
             63c4868b7096d88421b563b8c94c9a31")
    );
}

#[test]
fn rfc6188_7_2_and_7_4_key_derivation_with_aes_256_and_192() {
    let (k, _) = derive(
        Suite::Aes256CmHmacSha1_80,
        &hex("f0f04914b513f2763a1b1fa130f10e29 98f6f6e43e4309d1e622a0e332b9f1b6"),
        &hex("3b04803de51ee7c96423ab5b78d2"),
    )
    .expect("lengths");
    assert_eq!(
        k.encryption,
        hex("5ba1064e30ec51613cad926c5a28ef73 1ec7fb397f70a960653caf06554cd8c4")
    );
    assert_eq!(k.salt, hex("fa31791685ca444a9e07c6c64e93"));
    assert_eq!(k.auth, hex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05"));

    let (k, _) = derive(
        Suite::Aes192CmHmacSha1_32,
        &hex("73edc66c4fa15776fb57f9505c171365 50ffda71f3e8e5f1"),
        &hex("c8522f3acd4ce86d5add78edbb11"),
    )
    .expect("lengths");
    assert_eq!(
        k.encryption,
        hex("31874736a8f1143870c26e4857d8a5b2 c4a354407faadabb")
    );
    assert_eq!(k.salt, hex("2372b82d639b6d8503a47adc0a6c"));
    assert_eq!(k.auth, hex("355b10973cd95b9eacf4061c7e1a7151e7cfbfcb"));
}

const CM_MASTER_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
const CM_MASTER_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

/// RFC 3711 Appendix B.1, the AES-f8 vector: its salt is 4 octets, padded with 0x55 into the
/// mask m like the 14-octet session salt of the suites.
const F8_KEY: &str = "234829008467be186c3de14aae72d62c";
const F8_SALT: &str = "32f2870d";
const F8_HEADER: &str = "806e5cba50681de55c621599";
const F8_PLAIN: &str =
    "70736575646f72616e646f6d6e657373 20697320746865206e65787420626573 74207468696e67";
const F8_CIPHER: &str =
    "019ce7a26e7854014a6366aa95d4eefd 1ad4172a14f9faf455b7f1d4b62bd08f 562c0eef7c4802";

#[test]
fn rfc3711_aes_f8_keystream() {
    let k = F8Key::new(&hex(F8_KEY), &hex(F8_SALT)).expect("key");
    let iv: [u8; 16] = hex("006e5cba50681de55c621599d462564a")
        .try_into()
        .expect("16");
    let mut data = hex(F8_PLAIN);
    k.xor(&iv, &mut data);
    assert_eq!(data, hex(F8_CIPHER));
    k.xor(&iv, &mut data);
    assert_eq!(data, hex(F8_PLAIN));
    assert!(F8Key::new(&hex(F8_KEY)[..15], &hex(F8_SALT)).is_err());
    assert!(F8Key::new(&hex(F8_KEY), &[0; 17]).is_err());
}

#[test]
fn rfc3711_aes_f8_rtp_packet() {
    let header: [u8; 12] = hex(F8_HEADER).try_into().expect("12");
    let index = (0xd462_564a_u64 << 16) | 0x5cba;
    assert_eq!(
        f8_rtp_iv(&header, index).to_vec(),
        hex("006e5cba50681de55c621599d462564a")
    );
    let keys = SessionKeys {
        encryption: hex(F8_KEY),
        salt: hex(F8_SALT),
        auth: vec![7; 20],
    };
    let t = Transform::new(Suite::F8_128HmacSha1_80, &keys).expect("transform");
    let l = Layout {
        mki: &[],
        rtp_tag: 10,
        rtcp_tag: 10,
        encrypt_rtp: true,
        encrypt_rtcp: true,
    };
    let plain = [hex(F8_HEADER), hex(F8_PLAIN)].concat();
    let mut buf = plain.clone();
    buf.resize(plain.len() + 10, 0);
    let end = rtp_protect(&t, &l, &mut buf, 12, plain.len(), 0x5c62_1599, index);
    assert_eq!(end, plain.len() + 10);
    assert_eq!(
        buf[..plain.len()],
        [hex(F8_HEADER), hex(F8_CIPHER)].concat()
    );
    let parts = rtp_parts(&t, &l, end).expect("parts");
    let len = rtp_unprotect(&t, &l, &mut buf, parts, 12, 0x5c62_1599, index).expect("auth");
    assert_eq!(buf[..len], plain);
}

/// SRTP and SRTCP under F8_128_HMAC_SHA1_80 from master key and salt, as rtpengine's Perl test
/// client (NGCP::Rtpclient::SRTP, an implementation of its own) protects them: key derivation,
/// both IVs, the E flag and the tags together.
#[test]
fn f8_packets_match_rtpengines_test_client() {
    let (rtp, rtcp) = derive(
        Suite::F8_128HmacSha1_80,
        &hex("000102030405060708090a0b0c0d0e0f"),
        &hex("101112131415161718191a1b1c1d"),
    )
    .expect("keys");
    let l = Layout {
        mki: &[],
        rtp_tag: 10,
        rtcp_tag: 10,
        encrypt_rtp: true,
        encrypt_rtcp: true,
    };
    let t = Transform::new(Suite::F8_128HmacSha1_80, &rtp).expect("transform");
    let mut buf = hex("800003e8 00027100 12345678");
    buf.extend((0..50u8).map(|i| i.wrapping_mul(7)));
    let len = buf.len();
    buf.resize(len + 10, 0);
    let end = rtp_protect(&t, &l, &mut buf, 12, len, 0x1234_5678, 1000);
    assert_eq!(
        buf[..end],
        hex(
            "800003e80002710012345678c574e7768336c09e85f8453776e3654260c908b1d9bdd9ff2315
             9726840279049c566600df63613353e6f6c0bc7386ab69f3eeebee55689700edb218"
        )
    );
    let t = Transform::new(Suite::F8_128HmacSha1_80, &rtcp).expect("transform");
    let mut buf = hex("80c90001 12345678 81ca0002 01020304 01036162");
    let len = buf.len();
    buf.resize(len + 14, 0);
    let end = rtcp_protect(&t, &l, &mut buf, len, 0x1234_5678, 5);
    assert_eq!(
        buf[..end],
        hex("80c9000112345678f1e0cb2a41c9d00cf1571ee98000000585c96ec00cbb9e328f60")
    );
}

#[test]
fn the_f8_srtcp_iv_is_the_index_word_with_e_then_the_rtcp_header() {
    let header: [u8; 8] = hex("80c80006 deadbeef").try_into().expect("8");
    assert_eq!(
        f8_rtcp_iv(&header, 0x0123_4567).to_vec(),
        hex("00000000 81234567 80c80006 deadbeef")
    );
}

#[test]
fn f8_and_cm_with_the_same_keys_encrypt_differently() {
    let plain = rtp_packet(5, 6, 64);
    let mut cm = SrtpContext::new(&material(Suite::AesCm128HmacSha1_80, 4)).expect("ctx");
    let mut f8 = SrtpContext::new(&material(Suite::F8_128HmacSha1_80, 4)).expect("ctx");
    let a = protect_rtp(&mut cm, &plain).expect("protect");
    let b = protect_rtp(&mut f8, &plain).expect("protect");
    assert_eq!(a[..12], b[..12]);
    assert_ne!(a[12..76], b[12..76]);
    // The first keystream block differs too (f8's IV' is not CM's counter block).
    assert_ne!(a[12..28], b[12..28]);
}

fn cm_context() -> SrtpContext {
    SrtpContext::new(&Params::new(
        Suite::AesCm128HmacSha1_80,
        &hex(CM_MASTER_KEY),
        &hex(CM_MASTER_SALT),
    ))
    .expect("context")
}

/// Protects `plain` with `ctx` in a buffer with room for the trailer.
fn protect_rtp(ctx: &mut SrtpContext, plain: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.rtp_overhead(), 0);
    let n = ctx.protect_rtp(&mut buf, plain.len())?;
    buf.truncate(n);
    Ok(buf)
}

fn protect_rtcp(ctx: &mut SrtpContext, plain: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.rtcp_overhead(), 0);
    let n = ctx.protect_rtcp(&mut buf, plain.len())?;
    buf.truncate(n);
    Ok(buf)
}

fn unprotect_rtp(ctx: &mut SrtpContext, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = ctx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn unprotect_rtcp(ctx: &mut SrtpContext, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = ctx.unprotect_rtcp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// libsrtp's validation packets (the RFC 3711 B.3 master key): SRTP and SRTCP with
/// AES_CM_128_HMAC_SHA1_80, from master key to wire bytes.
#[test]
fn aes_cm_128_sha1_80_packets_match_libsrtp() {
    let plain = hex("800f1234 decafbad cafebabe abababab abababab abababab abababab");
    let wire = hex(
        "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb",
    );
    assert_eq!(protect_rtp(&mut cm_context(), &plain), Ok(wire.clone()));
    let mut rx = cm_context();
    assert_eq!(unprotect_rtp(&mut rx, &wire), Ok(plain));
    assert_eq!(
        unprotect_rtp(&mut rx, &wire),
        Err(SrtpError::Replay { index: 0x1234 })
    );

    let plain = hex("81c8000b cafebabe abababab abababab abababab abababab");
    let wire = hex(
        "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123 0798",
    );
    let mut tx = cm_context();
    tx.set_rtcp_index(0xcafebabe, 1);
    assert_eq!(protect_rtcp(&mut tx, &plain), Ok(wire.clone()));
    let mut rx = cm_context();
    assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain));
    assert_eq!(
        unprotect_rtcp(&mut rx, &wire),
        Err(SrtpError::Replay { index: 1 })
    );
}

const GCM_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const GCM_KEY_256: &str = "000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f";
const GCM_SALT: &str = "517569642070726f2071756f";
const GCM_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
                       69736120 696e2070 61727465 73207472 6573";
const GCM_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
                        deadbeef deadbeef deadbeef deadbeef deadbeef";

/// RFC 7714's vectors give the session key and salt, not a master key.
fn gcm_context(suite: Suite, key: &str, unencrypted_srtcp: bool) -> SrtpContext {
    let keys = SessionKeys {
        encryption: hex(key),
        salt: hex(GCM_SALT),
        auth: Vec::new(),
    };
    let mut p = Params::new(suite, &[], &[]);
    p.unencrypted_srtcp = unencrypted_srtcp;
    SrtpContext::with_session_keys(&p, &keys, &keys).expect("context")
}

#[test]
fn rfc7714_16_srtp_aead_aes_128_and_256_gcm() {
    for (suite, key, wire) in [
        (
            Suite::AeadAes128Gcm,
            GCM_KEY_128,
            "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f
             42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
        ),
        (
            Suite::AeadAes256Gcm,
            GCM_KEY_256,
            "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238 9a58e2f3
             b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13",
        ),
    ] {
        let (plain, wire) = (hex(GCM_RTP), hex(wire));
        let mut tx = gcm_context(suite, key, false);
        assert_eq!(protect_rtp(&mut tx, &plain), Ok(wire.clone()), "{suite}");
        let mut rx = gcm_context(suite, key, false);
        assert_eq!(unprotect_rtp(&mut rx, &wire), Ok(plain), "{suite}");
    }
}

#[test]
fn rfc7714_17_srtcp_aead_aes_gcm_encrypted_and_authenticated_only() {
    for (suite, key, unencrypted, wire) in [
        (
            Suite::AeadAes128Gcm,
            GCM_KEY_128,
            false,
            "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1
             730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4",
        ),
        (
            Suite::AeadAes256Gcm,
            GCM_KEY_256,
            false,
            "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50 a2eaa5c1
             110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4",
        ),
        (
            Suite::AeadAes128Gcm,
            GCM_KEY_128,
            true,
            "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef
             deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4",
        ),
        (
            Suite::AeadAes256Gcm,
            GCM_KEY_256,
            true,
            "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef
             deadbeef deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4",
        ),
    ] {
        let (plain, wire) = (hex(GCM_RTCP), hex(wire));
        let mut tx = gcm_context(suite, key, unencrypted);
        tx.set_rtcp_index(0x4d617273, 0x5d4);
        assert_eq!(protect_rtcp(&mut tx, &plain), Ok(wire.clone()), "{suite}");
        let mut rx = gcm_context(suite, key, unencrypted);
        assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain), "{suite}");
        // A flipped bit anywhere fails (the SRTCP index word and the clear header included).
        for i in 0..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 0x01;
            let mut rx = gcm_context(suite, key, unencrypted);
            assert!(unprotect_rtcp(&mut rx, &bad).is_err(), "{suite} byte {i}");
        }
    }
}

fn rtp_packet(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(7) ^ seq as u8));
    p
}

fn rtcp_packet(ssrc: u32) -> Vec<u8> {
    // An empty receiver report then an SDES chunk-ish body: content does not matter here.
    let mut p = vec![0x80, 201, 0x00, 0x01];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x81, 202, 0x00, 0x02, 1, 2, 3, 4, 1, 3, b'a', b'b']);
    p
}

fn material(suite: Suite, seed: u8) -> Params {
    let key: Vec<u8> = (0..suite.master_key_len() as u8)
        .map(|i| i ^ seed)
        .collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8)
        .map(|i| i.wrapping_mul(3) ^ seed)
        .collect();
    Params::new(suite, &key, &salt)
}

#[test]
fn every_suite_round_trips_rtp_and_rtcp_and_refuses_tampering_and_replay() {
    for suite in Suite::ALL {
        for mki in [vec![], vec![0, 0, 0, 7]] {
            let mut p = material(suite, 0x5a);
            p.mki = mki.clone();
            let mut tx = SrtpContext::new(&p).expect("context");
            let mut rx = SrtpContext::new(&p).expect("context");
            let plain = rtp_packet(1000, 0x1234_5678, 160);
            let wire = protect_rtp(&mut tx, &plain).expect("protect");
            assert_eq!(wire.len(), plain.len() + suite.rtp_tag_len() + mki.len());
            if suite.session_key_len() == 0 {
                assert_eq!(
                    wire[12..172],
                    plain[12..],
                    "{suite}: NULL leaves the payload"
                );
            } else {
                assert_ne!(wire[12..172], plain[12..], "{suite}: payload encrypted");
            }
            // Every single-bit change is refused and leaves no state behind.
            for i in 0..wire.len() {
                let mut bad = wire.clone();
                bad[i] ^= 0x10;
                assert!(unprotect_rtp(&mut rx, &bad).is_err(), "{suite} byte {i}");
            }
            assert_eq!(rx.ssrc_count(), 0, "{suite}: forged packets made state");
            assert_eq!(unprotect_rtp(&mut rx, &wire), Ok(plain.clone()), "{suite}");
            assert!(
                matches!(unprotect_rtp(&mut rx, &wire), Err(SrtpError::Replay { .. })),
                "{suite}"
            );

            let plain = rtcp_packet(0x1234_5678);
            let wire = protect_rtcp(&mut tx, &plain).expect("protect");
            assert_eq!(
                wire.len(),
                plain.len() + 4 + suite.rtcp_tag_len() + mki.len()
            );
            for i in 0..wire.len() {
                let mut bad = wire.clone();
                bad[i] ^= 0x10;
                assert!(unprotect_rtcp(&mut rx, &bad).is_err(), "{suite} byte {i}");
            }
            assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain), "{suite}");
            assert!(
                matches!(
                    unprotect_rtcp(&mut rx, &wire),
                    Err(SrtpError::Replay { .. })
                ),
                "{suite}"
            );
        }
    }
}

#[test]
fn a_wrong_key_fails_authentication() {
    for suite in Suite::ALL {
        let mut tx = SrtpContext::new(&material(suite, 1)).expect("context");
        let mut rx = SrtpContext::new(&material(suite, 2)).expect("context");
        let wire = protect_rtp(&mut tx, &rtp_packet(1, 9, 160)).expect("protect");
        assert_eq!(
            unprotect_rtp(&mut rx, &wire),
            Err(SrtpError::AuthFailed),
            "{suite}"
        );
        let wire = protect_rtcp(&mut tx, &rtcp_packet(9)).expect("protect");
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire),
            Err(SrtpError::AuthFailed),
            "{suite}"
        );
    }
}

#[test]
fn the_rollover_counter_follows_the_sequence_wrap_and_late_packets() {
    for suite in [Suite::AesCm128HmacSha1_32, Suite::AeadAes128Gcm] {
        let p = material(suite, 3);
        let mut tx = SrtpContext::new(&p).expect("context");
        let mut rx = SrtpContext::new(&p).expect("context");
        let seqs = [65530u16, 65533, 65535, 0, 2, 1, 65534, 3];
        let wires: Vec<_> = seqs
            .iter()
            .map(|&s| protect_rtp(&mut tx, &rtp_packet(s, 77, 20)).expect("protect"))
            .collect();
        for (s, w) in seqs.iter().zip(&wires) {
            assert_eq!(
                unprotect_rtp(&mut rx, w),
                Ok(rtp_packet(*s, 77, 20)),
                "{suite} seq {s}"
            );
        }
        assert_eq!(rx.received_roc(77), Some(1));
        // A packet sent under ROC 1 does not authenticate under ROC 0: the ROC is in the tag/IV.
        let mut fresh = SrtpContext::new(&p).expect("context");
        assert_eq!(
            unprotect_rtp(&mut fresh, &wires[4]),
            Err(SrtpError::AuthFailed)
        );
    }
}

#[test]
fn session_parameters_change_what_is_encrypted_and_authenticated() {
    let mut p = material(Suite::AesCm128HmacSha1_80, 4);
    p.unencrypted_srtp = true;
    p.unencrypted_srtcp = true;
    p.unauthenticated_srtp = true;
    let mut tx = SrtpContext::new(&p).expect("context");
    let mut rx = SrtpContext::new(&p).expect("context");
    let plain = rtp_packet(5, 6, 40);
    let wire = protect_rtp(&mut tx, &plain).expect("protect");
    assert_eq!(wire, plain, "no encryption, no tag");
    assert_eq!(unprotect_rtp(&mut rx, &wire), Ok(plain));
    let plain = rtcp_packet(6);
    let wire = protect_rtcp(&mut tx, &plain).expect("protect");
    assert_eq!(wire[..plain.len()], plain[..], "RTCP in clear");
    assert_eq!(wire[plain.len()] & 0x80, 0, "E flag clear");
    assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain));

    // NULL: E flag set as negotiated, nothing encrypted.
    let mut tx = SrtpContext::new(&material(Suite::NullHmacSha1_32, 4)).expect("context");
    let plain = rtcp_packet(6);
    let wire = protect_rtcp(&mut tx, &plain).expect("protect");
    assert_eq!(wire[..plain.len()], plain[..]);
    assert_eq!(wire[plain.len()] & 0x80, 0x80);

    // AEAD suites cannot drop encryption or authentication.
    for (unenc, unauth) in [(true, false), (false, true)] {
        let mut p = material(Suite::AeadAes256Gcm, 4);
        p.unencrypted_srtp = unenc;
        p.unauthenticated_srtp = unauth;
        assert!(matches!(
            SrtpContext::new(&p),
            Err(SrtpError::UnsupportedParam { .. })
        ));
    }
}

#[test]
fn bad_parameters_are_refused() {
    assert!(matches!(
        SrtpContext::new(&Params::new(Suite::AesCm128HmacSha1_80, &[0; 15], &[0; 14])),
        Err(SrtpError::BadKeyLength {
            want: 16,
            got: 15,
            ..
        })
    ));
    assert!(matches!(
        SrtpContext::new(&Params::new(Suite::AeadAes128Gcm, &[0; 16], &[0; 14])),
        Err(SrtpError::BadKeyLength {
            want: 12,
            got: 14,
            ..
        })
    ));
    let mut p = material(Suite::AesCm128HmacSha1_80, 0);
    p.replay_window = 100;
    assert!(matches!(
        SrtpContext::new(&p),
        Err(SrtpError::BadWindow(100))
    ));
    p.replay_window = 64;
    p.mki = vec![0; 129];
    assert!(matches!(
        SrtpContext::new(&p),
        Err(SrtpError::BadMki { .. })
    ));
}

#[test]
fn a_context_tracks_a_bounded_number_of_ssrcs() {
    let mut p = material(Suite::AesCm128HmacSha1_80, 0);
    p.max_ssrcs = 2;
    let mut tx = SrtpContext::new(&p).expect("context");
    let mut rx = SrtpContext::new(&p).expect("context");
    for ssrc in [1u32, 2] {
        let w = protect_rtp(&mut tx, &rtp_packet(1, ssrc, 10)).expect("protect");
        unprotect_rtp(&mut rx, &w).expect("unprotect");
    }
    assert_eq!(
        protect_rtp(&mut tx, &rtp_packet(1, 3, 10)),
        Err(SrtpError::TooManySsrcs { limit: 2 })
    );
    let mut other = SrtpContext::new(&material(Suite::AesCm128HmacSha1_80, 0)).expect("ctx");
    let w = protect_rtp(&mut other, &rtp_packet(1, 3, 10)).expect("protect");
    assert_eq!(
        unprotect_rtp(&mut rx, &w),
        Err(SrtpError::TooManySsrcs { limit: 2 })
    );
}

#[test]
fn hostile_input_gets_errors_not_panics() {
    for suite in Suite::ALL {
        let mut p = material(suite, 9);
        p.mki = vec![1, 2];
        let mut tx = SrtpContext::new(&p).expect("context");
        let mut rx = SrtpContext::new(&p).expect("context");
        let wire = protect_rtp(&mut tx, &rtp_packet(7, 8, 30)).expect("protect");
        let rtcp = protect_rtcp(&mut tx, &rtcp_packet(8)).expect("protect");
        for cut in 0..wire.len() {
            assert!(
                unprotect_rtp(&mut rx, &wire[..cut]).is_err(),
                "{suite} {cut}"
            );
        }
        for cut in 0..rtcp.len() {
            assert!(
                unprotect_rtcp(&mut rx, &rtcp[..cut]).is_err(),
                "{suite} {cut}"
            );
        }
        // A header whose CSRC count and extension length claim more than there is.
        let mut lie = wire.clone();
        lie[0] = 0x9f;
        assert!(unprotect_rtp(&mut rx, &lie).is_err());
        let mut lie = rtp_packet(8, 8, 0);
        lie[0] = 0x90;
        lie.extend_from_slice(&[0xbe, 0xde, 0xff, 0xff]);
        assert!(matches!(
            protect_rtp(&mut tx, &lie),
            Err(SrtpError::BadHeader)
        ));
        // No room for the tag, a length past the buffer, version 1, and noise.
        let plain = rtp_packet(9, 8, 30);
        let mut tight = plain.clone();
        assert!(matches!(
            tx.protect_rtp(&mut tight, plain.len()),
            Err(SrtpError::BufferTooSmall { .. })
        ));
        assert!(tx.protect_rtp(&mut tight, usize::MAX).is_err());
        assert!(tx.protect_rtcp(&mut tight, usize::MAX).is_err());
        let mut v1 = plain.clone();
        v1[0] = 0x40;
        v1.resize(200, 0);
        assert_eq!(
            tx.protect_rtp(&mut v1, plain.len()),
            Err(SrtpError::BadVersion)
        );
        let mut x = 0x1234_5678u32;
        for len in 0..200usize {
            let mut noise: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if let Some(b) = noise.first_mut() {
                *b = 0x80 | (*b & 0x3f);
            }
            assert!(rx.unprotect_rtp(&mut noise.clone()).is_err());
            assert!(rx.unprotect_rtcp(&mut noise).is_err());
        }
        // A packet with another MKI.
        let mut other = wire.clone();
        let mki_at = match suite.cipher() {
            super::CipherKind::AesGcm => other.len() - 2,
            _ => other.len() - suite.rtp_tag_len() - 2,
        };
        other[mki_at] ^= 0xff;
        assert_eq!(unprotect_rtp(&mut rx, &other), Err(SrtpError::UnknownMki));
    }
}
