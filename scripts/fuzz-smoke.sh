#!/usr/bin/env bash
# Runs every fuzz target briefly (default 20 s each) from its seed corpus in fuzz/seeds/, with
# cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP lets it use the sanitizer flags). Installs
# cargo-fuzz from crates.io when it is missing. Exits non-zero when a target crashes.
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(bencode ng ng_tcp_frame sdp rtp rtcp spool frame mix cli)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  echo "==== fuzz $t for ${secs}s ===="
  mkdir -p seeds/"$t"
  cargo fuzz run "$t" "$work" seeds/"$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | tail -n 3
  rm -rf "$work"
done
