//! Payload types of an RTP media section: what each one is (from `a=rtpmap` or the static
//! table), and which ones a codec filter removes.

use crate::sdp::model::Media;

/// Static payload types (RFC 3551 section 6) with the `a=rtpmap` text we generate for them.
const STATIC_PTS: &[(u8, &str)] = &[
    (0, "PCMU/8000"),
    (3, "GSM/8000"),
    (4, "G723/8000"),
    (5, "DVI4/8000"),
    (6, "DVI4/16000"),
    (7, "LPC/8000"),
    (8, "PCMA/8000"),
    (9, "G722/8000"),
    (10, "L16/44100/2"),
    (11, "L16/44100"),
    (12, "QCELP/8000"),
    (13, "CN/8000"),
    (14, "MPA/90000"),
    (15, "G728/8000"),
    (16, "DVI4/11025"),
    (17, "DVI4/22050"),
    (18, "G729/8000"),
    (25, "CelB/90000"),
    (26, "JPEG/90000"),
    (28, "nv/90000"),
    (31, "H261/90000"),
    (32, "MPV/90000"),
    (33, "MP2T/90000"),
    (34, "H263/90000"),
];

/// The rtpmap text of a static payload type.
pub fn static_rtpmap(pt: u8) -> Option<&'static str> {
    STATIC_PTS.iter().find(|(n, _)| *n == pt).map(|(_, s)| *s)
}

/// Codecs that only make sense next to a real codec of the same clock rate.
fn is_supplemental(name: &str) -> bool {
    name.eq_ignore_ascii_case("telephone-event") || name.eq_ignore_ascii_case("CN")
}

/// One payload type of an RTP `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    pub pt: u8,
    /// `a=rtpmap` text after the number (`opus/48000/2`), or the static table's; None for a
    /// dynamic type without rtpmap.
    pub encoding: Option<String>,
}

impl PayloadType {
    /// The encoding name (`opus`).
    pub fn name(&self) -> Option<&str> {
        self.encoding.as_deref().and_then(|e| e.split('/').next())
    }

    pub fn clock_rate(&self) -> Option<u32> {
        self.encoding
            .as_deref()
            .and_then(|e| e.split('/').nth(1))
            .and_then(|r| r.trim().parse().ok())
    }

    /// Does a user-given codec name (`PCMU`, `opus/48000`, `opus/48000/2`, `8`) mean this one?
    pub fn matches(&self, wanted: &str) -> bool {
        let wanted = wanted.trim();
        if wanted.parse::<u8>() == Ok(self.pt) {
            return true;
        }
        let Some(enc) = self.encoding.as_deref() else {
            return false;
        };
        let parts: Vec<&str> = enc.split('/').collect();
        let name = parts.first().copied().unwrap_or("");
        let with_rate = parts.iter().take(2).copied().collect::<Vec<_>>().join("/");
        let channels = parts.get(2).copied().unwrap_or("1");
        let full = format!("{with_rate}/{channels}");
        [name, with_rate.as_str(), full.as_str()]
            .iter()
            .any(|c| c.eq_ignore_ascii_case(wanted))
    }

    pub fn is_supplemental(&self) -> bool {
        self.name().is_some_and(is_supplemental)
    }
}

/// Payload value of `a=rtpmap:`/`a=fmtp:`/`a=rtcp-fb:` split into the number and the rest.
pub fn split_pt_value(value: &str) -> Option<(u8, &str)> {
    let value = value.trim_start();
    let (num, rest) = match value.find([' ', '\t']) {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    Some((num.parse().ok()?, rest.trim()))
}

/// An `a=rtpmap` value as rtpengine reads it: the payload type and the encoding written back
/// in its normal form, `<name>/<clock rate>` with `/<channels>` only for more than one
/// channel (`AMR-WB/16000/1` becomes `AMR-WB/16000`; a channel count that is not a number
/// counts as one). `None` when rtpengine would not take it as an rtpmap (no `/`, a clock rate
/// that is not a number): such a line is then passed through as it came.
pub fn parse_rtpmap(value: &str) -> Option<(u8, String)> {
    let (pt, rest) = split_pt_value(value)?;
    let encoding = rest.split_whitespace().next()?;
    let (name, rest) = encoding.split_once('/')?;
    let (rate, channels) = match rest.split_once('/') {
        Some((r, c)) => (r, Some(c)),
        None => (rest, None),
    };
    if rate.is_empty() || !rate.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rate: u32 = rate.parse().ok()?;
    let channels = channels
        .and_then(|c| c.parse::<i32>().ok())
        .filter(|c| *c != 0)
        .unwrap_or(1);
    Some(if channels > 1 {
        (pt, format!("{name}/{rate}/{channels}"))
    } else {
        (pt, format!("{name}/{rate}"))
    })
}

/// An `a=fmtp` or `a=rtcp-fb` value split as rtpengine splits it: the payload type, then the
/// parameters exactly as written after the first space (trailing blanks included: they are
/// written back as received).
pub fn split_pt_params(value: &str) -> Option<(u8, &str)> {
    let value = value.trim_start();
    let (num, rest) = value.split_once(' ').unwrap_or((value, ""));
    Some((num.trim().parse().ok()?, rest))
}

/// The payload types of `m`, in m= order, without duplicates or non-numeric tokens. A type
/// listed in several `a=rtpmap` lines takes the last one (as rtpengine does); a static type
/// without one takes the static table's.
pub fn payload_types(m: &Media) -> Vec<PayloadType> {
    let mut out: Vec<PayloadType> = Vec::new();
    for f in &m.formats {
        let Ok(pt) = f.trim().parse::<u8>() else {
            continue;
        };
        if pt > 127 || out.iter().any(|p| p.pt == pt) {
            continue;
        }
        let encoding = m
            .attributes()
            .filter(|a| a.is("rtpmap"))
            .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
            .filter(|(n, _)| *n == pt)
            .last()
            .map(|(_, e)| e)
            .or_else(|| static_rtpmap(pt).map(str::to_owned));
        out.push(PayloadType { pt, encoding });
    }
    out
}

/// Codecs to drop from the output: names (case-insensitive) or payload-type numbers, or `all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodecFilter {
    pub strip: Vec<String>,
    pub mask: Vec<String>,
    /// Kept despite `all` in `strip` or `mask`.
    pub except: Vec<String>,
}

impl CodecFilter {
    pub fn is_empty(&self) -> bool {
        self.strip.is_empty() && self.mask.is_empty()
    }

    fn removes(&self, pt: &PayloadType) -> bool {
        let lists = || self.strip.iter().chain(self.mask.iter());
        let all = lists().any(|c| c.trim().eq_ignore_ascii_case("all"));
        if all && !self.except.iter().any(|e| pt.matches(e)) {
            return true;
        }
        lists().any(|c| pt.matches(c))
    }

    /// The payload types that survive. As rtpengine does: a filter that would leave nothing
    /// is not applied; telephone-event/CN are dropped when the last real codec of their clock
    /// rate was removed.
    pub fn apply(&self, pts: &[PayloadType]) -> Vec<u8> {
        let all: Vec<u8> = pts.iter().map(|p| p.pt).collect();
        let touched = self.touched(pts);
        if touched.is_empty() {
            return all;
        }
        let main_rates: Vec<Option<u32>> = pts
            .iter()
            .filter(|p| !p.is_supplemental() && !self.removes(p))
            .map(|p| p.clock_rate())
            .collect();
        pts.iter()
            .filter(|p| !self.removes(p))
            .filter(|p| {
                let rate = p.clock_rate();
                !p.is_supplemental() || main_rates.contains(&rate) || !touched.covers(rate)
            })
            .map(|p| p.pt)
            .collect()
    }

    /// What applying the filter to `pts` touches, as rtpengine tracks it: the clock rate of
    /// every real codec it removes, and every rate once it removes a telephone-event or CN.
    /// Nothing when it would remove everything (then it is not applied).
    pub fn touched(&self, pts: &[PayloadType]) -> Touched {
        if self.is_empty() || pts.iter().all(|p| self.removes(p)) {
            return Touched::default();
        }
        let removed = || pts.iter().filter(|p| self.removes(p));
        Touched {
            all: removed().any(|p| p.is_supplemental()),
            rates: removed()
                .filter(|p| !p.is_supplemental())
                .map(|p| p.clock_rate())
                .collect(),
        }
    }
}

/// The clock rates a codec filter touched in an offer. rtpengine remembers them until the
/// answer: there, a telephone-event or CN payload type of a touched rate is written as the
/// offerer defined it and after the real codecs (see `answer.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Every rate (a telephone-event or CN was removed).
    pub all: bool,
    pub rates: Vec<Option<u32>>,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        !self.all && self.rates.is_empty()
    }

    pub fn covers(&self, rate: Option<u32>) -> bool {
        self.all || self.rates.contains(&rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(pt: u8, enc: &str) -> PayloadType {
        PayloadType {
            pt,
            encoding: Some(enc.to_owned()),
        }
    }

    #[test]
    fn matching_by_name_rate_channels_and_number() {
        let opus = pt(111, "opus/48000/2");
        assert!(opus.matches("OPUS"));
        assert!(opus.matches("opus/48000"));
        assert!(opus.matches("opus/48000/2"));
        assert!(opus.matches("111"));
        assert!(!opus.matches("opus/16000"));
        let pcmu = pt(0, "PCMU/8000");
        assert!(pcmu.matches("pcmu/8000/1"));
        assert!(!pcmu.matches("PCMA"));
    }

    #[test]
    fn strip_all_with_except_and_empty_result() {
        let pts = vec![
            pt(0, "PCMU/8000"),
            pt(8, "PCMA/8000"),
            pt(101, "telephone-event/8000"),
        ];
        let f = CodecFilter {
            strip: vec!["all".into()],
            except: vec!["pcma".into()],
            ..Default::default()
        };
        // PCMA kept; telephone-event/8000 removed because "all" touched it directly.
        assert_eq!(f.apply(&pts), vec![8]);
        let f = CodecFilter {
            strip: vec!["all".into()],
            ..Default::default()
        };
        assert_eq!(f.apply(&pts), vec![0, 8, 101]);
    }

    #[test]
    fn supplemental_follows_its_clock_rate() {
        let pts = vec![
            pt(8, "PCMA/8000"),
            pt(96, "opus/48000/2"),
            pt(97, "telephone-event/8000"),
            pt(98, "telephone-event/48000"),
        ];
        let f = CodecFilter {
            strip: vec!["PCMA".into()],
            ..Default::default()
        };
        assert_eq!(f.apply(&pts), vec![96, 98]);
        let f = CodecFilter {
            mask: vec!["opus".into()],
            ..Default::default()
        };
        assert_eq!(f.apply(&pts), vec![8, 97]);
    }

    #[test]
    fn rtpmap_is_read_and_written_back_as_rtpengine_does() {
        let norm = |v: &str| parse_rtpmap(v).map(|(pt, e)| format!("{pt} {e}"));
        assert_eq!(
            norm("96 AMR-WB/16000/1").as_deref(),
            Some("96 AMR-WB/16000")
        );
        assert_eq!(norm("96 AMR-WB/16000").as_deref(), Some("96 AMR-WB/16000"));
        assert_eq!(
            norm("111 opus/48000/2").as_deref(),
            Some("111 opus/48000/2")
        );
        assert_eq!(norm("97 L16/8000/2x").as_deref(), Some("97 L16/8000"));
        assert_eq!(norm("98 Z/8000/0").as_deref(), Some("98 Z/8000"));
        assert_eq!(norm("99 W/8000/3 extra").as_deref(), Some("99 W/8000/3"));
        assert_eq!(norm("96 X/08000").as_deref(), Some("96 X/8000"));
        assert_eq!(norm("8 pcma/8000").as_deref(), Some("8 pcma/8000"));
        assert_eq!(norm("96 foo"), None);
        assert_eq!(norm("96 bar/abc"), None);
        assert_eq!(norm("96 bar/"), None);
        assert_eq!(norm("96"), None);
    }

    #[test]
    fn split_pt_values() {
        assert_eq!(split_pt_value("101 0-15"), Some((101, "0-15")));
        assert_eq!(split_pt_value("0 PCMU/8000 "), Some((0, "PCMU/8000")));
        assert_eq!(split_pt_value("x PCMU/8000"), None);
        assert_eq!(split_pt_value("300 foo"), None);
        assert_eq!(split_pt_params("101 0-16 "), Some((101, "0-16 ")));
        assert_eq!(split_pt_params("101  0-16"), Some((101, " 0-16")));
        assert_eq!(split_pt_params("101"), Some((101, "")));
    }
}
