#!/usr/bin/env bash
# Builds rtprelay (release) and runs it in the foreground with the embedded default config:
# NG on 127.0.0.1:22222, media on this host's first non-loopback address, ports 30000-40000.
# Extra arguments are passed to rtprelay, e.g. scripts/run.sh --interface 192.0.2.10 -L 7
set -euo pipefail
cd "$(dirname "$0")/.."
# The build needs a C toolchain, libelf and zlib (libbpf) and clang (the XDP program): install them
# once when they are missing (as root; otherwise say what to install).
if ! scripts/install-deps.sh --check-build; then
    if [ "$(id -u)" -eq 0 ]; then
        scripts/install-deps.sh --build-only
    else
        echo "run.sh: run 'sudo scripts/install-deps.sh --build-only' once, then this again" >&2
        exit 1
    fi
fi
cargo build --release --locked --bin rtprelay
exec target/release/rtprelay "$@"
