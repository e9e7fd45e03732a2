//! What the crate's unit tests and its integration tests (`tests/`, through the `testkit`
//! feature) share: the one rule for a test that cannot run here ([`skip_unless`]), checksums
//! and frames built from scratch ([`checksum`], [`frames`]), and namespaces with veth pairs
//! ([`netns`]).
//!
//! A test that needs something the host may refuse (root, BPF, io_uring, a tool) asks
//! [`skip_unless`]: on a developer's machine it prints why and skips; under `RTPRELAY_E2E=1`
//! (CI) it fails, so a green run never hides a test that did not run.

#![allow(clippy::unwrap_used)]

pub mod checksum;
pub mod frames;
pub mod netns;

/// Whether `RTPRELAY_E2E=1`: then a missing capability fails the test instead of skipping it.
pub fn e2e_required() -> bool {
    std::env::var("RTPRELAY_E2E").as_deref() == Ok("1")
}

/// Goes on (`true`) when `cond` holds. Otherwise fails the test under `RTPRELAY_E2E=1`, or
/// prints why the test skips and returns `false` (the caller returns).
#[track_caller]
pub fn skip_unless(cond: bool, why: &str) -> bool {
    if cond {
        return true;
    }
    if e2e_required() {
        panic!("RTPRELAY_E2E=1 but {why}");
    }
    eprintln!("SKIPPED: {why} (set RTPRELAY_E2E=1 to make this a failure)");
    false
}
