#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh Debian bookworm machine (README and .ci/run call it).
# Stages, each timed and named: system packages (scripts/install-deps.sh, when root), cargo fmt check, clippy with
# warnings denied, the quick gates (a type check without default features, the API docs with warnings denied, a
# type check with the minimum supported Rust version of Cargo.toml, no unused dependency), cargo test of the whole workspace with RTPRELAY_E2E=1 (so the end-to-end tests fail instead of
# skipping when Kamailio, SIPp or rtpengine are missing), the Kamailio end-to-end test again against Debian's
# rtpengine as a reference, the differential test against rtpengine with its report, then the later suites when
# their scripts exist
# (tests/upstream/run.sh; docker/tests/test-image.sh and docker/tests/test-ha-compose.sh when a Docker engine
# answers, the latter also in CI without one, where it fails). Every stage runs even after
# a failure; the script exits non-zero if any stage failed. Cargo's own output stays visible; the last line is
# the stage summary `N passed, N failed`.
set -uo pipefail

cd "$(dirname "$0")/.."

export RTPRELAY_E2E=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

passed=0
failed=0
results=()

# run_stage NAME CMD...: runs one stage with its output shown, records its result and time.
run_stage() {
  local name=$1
  shift
  echo
  echo "==== stage: $name ===="
  local start=$SECONDS
  "$@" </dev/null
  local rc=$?
  local took=$((SECONDS - start))
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    results+=("PASS  $name (${took}s)")
  else
    failed=$((failed + 1))
    results+=("FAIL  $name (${took}s, exit $rc)")
  fi
  echo "==== stage: $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in ${took}s ===="
}

if [ "$(id -u)" -eq 0 ]; then
  run_stage "install-deps" scripts/install-deps.sh
else
  echo "warning: not root, skipping scripts/install-deps.sh; the end-to-end tests need its packages" >&2
fi

run_stage "cargo fmt" cargo fmt --all -- --check
run_stage "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
# The quick gates: type checks and docs only (no code generation), each well under a minute.
# The build without the XDP plane (no libbpf, no clang) still compiles.
run_stage "no-default-features" cargo check -p rtprelay --no-default-features
# The API docs build with every intra-doc link resolved.
run_stage "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
# The rust-version Cargo.toml promises: that toolchain (installed here, minimal profile, plus rustfmt, which
# build.rs's BPF skeleton generator runs) type-checks the workspace with the locked dependencies.
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
run_stage "msrv (rust $msrv)" bash -c "rustup toolchain install '$msrv' --profile minimal --component rustfmt \
  --no-self-update && cargo +'$msrv' check --workspace --locked"
# Every declared dependency is used (cargo-machete reads the sources; installed from crates.io when missing, as a
# debug build: it takes a second to run and half a minute to build that way, minutes optimised).
run_stage "unused dependencies" bash -c 'command -v cargo-machete >/dev/null \
  || cargo install cargo-machete --locked --debug --quiet; cargo machete'
run_stage "cargo test" cargo test --workspace --no-fail-fast
# The XDP namespace suite once more with the afxdp plane serving what the kernel does not forward.
run_stage "xdp suite on afxdp" env RTPRELAY_XDP_TESTS_PLANE=afxdp cargo test --test xdp
# The end-to-end calls once more with Debian's rtpengine as the relay: tells a broken environment apart from a
# broken rtprelay.
run_stage "e2e reference (rtpengine)" env RTPRELAY_E2E_RELAY=rtpengine cargo test --test e2e_kamailio
# The differential test (already part of `cargo test` above) once more with its report shown: one line per
# real-world exchange (same / justified / DIFFERS with the diff) and the summary `differential: N exchanges, ...`;
# a couple of seconds, the binaries are built by then.
run_stage "differential vs rtpengine" cargo test --test differential -- --nocapture

# The security suite once more against Debian's rtpengine, informative: it prints which attacks work there
# (`ATTACK <name> vs rtpengine: EXPOSED|refused`) and asserts nothing; against rtprelay it ran above.
run_stage "adversarial vs rtpengine (informative)" env RTPRELAY_E2E_RELAY=rtpengine \
  cargo test --test adversarial -- --nocapture --test-threads 2

# The load tooling works: a few seconds of a small load on each data plane, every packet on its own socket from
# the right relay address, none lost or duplicated, plain and SRTP-bridged (never a speed check).
run_stage "bench smoke" bash -c 'cargo build -q -p rtprelay-bench && python3 bench/compare.py \
  --calls 20 --runs 1 --seconds 2 --warmup 1 --relays rtprelay-mmsg,rtprelay-uring --srtp none,aes-cm \
  --rtprelay target/debug/rtprelay --bench target/debug/rtprelay-bench --check'

# Every parser (bencode, NG, SDP, RTP, RTCP) under libFuzzer for a short while; what it finds stays in fuzz/.
run_stage "fuzz smoke" scripts/fuzz-smoke.sh 15

if [ -f tests/upstream/run.sh ]; then
  # rtpengine's own NG suite (relay cases). Its test scripts come from the shared folder beside this checkout
  # (../shared/upstream: the tags of Debian's package and of mr10.5.9.1); without it, from Debian's source
  # package. In CI a missing suite is a failure, never a skip.
  upstream=../shared/upstream/rtpengine-mr10.5.3.5-tests.tar.gz
  if [ -f "$upstream" ]; then
    run_stage "upstream rtpengine suite" bash tests/upstream/run.sh --source "$upstream" \
      --expect-pass tests/upstream/expected-pass.txt
  elif [ "${CI:-}" = true ]; then
    run_stage "upstream rtpengine suite" bash tests/upstream/run.sh \
      --expect-pass tests/upstream/expected-pass.txt
  else
    run_stage "upstream rtpengine suite" bash tests/upstream/run.sh --skip-if-unavailable \
      --expect-pass tests/upstream/expected-pass.txt
  fi
fi
if [ -f docker/tests/test-image.sh ]; then
  if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    run_stage "docker image" bash docker/tests/test-image.sh
    # The HA compose example (Kamailio, three relays, Redis with Sentinel) with SIPp calls; after the image
    # stage, never beside it (one Docker suite at a time). Its build of rtprelay:test is a cache hit by now.
    run_stage "docker ha compose" bash docker/tests/test-ha-compose.sh
  elif [ "${CI:-}" = true ]; then
    # In CI a missing engine is a failure: the HA test says so and fails.
    run_stage "docker ha compose" bash docker/tests/test-ha-compose.sh
  else
    echo "note: no Docker engine answers, skipping docker/tests/test-image.sh and test-ha-compose.sh"
  fi
fi

echo
echo "==== summary ===="
for r in "${results[@]}"; do echo "$r"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
