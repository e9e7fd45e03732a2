//! G.711 µ-law (PCMU, PT 0) and A-law (PCMA, PT 8): 256-entry decode tables built at compile time, and the
//! matching encoders (used to make test tones and by tools that feed the spool).

/// Decodes one µ-law byte into a 16-bit linear sample.
const fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let mantissa = (u & 0x0f) as i32;
    let exponent = ((u & 0x70) >> 4) as i32;
    let magnitude = ((mantissa << 3) + 0x84) << exponent;
    if u & 0x80 != 0 {
        (0x84 - magnitude) as i16
    } else {
        (magnitude - 0x84) as i16
    }
}

/// Decodes one A-law byte into a 16-bit linear sample.
const fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mantissa = (a & 0x0f) as i32;
    let segment = ((a & 0x70) >> 4) as i32;
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        1 => (mantissa << 4) + 0x108,
        s => ((mantissa << 4) + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_to_linear(i as u8)
        } else {
            ulaw_to_linear(i as u8)
        };
        i += 1;
    }
    t
}

/// µ-law byte → linear sample.
pub static ULAW_TABLE: [i16; 256] = table(false);
/// A-law byte → linear sample.
pub static ALAW_TABLE: [i16; 256] = table(true);

/// The codecs this recorder can turn into audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    /// Finds a codec by its SDP encoding name and clock rate (`PCMU/8000`, `PCMA/8000`).
    pub fn from_name(encoding: &str, clock_rate: u32) -> Option<Codec> {
        if clock_rate != 8000 {
            return None;
        }
        if encoding.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if encoding.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// The static payload types of RFC 3551 that need no SDP.
    pub fn from_static_pt(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// Samples per second.
    pub fn clock_rate(self) -> u32 {
        8000
    }

    /// Appends the decoded samples of `payload` (one sample per byte).
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        let t = match self {
            Codec::Pcmu => &ULAW_TABLE,
            Codec::Pcma => &ALAW_TABLE,
        };
        out.extend(payload.iter().map(|&b| t[usize::from(b)]));
    }

    /// Encodes one linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => encode_ulaw(sample),
            Codec::Pcma => encode_alaw(sample),
        }
    }
}

/// Encodes a linear sample as µ-law (bias 0x84, clipped at 32635).
pub fn encode_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let s = i32::from(sample);
    let (sign, mag) = if s < 0 { (0x80u8, -s) } else { (0, s) };
    let mag = mag.min(CLIP) + BIAS;
    let exponent = (0..8u32)
        .rev()
        .find(|&e| mag & (0x80 << e) != 0)
        .unwrap_or(0);
    let mantissa = ((mag >> (exponent + 3)) & 0x0f) as u8;
    !(sign | ((exponent as u8) << 4) | mantissa)
}

/// Encodes a linear sample as A-law.
pub fn encode_alaw(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (sign, mag) = if s >= 0 { (0x80u8, s) } else { (0, -s - 1) };
    let mag = mag.min(32767) >> 3; // 13-bit magnitude
    let code = if mag < 32 {
        (mag >> 1) as u8
    } else {
        let segment = (1..8u32).rev().find(|&seg| mag >= (16 << seg)).unwrap_or(1);
        ((segment as u8) << 4) | (((mag >> segment) & 0x0f) as u8)
    };
    (sign | code) ^ 0x55
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // Values from the G.711 µ-law decision table (full scale ±32124, both zeros).
        assert_eq!(ULAW_TABLE[0x00], -32124);
        assert_eq!(ULAW_TABLE[0x80], 32124);
        assert_eq!(ULAW_TABLE[0xff], 0);
        assert_eq!(ULAW_TABLE[0x7f], 0);
        assert_eq!(ULAW_TABLE[0xfe], 8);
        assert_eq!(ULAW_TABLE[0x7e], -8);
        assert_eq!(ULAW_TABLE[0xef], 132);
        assert_eq!(ULAW_TABLE[0x0f], -16764);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(ALAW_TABLE[0xd5], 8);
        assert_eq!(ALAW_TABLE[0x55], -8);
        assert_eq!(ALAW_TABLE[0xaa], 32256);
        assert_eq!(ALAW_TABLE[0x2a], -32256);
        assert_eq!(ALAW_TABLE[0xc5], 264);
        assert_eq!(ALAW_TABLE[0xd4], 24);
    }

    #[test]
    fn tables_are_odd_symmetric() {
        for b in 0..=255u8 {
            assert_eq!(
                ULAW_TABLE[usize::from(b)],
                -ULAW_TABLE[usize::from(b ^ 0x80)]
            );
            assert_eq!(
                ALAW_TABLE[usize::from(b)],
                -ALAW_TABLE[usize::from(b ^ 0x80)]
            );
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        for b in 0..=255u8 {
            let u = ULAW_TABLE[usize::from(b)];
            // 0x7f and 0xff both decode to 0; the encoder picks 0xff.
            let want = if b == 0x7f { 0xff } else { b };
            assert_eq!(encode_ulaw(u), want, "ulaw byte {b:#04x}");
            let a = ALAW_TABLE[usize::from(b)];
            assert_eq!(encode_alaw(a), b, "alaw byte {b:#04x}");
        }
    }

    #[test]
    fn encode_error_is_small() {
        for s in (-32000i32..32000).step_by(37) {
            let s = s as i16;
            let u = ULAW_TABLE[usize::from(encode_ulaw(s))];
            let a = ALAW_TABLE[usize::from(encode_alaw(s))];
            let tol = (i32::from(s).abs() / 16).max(16);
            assert!(
                (i32::from(u) - i32::from(s)).abs() <= tol,
                "ulaw {s} -> {u}"
            );
            assert!(
                (i32::from(a) - i32::from(s)).abs() <= tol,
                "alaw {s} -> {a}"
            );
        }
    }

    #[test]
    fn codec_lookup() {
        assert_eq!(Codec::from_name("pcmu", 8000), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("PCMA", 8000), Some(Codec::Pcma));
        assert_eq!(Codec::from_name("PCMA", 16000), None);
        assert_eq!(Codec::from_name("opus", 48000), None);
        assert_eq!(Codec::from_static_pt(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_static_pt(18), None);
    }
}
