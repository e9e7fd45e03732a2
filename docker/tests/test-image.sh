#!/usr/bin/env bash
# Tests of the rtprelay container image. Each check prints "PASS name", "FAIL name: why" or "SKIP name: why";
# the last line is "N passed, M failed", and the exit status is non-zero when a check failed.
#
#   test-image.sh [--only-packaging] [--image TAG] [--no-build]
#
#   --only-packaging  only the checks that need no working relay: image contents and metadata, --version of both
#                     binaries, user and permissions, environment mapping and bad values, seccomp profile
#   --image TAG       image to test (default rtprelay:test), built with docker/build.sh unless --no-build
#
# Needs python3 on the host; the XDP checks need root, clang, ip and nsenter. Uses loopback, Docker's own bridge,
# and for XDP with the host network a veth pair and a network namespace of its own (198.18.0.0/15 addresses),
# deleted at the end. When no Docker engine answers, it installs docker.io if needed and starts dockerd without
# iptables or a bridge (then only host networking is tested); it stops only the containers and the dockerd it
# started.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCKER_DIR=$(cd "$HERE/.." && pwd)
DOCKER=${DOCKER:-docker}
IMAGE=rtprelay:test
BUILD=1
ONLY_PACKAGING=0
UID_EXPECTED=10001
SIZE_LIMIT_MB=100

while [ $# -gt 0 ]; do
    case "$1" in
        --only-packaging) ONLY_PACKAGING=1 ;;
        --image) IMAGE=${2:?--image needs a tag}; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 64 ;;
    esac
    shift
done

# pass, fail, skip, info, check and summary.
# shellcheck source=docker/tests/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtprelay-image-test.XXXXXX")
DOCKERD_PID=
HOST_PEER=
XNS= XVETH=
# Containers started in the background are listed in a file: run_bg runs inside $(...), whose variables are lost.
CONTAINERS=$TMP/containers
: >"$CONTAINERS"
cleanup() {
    local c
    [ -n "$HOST_PEER" ] && ip link set dev "$HOST_PEER" xdpdrv off 2>/dev/null
    [ -n "$XVETH" ] && ip link del "${XVETH}h" 2>/dev/null
    [ -n "$XNS" ] && ip netns del "$XNS" 2>/dev/null
    # Newest first: a container that joined another's network namespace goes before the owner.
    tac "$CONTAINERS" | while read -r c; do $DOCKER rm -f -v "$c" >/dev/null 2>&1; done
    if [ -n "$DOCKERD_PID" ]; then
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_bg ARGS...: docker run -d, remembered for cleanup; prints the container id.
run_bg() {
    local id
    id=$($DOCKER run -d "$@") || return 1
    echo "$id" >>"$CONTAINERS"
    echo "$id"
}

# --- engine ----------------------------------------------------------------------------------------------------
BRIDGE=1
if ! $DOCKER version >/dev/null 2>&1; then
    if ! command -v dockerd >/dev/null; then
        echo "no Docker engine: installing docker.io"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null || { fail engine "apt-get install docker.io failed"; summary; }
    fi
    if ! $DOCKER version >/dev/null 2>&1; then
        echo "no Docker engine answers: starting dockerd --iptables=false --ip-forward=false --bridge=none"
        echo "  (no bridge network then: only host networking is tested)"
        dockerd --iptables=false --ip-forward=false --bridge=none --pidfile "$TMP/dockerd.pid" >"$TMP/dockerd.log" 2>&1 &
        DOCKERD_PID=$!
        for _ in $(seq 1 60); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.5; done
        $DOCKER version >/dev/null 2>&1 || { fail engine "dockerd did not come up: $(tail -3 "$TMP/dockerd.log")"; summary; }
        BRIDGE=0
    fi
fi
pass engine
# The default bridge's gateway: from IPAM when the engine reports it, else the address of the bridge interface.
GATEWAY=$($DOCKER network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' 2>/dev/null | awk '{print $1}')
if [ -z "$GATEWAY" ]; then
    BRIDGE_IF=$($DOCKER network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null)
    GATEWAY=$(ip -4 -o addr show dev "${BRIDGE_IF:-docker0}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
fi
if [ -z "$GATEWAY" ] || ! ip -4 addr 2>/dev/null | grep -q "inet $GATEWAY/"; then BRIDGE=0; fi

# --- build -----------------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    START=$(date +%s)
    if "$DOCKER_DIR/build.sh" -t "$IMAGE" >"$TMP/build.log" 2>&1; then
        pass build
        info "$(grep '^\[build\] built' "$TMP/build.log")"
    else
        fail build "docker/build.sh failed after $(($(date +%s) - START)) s:"
        tail -n 30 "$TMP/build.log" | sed 's/^/  | /'
        summary
    fi
fi
$DOCKER image inspect "$IMAGE" >/dev/null 2>&1 || { fail image "$IMAGE not found"; summary; }

# --- packaging checks (no working relay needed) ----------------------------------------------------------------
in_image() { $DOCKER run --rm --entrypoint "$1" "$IMAGE" "${@:2}"; }

check_version() { # check_version BINARY
    local out
    out=$($DOCKER run --rm "$IMAGE" "$1" --version 2>&1) || { echo "exit $?: $out"; return 1; }
    grep -q "$1" <<<"$out" || { echo "no '$1' in: $out"; return 1; }
    [ "$(in_image bash -c "command -v $1")" = "/usr/local/bin/$1" ] || { echo "not in /usr/local/bin"; return 1; }
}
check version-rtprelay check_version rtprelay
check version-rtprelay-recording check_version rtprelay-recording

# rtprelay-ctl is in the image, and rtpengine's names are the same binaries.
check_ctl_and_aliases() {
    local name target out
    [ "$(in_image bash -c 'command -v rtprelay-ctl')" = /usr/local/bin/rtprelay-ctl ] || { echo "no rtprelay-ctl"; return 1; }
    # Its usage (exit status 1, as rtpengine-ctl's).
    out=$(in_image rtprelay-ctl --help 2>&1)
    grep -q '^usage: rtprelay-ctl' <<<"$out" || { echo "rtprelay-ctl --help: $out"; return 1; }
    for name in rtpengine:rtprelay rtpengine-recording:rtprelay-recording rtpengine-ctl:rtprelay-ctl; do
        target=$(in_image readlink -f "/usr/local/bin/${name%%:*}") || { echo "no ${name%%:*}"; return 1; }
        [ "$target" = "/usr/local/bin/${name#*:}" ] || { echo "${name%%:*} -> $target"; return 1; }
    done
    $DOCKER run --rm "$IMAGE" rtpengine --version | grep -q '^rtprelay ' || { echo "rtpengine --version"; return 1; }
    $DOCKER run --rm "$IMAGE" rtpengine-recording --version | grep -q 'rtprelay-recording' \
        || { echo "rtpengine-recording --version"; return 1; }
}
check ctl-and-rtpengine-aliases check_ctl_and_aliases

check_libs() {
    local out
    out=$(in_image ldd /usr/local/bin/rtprelay /usr/local/bin/rtprelay-recording 2>&1) || { echo "$out"; return 1; }
    ! grep 'not found' <<<"$out"
}
check runtime-libraries check_libs

check_user() {
    local user uid
    user=$($DOCKER image inspect -f '{{.Config.User}}' "$IMAGE")
    [ "${user%%:*}" = rtprelay ] || { echo "image USER is '$user'"; return 1; }
    uid=$(in_image id -u) && [ "$uid" = "$UID_EXPECTED" ] || { echo "id -u = $uid"; return 1; }
    [ "$(in_image id -g)" = "$UID_EXPECTED" ] || { echo "gid is not $UID_EXPECTED"; return 1; }
}
check user-nonroot-fixed-uid check_user

check_privileges() {
    local out
    out=$($DOCKER run --rm --user 0 --entrypoint find "$IMAGE" / -xdev -type f -perm /6000) || return 1
    [ -z "$out" ] || { echo "setuid/setgid files: $out"; return 1; }
    ! in_image bash -c 'command -v sudo'
}
check no-setuid-no-sudo check_privileges

check_dirs() {
    local out others
    out=$(in_image stat -c '%U:%G %n' /etc/rtprelay /etc/rtprelay/rtprelay.conf /var/spool/rtprelay \
        /var/lib/rtprelay-recording /var/log/rtprelay) || return 1
    # Every path listed, each owned by rtprelay:rtprelay (a check in the middle of a function decides nothing
    # without its own return).
    [ "$(wc -l <<<"$out")" = 5 ] || { echo "stat listed: $out"; return 1; }
    others=$(grep -v '^rtprelay:rtprelay ' <<<"$out")
    [ -z "$others" ] || { echo "not owned by rtprelay:rtprelay: $others"; return 1; }
    in_image bash -c 'touch /var/spool/rtprelay/.w /var/lib/rtprelay-recording/.w /var/log/rtprelay/.w'
}
check dirs-owned-and-writable check_dirs

check_metadata() {
    local f
    f=$($DOCKER image inspect -f '{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{json .Config.Entrypoint}}|{{json .Config.Healthcheck}}' "$IMAGE")
    grep -q '"22222/udp"' <<<"$f" || { echo "22222/udp not exposed: $f"; return 1; }
    grep -q '"/var/spool/rtprelay"' <<<"$f" || { echo "no spool volume: $f"; return 1; }
    grep -q '\["/usr/local/bin/docker-entrypoint.sh"\]' <<<"$f" || { echo "entrypoint not exec form: $f"; return 1; }
    grep -q 'rtprelay-healthcheck' <<<"$f" || { echo "no healthcheck: $f"; return 1; }
}
check image-metadata check_metadata

check_size() {
    local size
    size=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
    echo "image size $((size / 1000000)) MB"
    [ "$((size / 1000000))" -le "$SIZE_LIMIT_MB" ]
}
check "image-size-max-${SIZE_LIMIT_MB}MB" check_size
info "image size $(($($DOCKER image inspect -f '{{.Size}}' "$IMAGE") / 1000000)) MB"

# The environment mapping, seen through a stand-in for the daemons that prints its arguments.
mkdir -p "$TMP/fake"
printf '#!/bin/sh\necho "$(basename "$0") $*"\n' >"$TMP/fake/rtprelay"
cp "$TMP/fake/rtprelay" "$TMP/fake/rtprelay-recording"
chmod 755 "$TMP" "$TMP/fake" "$TMP/fake/"*
# fake_run DOCKER-RUN-OPTIONS... [-- COMMAND-ARGS...]
fake_run() {
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    $DOCKER run --rm -v "$TMP/fake:/opt/fake:ro" -e PATH=/opt/fake:/usr/local/bin:/usr/bin:/bin "${opts[@]}" "$IMAGE" "$@"
}

check_env_mapping() {
    local out want
    out=$(fake_run -e RTPENGINE_TABLE=-1 -e RTPENGINE_LISTEN_NG=127.0.0.1:2223 -e RTPENGINE_PORT_MIN=32000 \
        -e RTPENGINE_PORT_MAX=32100 -e RTPENGINE_LOG_LEVEL=7 -e RTPENGINE_NUM_THREADS=2 -e RTPENGINE_PUBLIC_IP=203.0.113.7 \
        -e RTPRELAY_INTERFACE=192.0.2.10 -e RTPENGINE_INTERFACE=198.51.100.1 -e RTPENGINE_RECORDING_METHOD=pcap \
        -e RTPRELAY_DATAPLANE=xdp -e RTPRELAY_NO_FALLBACK=yes -- --xdp-no-offload) || { echo "$out"; return 1; }
    for want in --config-file=/etc/rtprelay/rtprelay.conf --table=-1 --listen-ng=127.0.0.1:2223 --port-min=32000 \
        --port-max=32100 --log-level=7 --num-threads=2 '--interface=192.0.2.10!203.0.113.7' \
        --recording-method=pcap --dataplane=xdp --no-fallback --xdp-no-offload; do
        grep -qF -- " $want" <<<"$out" || { echo "missing $want in: $out"; return 1; }
    done
    ! grep -q 198.51.100.1 <<<"$out" || { echo "RTPRELAY_ alias did not win: $out"; return 1; }
    # The recorder: its defaults are in its config file, not on the command line.
    out=$(fake_run -e RTPENGINE_RECORDING_DIR=/rec -- rtprelay-recording --x) || return 1
    for want in --config-file=/etc/rtprelay/rtprelay-recording.conf --spool-dir=/rec --foreground --x; do
        grep -qF -- " $want" <<<"$out" || { echo "missing $want in: $out"; return 1; }
    done
}
check entrypoint-env-mapping check_env_mapping

check_default_interface() {
    local out
    if [ "$BRIDGE" = 1 ]; then
        out=$(fake_run --network bridge) || return 1
        grep -qE -- '--interface=172\.|--interface=[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+( |$)' <<<"$out" || { echo "$out"; return 1; }
        grep -qv -- '--interface=127\.' <<<"$out"
    else
        out=$(fake_run --network host) || return 1
        grep -q -- '--interface=' <<<"$out" || { echo "$out"; return 1; }
    fi
}
check entrypoint-default-interface check_default_interface

check_bad_env() {
    local spec var out rc
    for spec in RTPENGINE_TABLE=fast RTPENGINE_PORT_MIN=0 RTPRELAY_PORT_MAX=70000 RTPENGINE_LOG_LEVEL=9 \
        RTPENGINE_INTERFACE=10.0.0.300 RTPENGINE_PUBLIC_IP=example RTPENGINE_LISTEN_NG=localhost \
        RTPENGINE_NUM_THREADS=-3 RTPENGINE_RECORDING_METHOD=tape RTPENGINE_CONFIG_FILE=/nonexistent \
        RTPRELAY_DATAPLANE=kernel RTPRELAY_NO_FALLBACK=maybe; do
        var=${spec%%=*}
        out=$($DOCKER run --rm -e "$spec" "$IMAGE" 2>&1)
        rc=$?
        [ "$rc" = 2 ] || { echo "$spec: exit $rc, not 2: $out"; return 1; }
        grep -q "$var" <<<"$out" || { echo "$spec: message does not name $var: $out"; return 1; }
    done
    out=$($DOCKER run --rm -e RTPENGINE_PORT_MIN=40000 -e RTPENGINE_PORT_MAX=30000 "$IMAGE" 2>&1)
    [ $? = 2 ] && grep -q RTPENGINE_PORT_MIN <<<"$out" || { echo "min > max: $out"; return 1; }
}
check bad-env-fails-fast check_bad_env

# Every RTPENGINE_<OPTION> maps to --<option>, checked against `rtprelay --list-options`: options the old
# entrypoint never listed, a list given as 'a;b' and as numbered variables, a flag switched off, an rtpengine option
# rtprelay ignores (passed on: the relay warns itself), and names that are not options (warned about, left out).
check_generic_env_mapping() {
    local out want
    out=$(fake_run -e RTPENGINE_TIMEOUT=77 -e RTPENGINE_DELETE_DELAY=13 -e RTPENGINE_MAX_SESSIONS=42 \
        -e RTPENGINE_LISTEN_TCP_NG=127.0.0.1:2224 -e RTPENGINE_LISTEN_CLI=127.0.0.1:9900 \
        -e 'RTPENGINE_INTERFACE=192.0.2.1;192.0.2.2' -e RTPENGINE_INTERFACE_2=192.0.2.4 \
        -e RTPENGINE_INTERFACE_1=192.0.2.3 -e RTPENGINE_XDP_NO_OFFLOAD=no -e RTPENGINE_JB_CLOCK_DRIFT=yes \
        -e RTPENGINE_NO_SUCH_OPTION=1 -e RTPENGINE_CODECS=yes -e RTPRELAY_SILENT_TIMEOUT=600 \
        -e RTPENGINE_SILENT_TIMEOUT=700 -e RTPENGINE_RECORDING_OUTPUT_PATTERN=%c 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    for want in --timeout=77 --delete-delay=13 --max-sessions=42 --listen-tcp-ng=127.0.0.1:2224 \
        --listen-cli=127.0.0.1:9900 '--interface=192.0.2.1 --interface=192.0.2.2 --interface=192.0.2.3 --interface=192.0.2.4' \
        --xdp-no-offload=false --jb-clock-drift --silent-timeout=600; do
        grep -qF -- " $want" <<<"$out" || { echo "missing $want"; return 1; }
    done
    grep -q 'warning: RTPENGINE_NO_SUCH_OPTION: --no-such-option is not an option of rtprelay' <<<"$out" \
        || { echo "no warning about RTPENGINE_NO_SUCH_OPTION"; return 1; }
    grep -q 'warning: RTPENGINE_CODECS: ' <<<"$out" || { echo "no warning about RTPENGINE_CODECS"; return 1; }
    ! grep '^rtprelay ' <<<"$out" | grep -qE -- '--no-such-option|--codecs|silent-timeout=700|output-pattern' \
        || { echo "passed on what it should not"; return 1; }
    # The recording variables are the recorder's: not warned about by the relay, mapped for the recorder.
    ! grep -q 'RECORDING_OUTPUT_PATTERN' <<<"$out" || { echo "the relay warned about a recorder variable"; return 1; }
    out=$(fake_run -e RTPENGINE_RECORDING_OUTPUT_PATTERN=%c -e RTPENGINE_RECORDING_OUTPUT_MIXED=yes \
        -e RTPENGINE_TIMEOUT=77 -- rtpengine-recording 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    grep -q '^rtprelay-recording .* --output-pattern=%c' <<<"$out" && grep -q ' --output-mixed' <<<"$out" || return 1
    ! grep -q -- 'timeout\|warning' <<<"$out"
}
check entrypoint-generic-env-mapping check_generic_env_mapping

# A config file's interface is not replaced by the container's address; RTPENGINE_PUBLIC_IP cannot be bolted onto
# an interface that the file names (the container stops and says so).
mkdir -p "$TMP/envconf"
printf '[rtprelay]\ninterface = 192.0.2.99\nlisten-ng = 127.0.0.1:22222\n' >"$TMP/envconf/iface.conf"
chmod 755 "$TMP/envconf"
chmod 644 "$TMP/envconf/iface.conf"
check_config_interface_kept() {
    local out rc
    out=$(fake_run -v "$TMP/envconf/iface.conf:/etc/rtprelay/rtprelay.conf:ro") || { echo "$out"; return 1; }
    echo "$out"
    ! grep -q -- '--interface' <<<"$out" || { echo "an --interface was added"; return 1; }
    out=$(fake_run -v "$TMP/envconf/iface.conf:/etc/rtprelay/rtprelay.conf:ro" -e RTPENGINE_PUBLIC_IP=203.0.113.9 2>&1)
    rc=$?
    echo "exit $rc: $out"
    [ "$rc" = 2 ] && grep -q 'RTPENGINE_PUBLIC_IP is set but the config file names the interface' <<<"$out"
}
check entrypoint-keeps-config-interface check_config_interface_kept

# Started as root, the entrypoint runs the daemons as rtprelay, keeping only the XDP capabilities it was given.
mkdir -p "$TMP/fakecaps"
cat >"$TMP/fakecaps/rtprelay" <<'FAKE'
#!/bin/sh
echo "uid=$(id -u) gid=$(id -g) pid=$$ $(grep -E '^(Cap(Eff|Amb|Bnd)|NoNewPrivs):' /proc/self/status | tr '\t\n' '= ')"
FAKE
cp "$TMP/fakecaps/rtprelay" "$TMP/fakecaps/rtprelay-recording"
chmod 755 "$TMP/fakecaps" "$TMP/fakecaps/"*
# NET_ADMIN, NET_RAW, SYS_ADMIN, PERFMON, BPF: the most the relay may keep.
RELAY_CAP_MASK=$(((1 << 12) | (1 << 13) | (1 << 14) | (1 << 21) | (1 << 38) | (1 << 39)))
# The capability that lets the relay load BPF programs: BPF where the engine knows it, SYS_ADMIN on engines whose
# capability list lacks it (Debian's docker.io 20.10 refuses `--cap-add BPF`).
if $DOCKER run --rm --cap-add BPF --entrypoint true "$IMAGE" >/dev/null 2>&1; then BPF_CAP=BPF; else BPF_CAP=SYS_ADMIN; fi
XDP_CAPS=(--user 0 --cap-add NET_ADMIN --cap-add "$BPF_CAP")
info "XDP capabilities on this engine: ${XDP_CAPS[*]}"
fake_caps() { # fake_caps DOCKER-RUN-OPTIONS... -- COMMAND: the fake daemon's uid and capability sets
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    $DOCKER run --rm -v "$TMP/fakecaps:/opt/fake:ro" -e PATH=/opt/fake:/usr/local/bin:/usr/bin:/bin "${opts[@]}" \
        "$IMAGE" "$@" 2>&1
}
cap_field() { sed -n "s/.*$1:=\([0-9a-f]*\).*/\1/p" <<<"$2"; }
check_root_drop() {
    local out eff amb bpf_bit
    [ "$BPF_CAP" = BPF ] && bpf_bit=39 || bpf_bit=21
    out=$(fake_caps "${XDP_CAPS[@]}" -- rtprelay) || { echo "$out"; return 1; }
    echo "root + caps: $out"
    grep -q "uid=$UID_EXPECTED gid=$UID_EXPECTED pid=1 " <<<"$out" || { echo "not uid $UID_EXPECTED as pid 1"; return 1; }
    eff=$(cap_field CapEff "$out") amb=$(cap_field CapAmb "$out")
    [ -n "$eff" ] && [ "$eff" = "$amb" ] || { echo "effective $eff != ambient $amb"; return 1; }
    (((0x$eff >> 12 & 1) && (0x$eff >> bpf_bit & 1))) || { echo "NET_ADMIN/$BPF_CAP missing"; return 1; }
    (((0x$eff & ~RELAY_CAP_MASK) == 0)) || { echo "more capabilities than XDP needs: $eff"; return 1; }
    (((0x$(cap_field CapBnd "$out") & ~RELAY_CAP_MASK) == 0)) || { echo "bounding set not lowered"; return 1; }
    out=$(fake_caps --user 0 -- rtprelay) || { echo "$out"; return 1; }
    echo "root, default caps: $out"
    eff=$(cap_field CapEff "$out")
    grep -q "uid=$UID_EXPECTED " <<<"$out" && (((0x$eff & ~RELAY_CAP_MASK) == 0 && (0x$eff >> 12 & 1) == 0)) \
        || { echo "default root start kept too much"; return 1; }
    out=$(fake_caps "${XDP_CAPS[@]}" -- rtprelay-recording) || { echo "$out"; return 1; }
    echo "recorder: $out"
    grep -q "uid=$UID_EXPECTED " <<<"$out" && [ "$(cap_field CapEff "$out")" = 0000000000000000 ] \
        || { echo "the recorder kept capabilities"; return 1; }
}
check root-start-drops-to-rtprelay-with-xdp-caps check_root_drop

# Every way the entrypoint starts a daemon sets no_new_privs: as the image's user, as root switching to rtprelay
# with the XDP capabilities (ambient capabilities survive it), and as root that cannot switch users.
check_no_new_privs() {
    local how out
    for how in "rtprelay" "rtprelay-recording" "${XDP_CAPS[*]} -- rtprelay" "--user 0 -- rtprelay-recording" \
        "--user 0 --cap-drop SETUID -- rtprelay"; do
        [[ $how == *--* ]] || how="-- $how"
        # shellcheck disable=SC2086
        out=$(fake_caps $how) || { echo "$how: $out"; return 1; }
        echo "$how: $out"
        [ "$(cap_field NoNewPrivs "$out")" = 1 ] || { echo "no NoNewPrivs: 1 for $how"; return 1; }
    done
    # The XDP capabilities are still effective (ambient), not lost to no_new_privs, also when Docker sets it for
    # the whole container (--security-opt no-new-privileges, which the README says works).
    for how in "" "--security-opt no-new-privileges"; do
        # shellcheck disable=SC2086
        out=$(fake_caps $how "${XDP_CAPS[@]}" -- rtprelay)
        echo "$how: $out"
        (((0x$(cap_field CapEff "$out") >> 12 & 1))) && [ "$(cap_field NoNewPrivs "$out")" = 1 ] \
            && grep -q "uid=$UID_EXPECTED " <<<"$out" || { echo "NET_ADMIN lost or not rtprelay: $out"; return 1; }
    done
}
check entrypoint-no-new-privs check_no_new_privs

check_recording_starts() {
    local id state
    id=$(run_bg --network none "$IMAGE" rtprelay-recording) || return 1
    sleep 3
    state=$($DOCKER inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$id")
    # The recorder is a daemon: it has started when it is still running after 3 s (an exit, even a clean one, is
    # a failure).
    [ "${state%% *}" = running ] || { echo "state: $state; logs: $($DOCKER logs "$id" 2>&1 | tail -3)"; return 1; }
}
check recording-daemon-starts check_recording_starts

check_seccomp_profile() {
    python3 - "$DOCKER_DIR/seccomp-io_uring.json" <<'PY' || return 1
import json, sys
p = json.load(open(sys.argv[1]))
allowed = {n for s in p["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" for n in s["names"]}
denied = {n for s in p["syscalls"] if s["action"] != "SCMP_ACT_ALLOW" for n in s["names"]}
need = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
assert p["defaultAction"] == "SCMP_ACT_ALLOW" or need <= allowed, "io_uring not allowed"
assert not need & denied, "io_uring denied"
PY
    # The engine accepts it, and it still refuses what a relay never does (new user namespaces).
    $DOCKER run --rm --security-opt "seccomp=$DOCKER_DIR/seccomp-io_uring.json" "$IMAGE" rtprelay --version >/dev/null || return 1
    ! $DOCKER run --rm --security-opt "seccomp=$DOCKER_DIR/seccomp-io_uring.json" --entrypoint unshare "$IMAGE" -U true
}
check seccomp-profile check_seccomp_profile

if [ "$ONLY_PACKAGING" = 1 ]; then
    summary
fi

# --- relay checks (need the working relay) ---------------------------------------------------------------------
NG="python3 $HERE/ng_call.py"

# free_udp_ports N [ADDRESS]: a base port B such that B..B+N-1 are free on ADDRESS (default 127.0.0.1; B is even).
free_udp_ports() {
    python3 - "$1" "${2:-127.0.0.1}" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
# Outside the kernel's ephemeral range (32768-60999 by default): a port found free there can be taken by
# any process's next outgoing socket before Docker publishes it.
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
except (OSError, ValueError):
    lo, hi = 32768, 60999
span = (hi + 1, 65500 - n) if 65500 - n > hi + 1 else (10000, lo - n)
for _ in range(200):
    base = random.randrange(*span) & ~1
    socks = []
    try:
        for p in range(base, base + n):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                s.bind((sys.argv[2], p))
                socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
else:
    sys.exit("no free port range")
PY
}

# log_has CONTAINER TEXT: the container's log holds TEXT; read again for up to 2 s, since the last lines of a
# container that just stopped can reach the log driver a moment after `docker stop` returns.
log_has() {
    local i
    for i in $(seq 1 10); do
        $DOCKER logs "$1" 2>&1 | grep -F -- "$2" && return 0
        sleep 0.2
    done
    return 1
}

wait_ping() { # wait_ping HOST:PORT CONTAINER: up to 15 s
    local i
    for i in $(seq 1 30); do
        $NG --timeout 0.5 --retries 1 ping "$1" >/dev/null 2>&1 && return 0
        [ "$($DOCKER inspect -f '{{.State.Running}}' "$2" 2>/dev/null)" = true ] || break
        sleep 0.5
    done
    echo "no pong from $1; container: $($DOCKER inspect -f '{{.State.Status}} exit {{.State.ExitCode}}' "$2" 2>&1)"
    $DOCKER logs "$2" 2>&1 | tail -n 5
    return 1
}

container_ip() { $DOCKER inspect -f '{{.NetworkSettings.IPAddress}}' "$1"; }

# no_new_privs CONTAINER: the daemon (PID 1) runs with no_new_privs set.
no_new_privs() {
    local status
    status=$($DOCKER exec "$1" grep -E '^(Uid|NoNewPrivs|CapEff):' /proc/1/status) || return 1
    echo "$status" | tr '\t\n' '  '
    grep -qE '^NoNewPrivs:\s+1$' <<<"$status"
}

# Docker's own health status, with the image's HEALTHCHECK command run every second (--health-interval=1s).
HEALTH_FAST=(--health-interval=1s)
wait_healthy() { # wait_healthy CONTAINER: "healthy" within 30 s
    local status=''
    for _ in $(seq 1 60); do
        status=$($DOCKER inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.Status}}' "$1" 2>&1)
        [ "${status%% *}" = healthy ] && return 0
        [ "${status#* }" = running ] || break
        sleep 0.5
    done
    echo "not healthy ($status); last probe: $($DOCKER inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$1" 2>&1 | tail -n 2)"
    $DOCKER logs "$1" 2>&1 | tail -n 3
    return 1
}

# http_ping HOST:PORT: GET /ping answers pong.
http_ping() {
    python3 -c "import urllib.request,sys; b=urllib.request.urlopen('http://$1/ping', timeout=2).read(); sys.exit(b.strip() != b'pong')" 2>&1
}

stop_exit0() { # stop_exit0 CONTAINER: SIGTERM, exit 0 within 5 s
    local t0 t1 code
    t0=$(date +%s%N)
    $DOCKER stop -t 10 "$1" >/dev/null || return 1
    t1=$(date +%s%N)
    code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$1")
    echo "stopped in $(((t1 - t0) / 1000000)) ms, exit $code"
    [ "$code" = 0 ] && [ $(((t1 - t0) / 1000000)) -le 5000 ]
}

# Host networking: relay on loopback, on ports chosen free.
# A short range: on a busy host (a benchmark holding thousands of ports) a long free run is hard to find.
BASE=$(free_udp_ports 24) || { fail host-network "no free ports"; summary; }
NG_PORT=$BASE HTTP_PORT=$((BASE + 1)) PMIN=$((BASE + 4)) PMAX=$((BASE + 23))
HOST_ENV=(-e RTPENGINE_INTERFACE=127.0.0.1 -e "RTPENGINE_LISTEN_NG=127.0.0.1:$NG_PORT"
    -e "RTPRELAY_LISTEN_HTTP=127.0.0.1:$HTTP_PORT" -e "RTPENGINE_PORT_MIN=$PMIN" -e "RTPENGINE_PORT_MAX=$PMAX")
HOST_ID=$(run_bg --network host "${HOST_ENV[@]}" "$IMAGE")
if [ -n "$HOST_ID" ] && check_out=$(wait_ping "127.0.0.1:$NG_PORT" "$HOST_ID" 2>&1); then
    pass host-ng-ping
    check host-healthcheck $DOCKER exec "$HOST_ID" rtprelay-healthcheck
    check_http_ping() { python3 -c "import urllib.request,sys; b=urllib.request.urlopen('http://127.0.0.1:$HTTP_PORT/ping', timeout=3).read(); sys.exit(b.strip() != b'pong')"; }
    check host-http-ping check_http_ping
    check_proc_user() {
        local status comm
        comm=$($DOCKER exec "$HOST_ID" cat /proc/1/comm) || return 1
        status=$($DOCKER exec "$HOST_ID" grep -E '^(Uid|Gid):' /proc/1/status) || return 1
        echo "pid 1: $comm; $status"
        [ "$comm" = rtprelay ] && grep -qE "^Uid:\s+$UID_EXPECTED\s" <<<"$status"
    }
    check relay-process-nonroot check_proc_user
    check relay-no-new-privs no_new_privs "$HOST_ID"
    check host-call $NG call "127.0.0.1:$NG_PORT" --local-ip 127.0.0.1 --packets 50
    # One line names the plane the relay runs (uring or mmsg here: no XDP without the capabilities).
    check_plane_logged() { $DOCKER logs "$HOST_ID" 2>&1 | grep -E 'data plane chosen plane="?(uring|mmsg)'; }
    check data-plane-logged check_plane_logged
    check sigterm-exit-0 stop_exit0 "$HOST_ID"
else
    fail host-ng-ping "$check_out"
fi

# Docker's default seccomp profile from Docker 25 on refuses io_uring. This engine's may not, so the same refusal
# is made explicit: our profile with io_uring denied.
python3 - "$DOCKER_DIR/seccomp-io_uring.json" "$TMP/seccomp-no-io_uring.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["syscalls"] = [s for s in p["syscalls"] if not (s["action"] == "SCMP_ACT_ALLOW" and "io_uring_setup" in s["names"])]
p["syscalls"].append({"names": ["io_uring_setup", "io_uring_enter", "io_uring_register"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
json.dump(p, open(sys.argv[2], "w"))
PY
chmod 644 "$TMP/seccomp-no-io_uring.json"
SEC_ID=$(run_bg --network host --security-opt "seccomp=$TMP/seccomp-no-io_uring.json" "${HOST_ENV[@]}" "$IMAGE")
if [ -n "$SEC_ID" ] && check_out=$(wait_ping "127.0.0.1:$NG_PORT" "$SEC_ID" 2>&1); then
    check no-io_uring-call $NG call "127.0.0.1:$NG_PORT" --local-ip 127.0.0.1 --packets 30
    # The plane line: mmsg, because io_uring_setup was refused with EPERM (the errno the profile returns).
    check_uring_fallback_logged() {
        local line
        line=$($DOCKER logs "$SEC_ID" 2>&1 | grep 'data plane chosen')
        echo "${line:-no 'data plane chosen' line}"
        grep -qE 'plane="?mmsg' <<<"$line" \
            && grep -qE 'io_uring unavailable \(.*(Operation not permitted|os error 1\)).*falling back to mmsg' <<<"$line"
    }
    check no-io_uring-fallback-logged check_uring_fallback_logged
    $DOCKER stop -t 5 "$SEC_ID" >/dev/null
else
    fail no-io_uring-ng-ping "$check_out"
fi

# Bridge networking with a small published range; the endpoints sit on the bridge gateway so that the relay can
# reach them, and send to the published ports on 127.0.0.1 (RTPENGINE_PUBLIC_IP puts that in the SDP).
if [ "$BRIDGE" = 1 ]; then
    BBASE=$(free_udp_ports 22) || BBASE=
    if [ -n "$BBASE" ]; then
        BNG=$BBASE BMIN=$((BBASE + 2)) BMAX=$((BBASE + 21))
        # A published NG port reaches the container's eth0 address: that needs the opt-in.
        BR_ID=$(run_bg -p "127.0.0.1:$BNG:22222/udp" -p "127.0.0.1:$BMIN-$BMAX:$BMIN-$BMAX/udp" \
            -e RTPENGINE_LISTEN_NG=0.0.0.0:22222 -e RTPENGINE_LISTEN_HTTP=0.0.0.0:22223 \
            -e "RTPENGINE_PORT_MIN=$BMIN" -e "RTPENGINE_PORT_MAX=$BMAX" -e RTPENGINE_PUBLIC_IP=127.0.0.1 "$IMAGE")
        if [ -n "$BR_ID" ] && check_out=$(wait_ping "127.0.0.1:$BNG" "$BR_ID" 2>&1); then
            pass bridge-ng-ping
            check_opt_in_reachable() {
                local ip
                ip=$(container_ip "$BR_ID")
                $NG --timeout 1 ping "$ip:22222" || { echo "no NG pong from $ip:22222"; return 1; }
                http_ping "$ip:22223" || { echo "no HTTP pong from $ip:22223"; return 1; }
                # The healthcheck asks the wildcard listener on loopback.
                $DOCKER exec "$BR_ID" rtprelay-healthcheck
            }
            check bridge-ng-opt-in-reachable check_opt_in_reachable
            check bridge-call $NG call "127.0.0.1:$BNG" --local-ip "$GATEWAY" --packets 50
            check bridge-sigterm-exit-0 stop_exit0 "$BR_ID"
        else
            fail bridge-ng-ping "$check_out"
        fi
    else
        fail bridge-network "no free port range"
    fi
else
    skip bridge-call "no bridge network on this engine (dockerd started with --bridge=none)"
fi

# --- NG exposure and the healthcheck ---------------------------------------------------------------------------
# The image's defaults keep NG (UDP) and HTTP on the container's loopback: on a bridge network, nothing outside the
# container reaches them on its address, while the healthcheck (inside) still gets its pong.
if [ "$BRIDGE" = 1 ]; then
    DEF_ID=$(run_bg --network bridge "${HEALTH_FAST[@]}" "$IMAGE")
    if [ -n "$DEF_ID" ] && check_out=$(wait_healthy "$DEF_ID" 2>&1); then
        pass default-container-healthy
        check_default_private() {
            local ip out
            ip=$(container_ip "$DEF_ID")
            [ -n "$ip" ] || { echo "no bridge address"; return 1; }
            if out=$($NG --timeout 1 --retries 2 ping "$ip:22222" 2>&1); then
                echo "NG answered on the bridge address $ip:22222: $out"
                return 1
            fi
            if http_ping "$ip:22223" >/dev/null; then echo "HTTP answered on $ip:22223"; return 1; fi
            # Inside the container it answers (so the silence above is the listen address, not a dead relay).
            $DOCKER exec "$DEF_ID" rtprelay-healthcheck
        }
        check default-ng-not-on-bridge-address check_default_private
        $DOCKER stop -t 5 "$DEF_ID" >/dev/null
    else
        fail default-container-healthy "$check_out"
    fi
else
    skip default-ng-not-on-bridge-address "no bridge network on this engine"
fi

# A mounted config that moves the control sockets: the healthcheck asks the relay where they are (it runs
# `rtprelay --list-control-sockets` with the relay's own arguments), so the container stays healthy. The relay runs
# with no network but loopback, so no port can clash with the host's.
mkdir -p "$TMP/conf"
write_conf() { # write_conf NAME LINES...: a config file readable by the rtprelay user
    { echo '[rtprelay]'; printf '%s\n' "${@:2}" 'port-min = 30000' 'port-max = 30099' 'log-stderr = true' \
        'foreground = true'; } >"$TMP/conf/$1"
    chmod 755 "$TMP/conf"
    chmod 644 "$TMP/conf/$1"
}
write_conf moved.conf 'listen-ng = 127.0.0.1:23456' 'listen-http = 127.0.0.1:23457'
write_conf http-only.conf 'listen-http = 127.0.0.1:23458'
write_conf tcp-only.conf 'listen-tcp-ng = 127.0.0.1:23459'
CONF_RUN=(--network none -e RTPENGINE_INTERFACE=127.0.0.1 "${HEALTH_FAST[@]}")
# healthy_on CONTAINER WHAT: Docker says healthy, and the healthcheck names WHAT as the socket it asked.
healthy_on() {
    local out
    wait_healthy "$1" || return 1
    out=$($DOCKER exec "$1" rtprelay-healthcheck) || { echo "$out"; return 1; }
    echo "$out"
    grep -qF -- "$2" <<<"$out"
}
MV_ID=$(run_bg "${CONF_RUN[@]}" -v "$TMP/conf/moved.conf:/etc/rtprelay/rtprelay.conf:ro" "$IMAGE")
check healthcheck-follows-mounted-config healthy_on "$MV_ID" "udp 127.0.0.1:23456"
# And it tells a relay that does not answer from one that does: with the relay stopped (SIGSTOP from the host),
# the same check fails.
check_health_detects_silence() {
    local pid out rc
    pid=$($DOCKER inspect -f '{{.State.Pid}}' "$MV_ID") && [ "${pid:-0}" -gt 0 ] || { echo "no pid"; return 1; }
    kill -STOP "$pid" || return 1
    out=$($DOCKER exec "$MV_ID" rtprelay-healthcheck 2>&1)
    rc=$?
    kill -CONT "$pid"
    echo "exit $rc: $out"
    [ "$rc" != 0 ] && grep -q 'no pong from udp 127.0.0.1:23456' <<<"$out"
}
check healthcheck-fails-when-relay-silent check_health_detects_silence
$DOCKER stop -t 5 "$MV_ID" >/dev/null
# Options after the image name override the file, for the healthcheck as for the relay.
CL_ID=$(run_bg "${CONF_RUN[@]}" -v "$TMP/conf/moved.conf:/etc/rtprelay/rtprelay.conf:ro" "$IMAGE" \
    --listen-ng=127.0.0.1:23999)
check healthcheck-follows-command-line healthy_on "$CL_ID" "udp 127.0.0.1:23999"
$DOCKER stop -t 5 "$CL_ID" >/dev/null
# With HTTP as the only control listener, GET /ping is the probe.
HO_ID=$(run_bg "${CONF_RUN[@]}" -v "$TMP/conf/http-only.conf:/etc/rtprelay/rtprelay.conf:ro" "$IMAGE")
check healthcheck-http-only healthy_on "$HO_ID" "http 127.0.0.1:23458"
$DOCKER stop -t 5 "$HO_ID" >/dev/null
# With NG over TCP as the only control listener, the NG ping goes over TCP.
TO_ID=$(run_bg "${CONF_RUN[@]}" -v "$TMP/conf/tcp-only.conf:/etc/rtprelay/rtprelay.conf:ro" "$IMAGE")
check healthcheck-tcp-ng-only healthy_on "$TO_ID" "tcp 127.0.0.1:23459"
$DOCKER stop -t 5 "$TO_ID" >/dev/null

# --- image fidelity with the real relay --------------------------------------------------------------------------
# relay_sockets_of CONTAINER: the relay's own `--list-control-sockets` with its running arguments.
relay_sockets_of() {
    # shellcheck disable=SC2016 # expanded by the container's bash
    $DOCKER exec "$1" bash -c 'mapfile -d "" -t a </proc/1/cmdline; rtprelay --list-control-sockets "${a[@]:1}"'
}
# ctl_get CONTAINER ADDRESS WHAT [CTL]: `rtprelay-ctl -ip ADDRESS get WHAT` inside the container.
ctl_get() { $DOCKER exec "$1" "${4:-rtprelay-ctl}" -ip "$2" get "$3"; }

# Variables the old entrypoint ignored reach the relay: its CLI reports the values (also through rtpengine-ctl), and
# numbered list variables add control sockets.
ENV_ID=$(run_bg "${CONF_RUN[@]}" -e RTPENGINE_TIMEOUT=77 -e RTPENGINE_DELETE_DELAY=13 -e RTPENGINE_MAX_SESSIONS=42 \
    -e RTPENGINE_LISTEN_CLI=127.0.0.1:9900 -e RTPENGINE_LISTEN_TCP_NG=127.0.0.1:23460 \
    -e RTPENGINE_LISTEN_TCP_NG_1=127.0.0.1:23461 "$IMAGE")
check_env_effective() {
    local out
    wait_healthy "$ENV_ID" || return 1
    out=$(ctl_get "$ENV_ID" 127.0.0.1:9900 timeout) && echo "timeout: $out" && [ "$out" = TIMEOUT=77 ] || return 1
    out=$(ctl_get "$ENV_ID" 127.0.0.1:9900 deletedelay) && echo "deletedelay: $out" && [ "$out" = 13 ] || return 1
    out=$(ctl_get "$ENV_ID" 127.0.0.1:9900 maxsessions rtpengine-ctl) && echo "maxsessions: $out" \
        && [ "$out" = 'Maximum sessions configured on rtpengine: 42' ] || return 1
    out=$(relay_sockets_of "$ENV_ID") || { echo "$out"; return 1; }
    echo "$out" | tr '\n' ' '
    grep -qx 'tcp 127.0.0.1:23460' <<<"$out" && grep -qx 'tcp 127.0.0.1:23461' <<<"$out"
}
check env-timeout-delete-delay-max-sessions-effective check_env_effective
$DOCKER stop -t 5 "$ENV_ID" >/dev/null

# A mounted config's interface is kept: with no network but loopback the container has no address of its own, so
# the relay starts only with the file's interface (the old entrypoint stopped, or replaced it).
write_conf loopback-iface.conf 'interface = 127.0.0.1' 'listen-ng = 127.0.0.1:23462'
KI_ID=$(run_bg --network none "${HEALTH_FAST[@]}" -v "$TMP/conf/loopback-iface.conf:/etc/rtprelay/rtprelay.conf:ro" "$IMAGE")
check_config_kept_real() {
    local args
    healthy_on "$KI_ID" "udp 127.0.0.1:23462" || return 1
    args=$($DOCKER exec "$KI_ID" bash -c 'tr "\0" " " </proc/1/cmdline') || return 1
    echo "relay: $args"
    [[ $args != *--interface* ]]
}
check mounted-config-interface-kept check_config_kept_real
$DOCKER stop -t 5 "$KI_ID" >/dev/null

# `rtpengine` as the command runs the relay with the variables and the options given.
AL_ID=$(run_bg "${CONF_RUN[@]}" -e RTPENGINE_TIMEOUT=55 -e RTPENGINE_LISTEN_CLI=127.0.0.1:9900 "$IMAGE" \
    rtpengine --listen-ng=127.0.0.1:23463)
check_rtpengine_alias() {
    local comm out
    healthy_on "$AL_ID" "udp 127.0.0.1:23463" || return 1
    comm=$($DOCKER exec "$AL_ID" cat /proc/1/comm) && echo "pid 1: $comm" && [ "$comm" = rtprelay ] || return 1
    out=$(ctl_get "$AL_ID" 127.0.0.1:9900 timeout) && echo "timeout: $out" && [ "$out" = TIMEOUT=55 ]
}
check rtpengine-alias-runs check_rtpengine_alias
$DOCKER stop -t 5 "$AL_ID" >/dev/null
# And `rtpengine-recording`, as a compose file written for rtpengine would start it.
check_rtpengine_recording_alias() {
    local id comm
    id=$(run_bg --network none "$IMAGE" rtpengine-recording) || return 1
    sleep 3
    comm=$($DOCKER exec "$id" cat /proc/1/comm) || { $DOCKER logs "$id" 2>&1 | tail -3; return 1; }
    echo "pid 1: $comm"
    [ "$comm" = rtprelay-record ] || return 1
    $DOCKER exec "$id" rtprelay-healthcheck || return 1
    stop_exit0 "$id"
}
check rtpengine-recording-alias-runs check_rtpengine_recording_alias

# rtpengine's own config file, mounted where rtpengine has it, is read (its [rtpengine] section, with a key rtprelay
# ignores): the healthcheck finds NG where that file moved it, and the CLI reports its timeout.
mkdir -p "$TMP/rtpengine"
printf '[rtpengine]\ninterface = 127.0.0.1\nlisten-ng = 127.0.0.1:23464\nlisten-cli = 127.0.0.1:9901\ntimeout = 91\nlog-facility = daemon\nport-min = 30000\nport-max = 30099\n' \
    >"$TMP/rtpengine/rtpengine.conf"
chmod 755 "$TMP/rtpengine"
chmod 644 "$TMP/rtpengine/rtpengine.conf"
RE_ID=$(run_bg --network none "${HEALTH_FAST[@]}" -v "$TMP/rtpengine/rtpengine.conf:/etc/rtpengine/rtpengine.conf:ro" \
    "$IMAGE")
check_rtpengine_conf() {
    local out
    healthy_on "$RE_ID" "udp 127.0.0.1:23464" || return 1
    out=$(ctl_get "$RE_ID" 127.0.0.1:9901 timeout rtpengine-ctl) && echo "timeout: $out" && [ "$out" = TIMEOUT=91 ]
}
check etc-rtpengine-conf-read-healthcheck-follows check_rtpengine_conf
$DOCKER stop -t 5 "$RE_ID" >/dev/null

# --- XDP plane -------------------------------------------------------------------------------------------------
# The relay on its own eth0 (default bridge) with the XDP capabilities and RTPENGINE_TABLE=0, called from the host
# at the bridge gateway. Its network namespace belongs to a holder container that it joins (--network container:),
# so that eth0 outlives the relay and the test can see that the program is gone after a stop. A frame the relay's
# program sends back out of eth0 (XDP_TX) is dropped by the veth unless the host-side peer runs an XDP program too:
# a pass-everything program is attached there for the test, and removed at the end.
XDP_PASS_SRC=$DOCKER_DIR/../tests/common/xdp_pass.bpf.c
XDP_CALL_PACKETS=300
XDP_CALL=(call --packets "$XDP_CALL_PACKETS" --interval 0.01)
# Packets of a call the workers may forward before its flow is in the kernel (the first of each direction, and
# those sent while the rule is being installed).
OFFLOAD_SLACK=20

# metric HOST[:PORT] NAME: the value of an unlabelled /metrics line of the relay (port 22223 by default), empty
# when absent.
metric() {
    python3 - "$1" "$2" <<'PY'
import sys, urllib.request
host = sys.argv[1] if ":" in sys.argv[1] else sys.argv[1] + ":22223"
body = urllib.request.urlopen("http://%s/metrics" % host, timeout=3).read().decode()
print(next((l.split()[1] for l in body.splitlines() if l.split(" ")[0] == sys.argv[2]), ""))
PY
}
# offloaded_counts XDP USER: the kernel program forwarded about every packet of an XDP_CALL (both ways), the
# workers only the few before the call's flow reached the kernel, and together they account for each packet once.
offloaded_counts() {
    local xdp=$1 user=$2 want=$((2 * XDP_CALL_PACKETS))
    echo "call of $want packets: $xdp forwarded by the XDP program, $user by the workers"
    [ "$xdp" -le "$want" ] || { echo "the XDP program counted more packets than were sent"; return 1; }
    [ "$xdp" -ge $((want - OFFLOAD_SLACK)) ] \
        || { echo "over $OFFLOAD_SLACK packets missed the offload"; return 1; }
    [ $((xdp + user)) -ge "$want" ] && [ $((xdp + user)) -le $((want + OFFLOAD_SLACK)) ] \
        || { echo "kernel and worker counts do not add up to the packets sent"; return 1; }
}
# xdp_on_eth0 PID: the XDP program on eth0 in that process's network namespace (status 1 when none).
xdp_on_eth0() { nsenter -t "$1" -n ip -d link show dev eth0 | grep -oE 'prog/xdp[a-z]* id [0-9]+'; }

XDP_PASS_OBJ=
if ! command -v clang >/dev/null; then
    skip xdp-pass-program "no clang on the host to build $XDP_PASS_SRC"
elif clang -O2 -g -target bpf -c "$XDP_PASS_SRC" -o "$TMP/xdp_pass.o" 2>"$TMP/clang.log"; then
    XDP_PASS_OBJ=$TMP/xdp_pass.o
else
    fail xdp-pass-program "cannot build $XDP_PASS_SRC: $(tail -3 "$TMP/clang.log")"
fi

if [ "$BRIDGE" = 0 ]; then
    skip xdp-call-with-caps "no bridge network on this engine"
elif [ -z "$XDP_PASS_OBJ" ] || ! command -v nsenter >/dev/null; then
    skip xdp-call-with-caps "needs the XDP_PASS program for the host-side veth, and nsenter"
else
    HOLD_ID=$(run_bg --network bridge --entrypoint sleep "$IMAGE" infinity)
    HOLD_PID=$($DOCKER inspect -f '{{.State.Pid}}' "$HOLD_ID")
    XIP=$(container_ip "$HOLD_ID")
    PEER_INDEX=$($DOCKER exec "$HOLD_ID" cat /sys/class/net/eth0/iflink)
    HOST_PEER=$(ip -o link show | awk -F': ' -v i="$PEER_INDEX" '$1 == i { split($2, n, "@"); print n[1] }')
    info "holder $XIP, host-side veth ${HOST_PEER:-not found}"
    if [ -z "$HOST_PEER" ] || ! out=$(ip link set dev "$HOST_PEER" xdpdrv obj "$XDP_PASS_OBJ" sec xdp 2>&1); then
        fail xdp-call-with-caps "cannot attach XDP_PASS to the host-side veth '$HOST_PEER': ${out:-}"
    else
        XDP_ID=$(run_bg --network "container:$HOLD_ID" "${XDP_CAPS[@]}" -e RTPENGINE_TABLE=0 \
            -e RTPENGINE_LISTEN_NG=0.0.0.0:22222 -e RTPRELAY_LISTEN_HTTP=0.0.0.0:22223 -e RTPENGINE_PORT_MIN=30000 -e RTPENGINE_PORT_MAX=30199 "$IMAGE")
        if [ -n "$XDP_ID" ] && check_out=$(wait_ping "$XIP:22222" "$XDP_ID" 2>&1); then
            plane_line=$($DOCKER logs "$XDP_ID" 2>&1 | grep 'data plane chosen')
            info "${plane_line:-no 'data plane chosen' line}"
            check_xdp_call() {
                local before after user_before user
                grep -qE 'plane="?xdp' <<<"$plane_line" && grep -qE 'xdp: (native|generic)' <<<"$plane_line" \
                    || { echo "not the XDP plane: ${plane_line:-no plane line}"; return 1; }
                before=$(metric "$XIP" rtprelay_xdp_forwarded_packets_total) || return 1
                user_before=$(metric "$XIP" rtprelay_userspace_packets_total) || return 1
                $NG "${XDP_CALL[@]}" "$XIP:22222" --local-ip "$GATEWAY" || return 1
                after=$(metric "$XIP" rtprelay_xdp_forwarded_packets_total) || return 1
                user=$(metric "$XIP" rtprelay_userspace_packets_total) || return 1
                echo "xdp forwarded ${before:-?} -> ${after:-none}, userspace packets ${user_before:-?} -> ${user:-?}" \
                    | tee "$TMP/xdp-call"
                offloaded_counts "$((${after:-0} - ${before:-0}))" "$((${user:-0} - ${user_before:-0}))"
            }
            check xdp-call-with-caps check_xdp_call
            info "$(cat "$TMP/xdp-call" 2>/dev/null)"
            check_xdp_process() {
                local status eff amb
                status=$($DOCKER exec "$XDP_ID" grep -E '^(Uid|Cap(Eff|Amb)):' /proc/1/status) || return 1
                echo "$status"
                grep -qE "^Uid:\s+$UID_EXPECTED\s" <<<"$status" || return 1
                eff=$(awk '/^CapEff:/ { print $2 }' <<<"$status") amb=$(awk '/^CapAmb:/ { print $2 }' <<<"$status")
                [ "$eff" = "$amb" ] && (((0x$eff >> 12 & 1) && (0x$eff & ~RELAY_CAP_MASK) == 0))
            }
            check xdp-relay-uid-10001-with-caps-only check_xdp_process
            check xdp-relay-no-new-privs no_new_privs "$XDP_ID"
            # Started as root, the healthcheck runs as root too, and reads the config as the relay's user.
            check xdp-healthcheck $DOCKER exec "$XDP_ID" rtprelay-healthcheck
            check xdp-attached-on-eth0 xdp_on_eth0 "$HOLD_PID"
            check_xdp_detach() {
                stop_exit0 "$XDP_ID" || return 1
                log_has "$XDP_ID" 'XDP program detached' \
                    || { echo "no 'XDP program detached' in the log"; return 1; }
                if xdp_on_eth0 "$HOLD_PID"; then echo "a program is still attached to eth0"; return 1; fi
            }
            check xdp-detach-on-stop check_xdp_detach
        else
            fail xdp-call-with-caps "$check_out"
        fi
    fi
fi

# With --network host, on a veth pair made for the test: the host end carries the relay's address (in
# 198.18.0.0/15, the benchmarking range) and its XDP program, the other end sits in a network namespace of its own
# with the two call endpoints and an XDP_PASS program (for the frames XDP_TX sends back into the pair).
if [ -z "$XDP_PASS_OBJ" ]; then
    skip xdp-host-network-call "needs the XDP_PASS program for the namespace end of the veth pair"
else
    XNS=rtprelay-img-$$-$RANDOM
    # A /24 that no host route covers yet.
    for _ in $(seq 1 20); do
        XNET=198.18.$((RANDOM % 250)).
        ip -4 route show | grep -q "^${XNET}0/24 " || break
    done
    XVETH=rtpx$((RANDOM % 100000))
    if ip netns add "$XNS" \
        && ip link add "${XVETH}h" type veth peer name "${XVETH}n" netns "$XNS" \
        && ip addr add "${XNET}1/24" dev "${XVETH}h" && ip link set "${XVETH}h" up \
        && ip -n "$XNS" addr add "${XNET}2/24" dev "${XVETH}n" && ip -n "$XNS" link set "${XVETH}n" up \
        && ip -n "$XNS" link set lo up \
        && ip -n "$XNS" link set dev "${XVETH}n" xdpdrv obj "$XDP_PASS_OBJ" sec xdp \
        && HBASE=$(free_udp_ports 24 "${XNET}1"); then
        XH_NG=$XNET'1:'$HBASE XH_HTTP=$((HBASE + 1))
        HX_ID=$(run_bg --network host "${XDP_CAPS[@]}" -e RTPENGINE_TABLE=0 -e "RTPENGINE_INTERFACE=${XNET}1" \
            -e "RTPENGINE_LISTEN_NG=$XH_NG" -e "RTPRELAY_LISTEN_HTTP=${XNET}1:$XH_HTTP" \
            -e "RTPENGINE_PORT_MIN=$((HBASE + 4))" -e "RTPENGINE_PORT_MAX=$((HBASE + 23))" "$IMAGE")
        if [ -n "$HX_ID" ] && check_out=$(wait_ping "$XH_NG" "$HX_ID" 2>&1); then
            check_xdp_host_call() {
                local line after user
                line=$($DOCKER logs "$HX_ID" 2>&1 | grep 'data plane chosen')
                echo "$line"
                grep -qE "plane=\"?xdp.*xdp: (native|generic) on ${XVETH}h" <<<"$line" || return 1
                ip netns exec "$XNS" $NG "${XDP_CALL[@]}" "$XH_NG" --local-ip "${XNET}2" || return 1
                after=$(metric "${XNET}1:$XH_HTTP" rtprelay_xdp_forwarded_packets_total) || return 1
                user=$(metric "${XNET}1:$XH_HTTP" rtprelay_userspace_packets_total) || return 1
                echo "xdp forwarded ${after:-none}, userspace packets ${user:-?}" | tee "$TMP/xdp-host-call"
                # A fresh relay: its counters are this call's.
                offloaded_counts "${after:-0}" "${user:-0}"
            }
            check xdp-host-network-call check_xdp_host_call
            info "$(cat "$TMP/xdp-host-call" 2>/dev/null)"
            check_xdp_host_detach() {
                ip link show dev "${XVETH}h" | grep -q 'prog/xdp' \
                    || { echo "no program on ${XVETH}h while running"; return 1; }
                stop_exit0 "$HX_ID" || return 1
                log_has "$HX_ID" 'XDP program detached' \
                    || { echo "no 'XDP program detached'"; return 1; }
                ! ip link show dev "${XVETH}h" | grep 'prog/xdp'
            }
            check xdp-host-network-detach-on-stop check_xdp_host_detach
        else
            fail xdp-host-network-call "$check_out"
        fi
        # AF_XDP on the same veth, with Docker's default locked-memory limit (8 MiB: the relay shortens its
        # receive rings to fit and says so). With delayed endpoint learning, the packets of the learning window
        # go through the AF_XDP socket (the kernel fast path takes over afterwards).
        HA_ID=$(run_bg --network host "${XDP_CAPS[@]}" -e RTPRELAY_DATAPLANE=afxdp -e RTPRELAY_NO_FALLBACK=yes \
            -e "RTPENGINE_INTERFACE=${XNET}1" -e "RTPENGINE_LISTEN_NG=$XH_NG" \
            -e "RTPRELAY_LISTEN_HTTP=${XNET}1:$XH_HTTP" -e "RTPENGINE_PORT_MIN=$((HBASE + 4))" \
            -e "RTPENGINE_PORT_MAX=$((HBASE + 23))" "$IMAGE" --endpoint-learning=delayed)
        if [ -n "$HA_ID" ] && check_out=$(wait_ping "$XH_NG" "$HA_ID" 2>&1); then
            check_afxdp_host_call() {
                local line sent
                line=$($DOCKER logs "$HA_ID" 2>&1 | grep 'data plane chosen')
                echo "$line"
                grep -qE 'plane="?afxdp' <<<"$line" || { echo "not the AF_XDP plane"; return 1; }
                log_has "$HA_ID" 'receive rings shortened to fit RLIMIT_MEMLOCK' >/dev/null \
                    || { echo "no locked-memory hint in the log"; return 1; }
                ip netns exec "$XNS" $NG "${XDP_CALL[@]}" "$XH_NG" --local-ip "${XNET}2" || return 1
                sent=$(metric "${XNET}1:$XH_HTTP" rtprelay_afxdp_transmitted_packets_total) || return 1
                echo "sent out of the AF_XDP socket: ${sent:-none}" | tee "$TMP/afxdp-host-call"
                [ "${sent:-0}" -gt 0 ]
            }
            check afxdp-host-network-call check_afxdp_host_call
            check afxdp-relay-no-new-privs no_new_privs "$HA_ID"
            info "$(cat "$TMP/afxdp-host-call" 2>/dev/null)"
            check_afxdp_detach() {
                stop_exit0 "$HA_ID" || return 1
                ! ip link show dev "${XVETH}h" | grep 'prog/xdp'
            }
            check afxdp-host-network-detach-on-stop check_afxdp_detach
        else
            fail afxdp-host-network-call "$check_out"
        fi
    else
        fail xdp-host-network-call "cannot build the veth pair and namespace $XNS"
    fi
fi

if [ "$BRIDGE" = 1 ]; then
    # Without --user 0 and the capabilities: the relay says why XDP cannot run, and forwards in userspace.
    FB_ID=$(run_bg --network bridge -e RTPENGINE_TABLE=0 -e RTPENGINE_LISTEN_NG=0.0.0.0:22222 \
        -e RTPRELAY_LISTEN_HTTP=0.0.0.0:22223 "$IMAGE")
    FB_IP=$(container_ip "$FB_ID")
    if [ -n "$FB_ID" ] && check_out=$(wait_ping "$FB_IP:22222" "$FB_ID" 2>&1); then
        check_xdp_fallback() {
            local line forwarded
            line=$($DOCKER logs "$FB_ID" 2>&1 | grep 'data plane chosen')
            echo "$line"
            grep -q 'xdp unavailable (.*), falling back to' <<<"$line" || { echo "no fallback reason"; return 1; }
            # The kernel's own answer, EPERM, not only our wording around it.
            grep -qE 'Operation not permitted|os error 1\)|EPERM' <<<"$line" \
                || { echo "the reason does not name EPERM"; return 1; }
            grep -q 'CAP_BPF' <<<"$line" || { echo "the reason does not name the missing capability"; return 1; }
            $NG call "$FB_IP:22222" --local-ip "$GATEWAY" --packets 50 || return 1
            forwarded=$(metric "$FB_IP" rtprelay_xdp_forwarded_packets_total) || return 1
            [ "${forwarded:-0}" = 0 ] || { echo "XDP forwarded $forwarded packets without capabilities?"; return 1; }
        }
        check xdp-fallback-without-caps check_xdp_fallback
        $DOCKER stop -t 5 "$FB_ID" >/dev/null
    else
        fail xdp-fallback-without-caps "$check_out"
    fi
fi

# -F (no fallback) without the capabilities: the container stops at once, with an error that names XDP.
check_xdp_no_fallback() {
    local out rc
    out=$(timeout 60 $DOCKER run --rm -e RTPENGINE_TABLE=0 "$IMAGE" -F 2>&1)
    rc=$?
    echo "exit $rc: $(tail -n 2 <<<"$out")"
    [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qi xdp <<<"$out" && ! grep -q 'rtprelay ready' <<<"$out" \
        && grep -qiE 'not permitted|CAP_' <<<"$out"
}
check xdp-no-fallback-exits check_xdp_no_fallback

check_recording_runs() {
    local id
    id=$(run_bg --network none "$IMAGE" rtprelay-recording) || return 1
    sleep 3
    [ "$($DOCKER inspect -f '{{.State.Running}}' "$id")" = true ] || { echo "not running after 3 s: $($DOCKER logs "$id" 2>&1 | tail -3)"; return 1; }
    # The image's healthcheck passes for the recorder too (no relay in its container), and it has no_new_privs.
    $DOCKER exec "$id" rtprelay-healthcheck || return 1
    no_new_privs "$id" || return 1
    stop_exit0 "$id"
}
check recording-daemon-runs-and-stops check_recording_runs

summary
