//! Pick the data plane at startup and say why, once.

use super::{DataplaneRequest, PlaneKind};
use crate::sys::uring;

/// Whether `auto` picks io_uring when the host allows it. Decided by relay CPU per packet
/// measured with `bench/compare.py --relays rtprelay-mmsg,rtprelay-uring,rtpengine` on a
/// 2-vCPU VM (medians of 3, interleaved runs, two rounds): uring 13.1 / 11.3 µs against mmsg
/// 14.0 / 13.3 µs at 100 calls, 12.4 / 11.9 against 12.7 / 13.1 µs at 500 calls; uring was lower
/// in 11 of 12 paired runs. The gain comes from one ring wait per pass for all sockets instead
/// of epoll_wait plus a recvmmsg and a sendmmsg per ready socket.
const AUTO_PREFERS_URING: bool = true;

/// The plane to run for `requested`, with a reason to log once.
///
/// `--dataplane uring` on a host that refuses io_uring (old kernel, or a seccomp profile such
/// as Docker's default) falls back to mmsg rather than failing: the relay still forwards, and
/// the reason names the errno so the operator can lift the restriction.
///
/// `auto` also keeps to mmsg when `LD_PRELOAD` is set: a preloaded socket library (a test
/// shim, or a kernel-bypass accelerator) interposes libc's socket calls, which io_uring would
/// silently bypass.
pub fn choose(requested: DataplaneRequest) -> (PlaneKind, String) {
    // With XDP, a userspace plane still serves what is not offloaded: pick it like `auto`.
    // With AF_XDP, the workers own the AF_XDP sockets and run the readiness loop: mmsg.
    let requested = match requested {
        DataplaneRequest::Xdp => DataplaneRequest::Auto,
        r => r,
    };
    let preload = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty());
    if requested == DataplaneRequest::Auto && preload.is_some() {
        return (
            PlaneKind::Mmsg,
            "auto: LD_PRELOAD is set (socket calls may be interposed), using mmsg".into(),
        );
    }
    let probe = match requested {
        DataplaneRequest::Mmsg | DataplaneRequest::Afxdp => Ok(()),
        _ => uring::probe().map(|_| ()).map_err(|e| e.to_string()),
    };
    let (kind, reason) = choose_with(requested, probe, AUTO_PREFERS_URING);
    if requested == DataplaneRequest::Uring && kind != PlaneKind::Uring {
        tracing::warn!(%reason, "--dataplane uring was asked for but cannot run here");
    }
    (kind, reason)
}

/// `choose` with the probe's outcome passed in, so every branch is testable on any host.
fn choose_with(
    requested: DataplaneRequest,
    uring: Result<(), String>,
    auto_prefers_uring: bool,
) -> (PlaneKind, String) {
    match (requested, uring) {
        (DataplaneRequest::Mmsg, _) => (PlaneKind::Mmsg, "mmsg requested".into()),
        (DataplaneRequest::Uring, Ok(())) => (PlaneKind::Uring, "uring requested".into()),
        (DataplaneRequest::Uring, Err(e)) => (
            PlaneKind::Mmsg,
            format!("uring requested but io_uring unavailable ({e}), falling back to mmsg"),
        ),
        (DataplaneRequest::Auto, Ok(())) if auto_prefers_uring => (
            PlaneKind::Uring,
            "auto: io_uring available (measured cheaper per packet than mmsg)".into(),
        ),
        (DataplaneRequest::Auto, Ok(())) => (
            PlaneKind::Mmsg,
            "auto: io_uring available but mmsg measured cheaper per packet, using mmsg".into(),
        ),
        (DataplaneRequest::Auto, Err(e)) => (
            PlaneKind::Mmsg,
            format!("io_uring unavailable ({e}), falling back to mmsg"),
        ),
        (DataplaneRequest::Xdp, u) => choose_with(DataplaneRequest::Auto, u, auto_prefers_uring),
        (DataplaneRequest::Afxdp, _) => (
            PlaneKind::Mmsg,
            "afxdp requested: its workers run the readiness loop (mmsg)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPERM: &str = "io_uring_setup: Operation not permitted (os error 1)";

    #[test]
    fn mmsg_when_asked() {
        let (k, why) = choose_with(DataplaneRequest::Mmsg, Err(EPERM.into()), true);
        assert_eq!((k, why.as_str()), (PlaneKind::Mmsg, "mmsg requested"));
    }

    #[test]
    fn uring_when_asked_and_available() {
        assert_eq!(
            choose_with(DataplaneRequest::Uring, Ok(()), false).0,
            PlaneKind::Uring
        );
    }

    #[test]
    fn refused_uring_falls_back_naming_the_errno() {
        for r in [DataplaneRequest::Auto, DataplaneRequest::Uring] {
            let (k, why) = choose_with(r, Err(EPERM.into()), true);
            assert_eq!(k, PlaneKind::Mmsg);
            assert!(why.contains("Operation not permitted"), "{why}");
            assert!(why.contains("falling back to mmsg"), "{why}");
        }
    }

    #[test]
    fn auto_follows_the_measured_preference() {
        assert_eq!(
            choose_with(DataplaneRequest::Auto, Ok(()), true).0,
            PlaneKind::Uring
        );
        assert_eq!(
            choose_with(DataplaneRequest::Auto, Ok(()), false).0,
            PlaneKind::Mmsg
        );
    }

    #[test]
    fn afxdp_runs_mmsg_and_says_why() {
        let (k, why) = choose(DataplaneRequest::Afxdp);
        assert_eq!(k, PlaneKind::Mmsg);
        assert!(why.starts_with("afxdp requested"), "{why}");
    }

    #[test]
    fn xdp_picks_its_userspace_plane_like_auto() {
        let (k, _) = choose_with(DataplaneRequest::Xdp, Err(EPERM.into()), true);
        assert_eq!(k, PlaneKind::Mmsg);
        let (k, _) = choose_with(DataplaneRequest::Xdp, Ok(()), true);
        assert_eq!(k, PlaneKind::Uring);
    }
}
