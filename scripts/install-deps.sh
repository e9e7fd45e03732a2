#!/usr/bin/env bash
# Installs, as root on Debian bookworm, the system packages the test suite needs: Kamailio and SIPp for the
# end-to-end calls, Debian's rtpengine as the reference relay, tcpdump to count media, the Perl modules of
# the upstream runner, and the C toolchain for the BPF program. Idempotent: packages already installed are
# skipped (checked with `dpkg -s`), and `apt-get update` runs at most once, only when something is missing.
# Services that a package starts on install (rtpengine, Kamailio, Redis, Redis Sentinel) are stopped again through
# their init scripts, so nothing holds the ports the tests use.
#
#   scripts/install-deps.sh               everything the test suite needs
#   scripts/install-deps.sh --build-only  only what building the relay needs (scripts/run.sh uses it)
#   scripts/install-deps.sh --check-build exit 1 when a build package is missing (no root needed)
set -euo pipefail

MODE=all
case "${1:-}" in
  --build-only) MODE=build ;;
  --check-build) MODE=check ;;
  "") ;;
  *) echo "install-deps: unknown option $1" >&2; exit 2 ;;
esac

export DEBIAN_FRONTEND="${DEBIAN_FRONTEND:-noninteractive}"

# Core tools of the integration and end-to-end tests (rtpengine-utils: rtpengine-ctl, for tests/ctl.rs;
# redis-sentinel and redis-tools' redis-cli: Sentinel and Cluster in tests/redis_ha.rs; nftables, iptables and
# conntrack: scripts/notrack.sh and its test, tests/notrack.rs; baresip-core: the SRTP client of
# tests/srtp_baresip.rs; chromium: the WebRTC client of tests/webrtc_chromium.rs; openssl: the
# DTLS-SRTP peer of tests/dtls_openssl.rs).
TEST_PKGS=(kamailio sip-tester rtpengine-daemon rtpengine-utils redis-server redis-sentinel redis-tools tcpdump iproute2 ethtool procps python3 perl
  nftables iptables conntrack baresip-core chromium openssl)

# Build toolchain (BPF program via clang, libelf/zlib for libbpf).
BUILD_PKGS=(clang libelf-dev zlib1g-dev pkg-config m4 make gcc libc6-dev)

# ---- UPSTREAM_PERL_PKGS: modules the upstream rtpengine test runner loads. Others may extend this list. ----
UPSTREAM_PERL_PKGS=(
  libbencode-perl
  libcrypt-rijndael-perl
  libcrypt-openssl-rsa-perl
  libdigest-crc-perl
  libdigest-hmac-perl
  libio-multiplex-perl
  libjson-perl
  libnet-interface-perl
  libsocket6-perl
)
# ---- end UPSTREAM_PERL_PKGS ----

# Services some of these packages start on install (name of the init script and its pid file); the tests run
# their own instances.
SERVICES=(
  "rtpengine-daemon /run/rtpengine/rtpengine-daemon.pid"
  "kamailio /run/kamailio/kamailio.pid"
  "redis-server /run/redis/redis-server.pid"
  "redis-sentinel /run/sentinel/redis-sentinel.pid"
)

if [ "$MODE" = all ]; then
  WANTED=("${TEST_PKGS[@]}" "${BUILD_PKGS[@]}" "${UPSTREAM_PERL_PKGS[@]}")
else
  WANTED=("${BUILD_PKGS[@]}")
fi

missing=()
for pkg in "${WANTED[@]}"; do
  # `dpkg -s` also reports removed-but-configured packages; require the installed state.
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "$MODE" = check ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: missing build packages: ${missing[*]}" >&2
    exit 1
  fi
  exit 0
fi

if [ "$(id -u)" -ne 0 ] && [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: must run as root (apt-get install ${missing[*]})" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
else
  echo "install-deps: installing ${missing[*]}"
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi
[ "$MODE" = build ] && exit 0

# Stop any service instance the packages started (only the system service, through its init script, which acts
# on its own pid file; instances the tests start are left alone).
for entry in "${SERVICES[@]}"; do
  read -r svc pidfile <<<"$entry"
  [ -x "/etc/init.d/$svc" ] && [ -s "$pidfile" ] || continue
  if ps -p "$(cat "$pidfile")" >/dev/null 2>&1; then
    echo "install-deps: stopping system service $svc"
    service "$svc" stop || true
  fi
done
