//! Per-call bounds, so that one call (a re-INVITE storm, a hostile SDP) cannot take the port
//! range or the memory every other call needs. Going over a bound is an NG error with a clear
//! `error-reason`; the call keeps what it had.

use crate::session::call::Call;
use crate::session::error::SessionError;

/// Participants (SIP tags and pending branches) one call may have: a forking call to a few
/// dozen devices stays well inside.
pub const MAX_LEGS: usize = 32;
/// RTP/RTCP port pairs one call may hold, parked ones included (see `follow.rs`).
pub const MAX_PAIRS: usize = 64;
/// Pairs a media slot keeps parked for far ends it used before; the oldest is freed first.
pub const MAX_PARKED: usize = 4;

/// Refuses a new leg on a call that has [`MAX_LEGS`].
pub(crate) fn room_for_leg(call: &Call) -> Result<(), SessionError> {
    if call.legs.len() >= MAX_LEGS {
        return Err(SessionError::TooManyLegs(MAX_LEGS));
    }
    Ok(())
}

/// The pairs a call holds, current and parked.
pub(crate) fn pairs_held(call: &Call) -> usize {
    call.legs
        .iter()
        .flat_map(|l| &l.medias)
        .map(|m| usize::from(m.local.is_some()) + m.parked.len())
        .sum()
}

/// Refuses one more pair for a call that holds [`MAX_PAIRS`].
pub(crate) fn room_for_pair(call: &Call) -> Result<(), SessionError> {
    if pairs_held(call) >= MAX_PAIRS {
        return Err(SessionError::TooManyPorts(MAX_PAIRS));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ports::AcceptAll;
    use crate::session::tests::{answer, at, engine, oa, offer, sdp, text};
    use crate::session::Reply;

    fn is_ok(r: &Reply) -> bool {
        text(r, "result") == "ok"
    }

    #[test]
    fn a_reinvite_storm_that_moves_the_far_end_holds_a_bounded_number_of_pairs() {
        let (mut e, mut b) = (engine(), AcceptAll::default());
        let local = "203.0.113.1".parse().expect("ip");
        assert!(is_ok(&offer(
            &mut e,
            &mut b,
            at(0),
            oa("c", "A", None, None, sdp("192.0.2.10", 4000))
        )));
        assert!(is_ok(&answer(
            &mut e,
            &mut b,
            at(0),
            oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000))
        )));
        // The range of engine() holds 50 pairs: without the bounds, a few dozen re-INVITEs
        // would take them all.
        for k in 0..200u16 {
            let r = offer(
                &mut e,
                &mut b,
                at(1),
                oa("c", "A", Some("B"), None, sdp("192.0.2.10", 6000 + 2 * k)),
            );
            assert!(is_ok(&r), "re-INVITE {k}: {r:?}");
        }
        assert!(
            e.ports.in_use(local) <= 2 + MAX_PARKED,
            "{}",
            e.ports.in_use(local)
        );
        // Another call still gets ports.
        assert!(is_ok(&offer(
            &mut e,
            &mut b,
            at(2),
            oa("d", "X", None, None, sdp("192.0.2.30", 4000))
        )));
    }

    #[test]
    fn forking_is_bounded_in_participants() {
        let (mut e, mut b) = (engine(), AcceptAll::default());
        let mut last = Reply::Ok;
        for k in 0..MAX_LEGS {
            last = offer(
                &mut e,
                &mut b,
                at(0),
                oa(
                    "f",
                    "A",
                    None,
                    Some(&format!("branch{k}")),
                    sdp("192.0.2.10", 4000),
                ),
            );
            if !is_ok(&last) {
                break;
            }
        }
        // A and 31 branches fit; the 32nd branch would be the 33rd participant.
        assert_eq!(
            text(&last, "error-reason"),
            format!("Too many participants in this call (at most {MAX_LEGS})")
        );
        let call = e.calls.get("f").expect("the call stays");
        assert_eq!(call.legs.len(), MAX_LEGS);
    }

    #[test]
    fn a_call_holds_a_bounded_number_of_pairs() {
        let wide = crate::session::EngineConfig {
            port_max: 39999,
            ..engine().cfg.clone()
        };
        let (mut e, mut b) = (crate::session::Engine::new(wide), AcceptAll::default());
        // 30 media sections a side: the second branch would take the call past 64 pairs.
        let mut body = String::from(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n",
        );
        for m in 0..30 {
            body.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 4000 + 2 * m));
        }
        let first = offer(
            &mut e,
            &mut b,
            at(0),
            oa("p", "A", None, Some("b1"), body.clone().into_bytes()),
        );
        assert!(is_ok(&first), "{first:?}");
        let second = offer(
            &mut e,
            &mut b,
            at(0),
            oa("p", "A", None, Some("b2"), body.into_bytes()),
        );
        assert_eq!(
            text(&second, "error-reason"),
            format!("Too many media ports for this call (at most {MAX_PAIRS} pairs)")
        );
        let call = e.calls.get("p").expect("call");
        assert!(pairs_held(call) <= MAX_PAIRS);
    }
}
