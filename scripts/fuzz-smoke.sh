#!/usr/bin/env bash
# Runs every fuzz target briefly (default 20 s each), with cargo-fuzz on the stable toolchain
# (RUSTC_BOOTSTRAP lets it use the sanitizer flags). Installs cargo-fuzz from crates.io when it is
# missing. Exits non-zero when a target crashes.
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
#
# What a run finds is kept for the next one (all three are ignored by git):
# - the corpus grows in fuzz/corpus/<target>/ (seeded from fuzz/seeds/<target>/, never written);
# - a crashing input stays in fuzz/artifacts/<target>/ (cargo-fuzz's place; replay it with
#   `cargo fuzz run <target> <file>`);
# - the whole libFuzzer output of the last run of each target is in fuzz/logs/<target>.log, and
#   for a crash it is printed in full (the sanitizer report, the panic and its backtrace).
# Every target runs even after a crash; the summary names the ones that crashed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(bencode ng ng_tcp_frame sdp rtp rtcp spool frame mix cli store_record srtp sdes flow_srtp stun sdp_candidate dtls_record dtls_endpoint flow_handshake)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
export RUST_BACKTRACE=1
mkdir -p logs
# All targets in one build first: cargo links them in parallel, and each run below then starts at once.
if ! cargo fuzz build >logs/build.log 2>&1; then
  echo "---- fuzz build failed (fuzz/logs/build.log): ----"
  tail -n 40 logs/build.log
  exit 1
fi
crashed=()
for t in "${targets[@]}"; do
  echo "==== fuzz $t for ${secs}s ===="
  mkdir -p seeds/"$t" corpus/"$t" artifacts/"$t"
  log=logs/"$t".log
  # New inputs go to the first directory (the kept corpus); the seeds are read only.
  if cargo fuzz run "$t" corpus/"$t" seeds/"$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    >"$log" 2>&1; then
    tail -n 3 "$log"
  else
    crashed+=("$t")
    echo "---- fuzz $t FAILED; its full output (also in fuzz/$log): ----"
    cat "$log"
    echo "---- crashing inputs kept in fuzz/artifacts/$t/: ----"
    ls -l artifacts/"$t"
  fi
done
if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz smoke: failed (a crash, or a target that did not build or run): ${crashed[*]}"
  exit 1
fi
echo "fuzz smoke: ${#targets[@]} targets, no crash"
