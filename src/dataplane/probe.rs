//! Pick the data plane at startup and say why, once.

use super::{DataplaneRequest, PlaneKind};

/// The plane to run for `requested`, with a reason to log once.
///
/// Only the mmsg plane exists so far; the io_uring and XDP planes come later and will be
/// probed here (kernel support, seccomp, capabilities) with a fall back to mmsg.
pub fn choose(requested: DataplaneRequest) -> (PlaneKind, String) {
    let reason = match requested {
        DataplaneRequest::Mmsg => "mmsg requested".to_string(),
        DataplaneRequest::Auto => "auto: io_uring and xdp planes not built yet, using mmsg".into(),
        DataplaneRequest::Uring => "io_uring plane not built yet, falling back to mmsg".into(),
        DataplaneRequest::Xdp => "xdp plane not built yet, falling back to mmsg".into(),
    };
    (PlaneKind::Mmsg, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_mmsg_for_now_with_a_reason() {
        for r in [
            DataplaneRequest::Auto,
            DataplaneRequest::Mmsg,
            DataplaneRequest::Uring,
            DataplaneRequest::Xdp,
        ] {
            let (k, why) = choose(r);
            assert_eq!(k, PlaneKind::Mmsg);
            assert!(why.contains("mmsg"), "{why}");
        }
        assert!(choose(DataplaneRequest::Uring)
            .1
            .contains("io_uring plane not built yet"));
    }
}
