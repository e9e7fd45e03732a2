//! Tests that need something the host may refuse (io_uring under a seccomp profile, an IPv6
//! loopback) skip themselves on such a host, saying why, but never in the end-to-end run
//! (`RTPRELAY_E2E=1`), which must cover everything: there a skip fails the test.

/// True when the test may run (`cond` holds). Otherwise prints why it is skipped and returns
/// false, or panics under `RTPRELAY_E2E=1`.
pub(crate) fn skip_unless(cond: bool, why: &str) -> bool {
    if cond {
        return true;
    }
    let e2e = std::env::var_os("RTPRELAY_E2E").is_some_and(|v| v == "1");
    assert!(!e2e, "RTPRELAY_E2E=1 and this test cannot run here: {why}");
    eprintln!("skipped: {why}");
    false
}

#[cfg(test)]
mod tests {
    use super::skip_unless;

    #[test]
    fn runs_when_the_condition_holds() {
        assert!(skip_unless(true, "never shown"));
    }

    #[test]
    fn skips_outside_the_end_to_end_run_and_fails_in_it() {
        let e2e = std::env::var_os("RTPRELAY_E2E").is_some_and(|v| v == "1");
        let outcome = std::panic::catch_unwind(|| skip_unless(false, "test of the helper"));
        match outcome {
            Ok(run) => assert!(!e2e && !run),
            Err(_) => assert!(e2e),
        }
    }
}
