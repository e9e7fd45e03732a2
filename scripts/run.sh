#!/usr/bin/env bash
# Builds rtprelay (release) and runs it in the foreground with the embedded default config:
# NG on 127.0.0.1:22222, media on this host's first non-loopback address, ports 30000-40000.
# Extra arguments are passed to rtprelay, e.g. scripts/run.sh --interface 192.0.2.10 -L 7
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin rtprelay
exec target/release/rtprelay "$@"
