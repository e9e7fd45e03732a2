//! Answer-side codec alignment: an answer may list payload types that were never offered
//! (a stray telephone-event, a second codec); rtpengine answers the offerer with only the
//! offered ones. The answerer's own rtpmap/fmtp/ptime are kept.

use crate::sdp::model::Media;

/// Cuts the payload types of `answer` (one media section) down to those of `offer`.
/// Non-RTP sections are left alone; an answer naming no offered payload type keeps its own
/// list rather than becoming empty, except a rejected one, which names the first offered type
/// (what rtpengine writes for a rejected answer section).
pub fn align_answer_codecs(offer: &Media, answer: &mut Media) {
    if !answer.is_rtp() || !offer.is_rtp() {
        return;
    }
    let offered: Vec<u8> = offer
        .formats
        .iter()
        .filter_map(|f| f.trim().parse().ok())
        .collect();
    let keep: Vec<u8> = answer
        .formats
        .iter()
        .filter_map(|f| f.trim().parse().ok())
        .filter(|pt| offered.contains(pt))
        .collect();
    if keep.is_empty() {
        if answer.is_rejected() {
            if let Some(first) = offer.formats.first() {
                answer.formats = vec![first.clone()];
            }
        }
        return;
    }
    answer
        .formats
        .retain(|f| f.trim().parse::<u8>().is_ok_and(|pt| keep.contains(&pt)));
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
        align_answer_codecs(&offer, &mut answer);
        assert_eq!(answer.formats, vec!["8"]);
        let mut shared = media("m=audio 0 RTP/AVP 0 9\r\n");
        align_answer_codecs(&offer, &mut shared);
        assert_eq!(shared.formats, vec!["9"]);
    }

    #[test]
    fn unoffered_payload_types_are_dropped() {
        let offer = media("m=audio 4000 RTP/AVP 0 9 8\r\n");
        let mut answer =
            media("m=audio 5000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        align_answer_codecs(&offer, &mut answer);
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
        align_answer_codecs(&offer, &mut answer);
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
        align_answer_codecs(&offer, &mut answer);
        assert_eq!(answer, before);
    }
}
