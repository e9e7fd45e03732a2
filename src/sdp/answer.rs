//! Answer-side codec rules: an answer may list payload types that were never offered (a stray
//! telephone-event, a second codec); rtpengine answers the offerer with only the offered ones.
//! The answerer's own rtpmap/fmtp/ptime are kept, except for the telephone-event and CN types
//! of clock rates the offer's codec filter touched (see [`supplementals_after_touch`]).

use crate::sdp::codec::{parse_rtpmap, payload_types, split_pt_params, Touched};
use crate::sdp::model::{Media, MediaLine};

/// Cuts the payload types of `answer` (one media section) down to `offered`, the format list
/// of the m= line the answerer was offered. Non-RTP sections are left alone; an answer naming
/// no offered payload type keeps its own list rather than becoming empty (rtpengine writes an
/// empty format list then), except a rejected one, which names the first offered type (what
/// rtpengine writes for a rejected answer section).
pub fn align_answer_codecs(offered: &[String], answer: &mut Media) {
    if !answer.is_rtp() {
        return;
    }
    let offered_pts: Vec<u8> = offered
        .iter()
        .filter_map(|f| f.trim().parse().ok())
        .collect();
    let keep: Vec<u8> = answer
        .formats
        .iter()
        .filter_map(|f| f.trim().parse().ok())
        .filter(|pt| offered_pts.contains(pt))
        .collect();
    if keep.is_empty() {
        if answer.is_rejected() {
            if let Some(first) = offered.first() {
                answer.formats = vec![first.clone()];
            }
        }
        return;
    }
    answer
        .formats
        .retain(|f| f.trim().parse::<u8>().is_ok_and(|pt| keep.contains(&pt)));
}

/// The answer to an offer whose codec filter touched some clock rates, as rtpengine 10.5 writes
/// it: each telephone-event or CN payload type of a touched rate moves after the real codecs
/// and takes the offerer's definition of that type (its rtpmap and fmtp: the offerer's `0-16`
/// events, not the answerer's `0-15`), and it is dropped when no real codec of its rate is left.
/// They are added as rtpengine adds them: for each real codec in answer order, its rate's CN,
/// then its telephone-event. Every other type keeps its place and the answerer's definition.
///
/// (rtpengine also drops such a telephone-event when the real codec is one its build cannot
/// transcode, e.g. AMR or EVS in Debian's package; we keep it: that depends on the codec
/// libraries installed, not on the SDP.)
pub fn supplementals_after_touch(offer: &Media, answer: &mut Media, touched: &Touched) {
    if touched.is_empty() || !answer.is_rtp() || answer.is_rejected() {
        return;
    }
    let pts = payload_types(answer);
    let moving: Vec<_> = pts
        .iter()
        .filter(|p| p.is_supplemental() && touched.covers(p.clock_rate()))
        .collect();
    if moving.is_empty() {
        return;
    }
    let mut appended: Vec<u8> = Vec::new();
    for main in pts.iter().filter(|p| !p.is_supplemental()) {
        for kind in ["CN", "telephone-event"] {
            for p in &moving {
                let same = p.clock_rate() == main.clock_rate()
                    && p.name().is_some_and(|n| n.eq_ignore_ascii_case(kind));
                if same && !appended.contains(&p.pt) {
                    appended.push(p.pt);
                }
            }
        }
    }
    let moved: Vec<u8> = moving.iter().map(|p| p.pt).collect();
    answer.formats.retain(|f| {
        f.trim()
            .parse::<u8>()
            .map_or(true, |pt| !moved.contains(&pt))
    });
    answer.formats.extend(appended.iter().map(u8::to_string));

    // The offerer's definitions replace the answerer's (a static type may have none).
    let defines = |a: &crate::sdp::model::Attribute, pt: u8| {
        let v = a.value.as_deref().unwrap_or("");
        (a.is("rtpmap") && parse_rtpmap(v).is_some_and(|(n, _)| n == pt))
            || (a.is("fmtp") && split_pt_params(v).is_some_and(|(n, _)| n == pt))
    };
    for pt in appended {
        let theirs: Vec<MediaLine> = offer
            .attributes()
            .filter(|a| defines(a, pt))
            .map(|a| MediaLine::Attribute(a.clone()))
            .collect();
        let offer_knows = theirs
            .iter()
            .any(|l| matches!(l, MediaLine::Attribute(a) if a.is("rtpmap")))
            || crate::sdp::codec::static_rtpmap(pt).is_some();
        if !offer_knows {
            continue;
        }
        answer
            .lines
            .retain(|l| !matches!(l, MediaLine::Attribute(a) if defines(a, pt)));
        answer.lines.extend(theirs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::parse;

    fn media(body: &str) -> Media {
        let text = format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\n{body}");
        let mut sd = parse(text.as_bytes()).expect("parses");
        sd.media.remove(0)
    }

    #[test]
    fn a_rejected_answer_names_the_first_offered_type_when_it_shares_none() {
        let offer = media("m=audio 4000 RTP/AVP 8 9\r\n");
        let mut answer = media("m=audio 0 RTP/AVP 0\r\n");
        align_answer_codecs(&offer.formats, &mut answer);
        assert_eq!(answer.formats, vec!["8"]);
        let mut shared = media("m=audio 0 RTP/AVP 0 9\r\n");
        align_answer_codecs(&offer.formats, &mut shared);
        assert_eq!(shared.formats, vec!["9"]);
    }

    #[test]
    fn unoffered_payload_types_are_dropped() {
        let offer = media("m=audio 4000 RTP/AVP 0 9 8\r\n");
        let mut answer =
            media("m=audio 5000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        align_answer_codecs(&offer.formats, &mut answer);
        assert_eq!(answer.formats, vec!["8"]);
        // The orphaned rtpmap stays here; `rewrite` only writes attributes of listed types.
        assert_eq!(
            answer.to_string(),
            "m=audio 5000 RTP/AVP 8\r\na=rtpmap:101 telephone-event/8000\r\n"
        );
    }

    #[test]
    fn answerer_definitions_and_ptime_are_kept() {
        let offer = media(
            "m=audio 4000 RTP/AVP 8 96 97\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:30\r\n",
        );
        let mut answer = media(
            "m=audio 5000 RTP/AVP 8 96 98\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\n",
        );
        align_answer_codecs(&offer.formats, &mut answer);
        assert_eq!(
            answer.to_string(),
            "m=audio 5000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\n"
        );
    }

    #[test]
    fn no_common_codec_leaves_answer_alone() {
        let offer = media("m=audio 4000 RTP/AVP 0\r\n");
        let mut answer = media("m=audio 5000 RTP/AVP 8\r\n");
        let before = answer.clone();
        align_answer_codecs(&offer.formats, &mut answer);
        assert_eq!(answer, before);
    }

    fn touched_8000() -> Touched {
        Touched {
            all: false,
            rates: vec![Some(8000)],
        }
    }

    const OFFER: &str = "m=audio 4000 RTP/AVP 8 0 13 101 102\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=rtpmap:102 telephone-event/16000\r\na=fmtp:102 0-16\r\n";

    #[test]
    fn touched_telephone_event_takes_the_offerers_definition_after_the_real_codecs() {
        let offer = media(OFFER);
        let mut answer = media(
            "m=audio 5000 RTP/AVP 101 102 13 8\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:102 telephone-event/16000\r\na=fmtp:102 0-15\r\n",
        );
        supplementals_after_touch(&offer, &mut answer, &touched_8000());
        // 16 kHz was not touched: the answerer's type stays where it was, as it defined it.
        assert_eq!(answer.formats, vec!["102", "8", "13", "101"]);
        let fmtps: Vec<String> = answer
            .attributes()
            .filter(|a| a.is("fmtp"))
            .map(|a| a.value_trimmed().to_owned())
            .collect();
        assert_eq!(fmtps, vec!["102 0-15", "101 0-16"]);
    }

    #[test]
    fn touched_telephone_event_without_a_real_codec_of_its_rate_is_dropped() {
        let offer = media(OFFER);
        let mut answer = media(
            "m=audio 5000 RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        supplementals_after_touch(&offer, &mut answer, &touched_8000());
        assert_eq!(answer.formats, vec!["96"]);
    }

    #[test]
    fn untouched_answers_and_offers_without_a_definition_are_left_alone() {
        let offer = media(OFFER);
        let body = "m=audio 5000 RTP/AVP 101 8\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
        let mut answer = media(body);
        let before = answer.clone();
        supplementals_after_touch(&offer, &mut answer, &Touched::default());
        assert_eq!(answer, before);
        // Every rate touched, but the offer never defined 100: it moves, with its own lines.
        let mut answer = media(
            "m=audio 5000 RTP/AVP 100 8\r\na=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\n",
        );
        let all = Touched {
            all: true,
            rates: Vec::new(),
        };
        supplementals_after_touch(&offer, &mut answer, &all);
        assert_eq!(answer.formats, vec!["8", "100"]);
        assert!(answer.to_string().contains("a=fmtp:100 0-15\r\n"));
    }
}
