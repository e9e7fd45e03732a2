#!/bin/bash
# Entry point of the rtprelay image: turns RTPENGINE_* / RTPRELAY_* variables into command-line options, then
# execs the daemon so that it is PID 1 and receives SIGTERM itself (graceful stop, exit 0).
#
#   (no command) or options only   -> rtprelay [env options] [options]
#   rtprelay [options]             -> the same
#   rtprelay-recording [options]   -> the recording daemon, with the recording variables
#   anything else                  -> exec'd as given (e.g. bash)
#
# Started as root (`docker run --user 0`, needed for the XDP plane: Docker gives a non-root user no capabilities),
# it switches the daemons to the rtprelay user and hands over only the capabilities XDP needs, as ambient
# capabilities: see drop_root below. Either way the daemons run with no_new_privs set (`setpriv --no-new-privs`):
# nothing they exec can gain privileges through setuid/setgid bits or file capabilities.
#
# Every variable has an RTPRELAY_ alias; when both are set, RTPRELAY_ wins. A bad value stops the container before
# the daemon starts, with a message naming the variable, and exit code 2.
set -euo pipefail

CONFIG_DEFAULT=/etc/rtprelay/rtprelay.conf

die() {
    printf 'docker-entrypoint: %s\n' "$*" >&2
    exit 2
}

# env NAME -> prints the value of RTPRELAY_NAME or RTPENGINE_NAME and sets SOURCE to the variable used.
SOURCE=
env_value() {
    local relay="RTPRELAY_$1" engine="RTPENGINE_$1"
    if [ -n "${!relay:-}" ]; then
        SOURCE=$relay
        VALUE=${!relay}
    elif [ -n "${!engine:-}" ]; then
        SOURCE=$engine
        VALUE=${!engine}
    else
        SOURCE=
        VALUE=
    fi
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [ ${#1} -le 9 ]; }
is_int() { [[ $1 =~ ^-?[0-9]+$ ]] && [ ${#1} -le 10 ]; }
is_ipv4() {
    [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
    local o
    for o in "${BASH_REMATCH[@]:1}"; do [ "$((10#$o))" -le 255 ] || return 1; done
}
is_ipv6() { [[ $1 =~ ^[0-9A-Fa-f:.]+$ ]] && [[ $1 == *:*:* || $1 == *::* ]]; }
is_ip() { is_ipv4 "$1" || is_ipv6 "$1"; }
is_port() { is_uint "$1" && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

# IP:PORT, [IPv6]:PORT or PORT.
is_listen_addr() {
    local v=$1
    if is_port "$v"; then return 0; fi
    local ip port
    if [[ $v =~ ^\[([^]]+)\]:([0-9]+)$ ]]; then
        ip=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
        is_ipv6 "$ip" && is_port "$port"
        return
    fi
    [[ $v =~ ^([^:]+):([0-9]+)$ ]] || return 1
    ip=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
    is_ipv4 "$ip" && is_port "$port"
}

# [NAME/]ADDRESS[!ADVERTISED], where ADDRESS is an IP or a network interface name (as rtpengine accepts).
is_interface_spec() {
    local v=$1 name addr adv
    [[ $v =~ ^(([A-Za-z0-9_.:-]+)/)?([^/!]+)(!([^/!]+))?$ ]] || return 1
    addr=${BASH_REMATCH[3]}
    adv=${BASH_REMATCH[5]}
    is_ip "$addr" || [[ $addr =~ ^[A-Za-z][A-Za-z0-9_.-]{0,14}$ ]] || return 1
    [ -z "$adv" ] || is_ip "$adv"
}

# The container's first non-loopback address: IPv4 first, else IPv6.
first_address() {
    local addrs a
    addrs=$(hostname -I 2>/dev/null || true)
    for a in $addrs; do is_ipv4 "$a" && { echo "$a"; return; }; done
    for a in $addrs; do is_ipv6 "$a" && { echo "$a"; return; }; done
    return 1
}

is_bool() { [[ ${1,,} =~ ^(1|0|yes|no|true|false|on|off)$ ]]; }
is_true() { [[ ${1,,} =~ ^(1|yes|true|on)$ ]]; }

has_option() { # has_option NAME... -- ARGS: is any long/short option NAME among ARGS?
    local names=() a n
    while [ "$1" != -- ]; do names+=("$1"); shift; done
    shift
    for a in "$@"; do
        for n in "${names[@]}"; do
            [[ $a == "$n" || $a == "$n="* ]] && return 0
        done
    done
    return 1
}

relay_args() {
    OPTS=()
    if ! has_option --config-file -- "$@"; then
        env_value CONFIG_FILE
        local config=${VALUE:-$CONFIG_DEFAULT}
        if [ "$config" != none ] && [ ! -r "$config" ]; then
            die "${SOURCE:-config file}=$config: file not found or not readable"
        fi
        OPTS+=("--config-file=$config")
    fi

    env_value TABLE
    if [ -n "$VALUE" ]; then
        { is_int "$VALUE" && [ "$VALUE" -ge -1 ]; } || die "$SOURCE=$VALUE: expected -1 (userspace) or a table number >= 0"
        OPTS+=("--table=$VALUE")
    fi
    env_value DATAPLANE
    if [ -n "$VALUE" ]; then
        [[ ${VALUE,,} =~ ^(auto|mmsg|uring|io_uring|io-uring|xdp|afxdp|af_xdp|af-xdp)$ ]] \
            || die "$SOURCE=$VALUE: expected auto, mmsg, uring, xdp or afxdp"
        OPTS+=("--dataplane=$VALUE")
    fi
    env_value NO_FALLBACK
    if [ -n "$VALUE" ]; then
        is_bool "$VALUE" || die "$SOURCE=$VALUE: expected yes or no"
        is_true "$VALUE" && OPTS+=("--no-fallback")
    fi

    env_value PUBLIC_IP
    local public=$VALUE public_src=$SOURCE
    if [ -n "$public" ] && ! is_ip "$public"; then
        die "$public_src=$public: expected an IPv4 or IPv6 address"
    fi

    env_value INTERFACE
    local specs=() spec
    if [ -n "$VALUE" ]; then
        local iface_src=$SOURCE
        # Several interfaces: separated by spaces, commas or semicolons.
        IFS=' ,;' read -r -a specs <<<"$VALUE"
        [ ${#specs[@]} -gt 0 ] || die "$iface_src is empty"
        for spec in "${specs[@]}"; do
            is_interface_spec "$spec" || die "$iface_src=$VALUE: '$spec' is not [NAME/]ADDRESS[!ADVERTISED]"
        done
        if [ -n "$public" ]; then
            [ ${#specs[@]} -eq 1 ] || die "$public_src needs a single interface; give each advertised address in $iface_src as NAME/IP!ADVERTISED"
            [[ ${specs[0]} != *'!'* ]] || die "$public_src is set but $iface_src=${specs[0]} already has an advertised address"
            specs[0]="${specs[0]}!$public"
        fi
    elif ! has_option -i --interface -- "$@"; then
        local addr
        addr=$(first_address) || die "no non-loopback address in this container: set RTPENGINE_INTERFACE"
        specs=("$addr${public:+!$public}")
    fi
    for spec in "${specs[@]}"; do OPTS+=("--interface=$spec"); done

    env_value LISTEN_NG
    if [ -n "$VALUE" ]; then
        is_listen_addr "$VALUE" || die "$SOURCE=$VALUE: expected IP:PORT or PORT"
        OPTS+=("--listen-ng=$VALUE")
    fi
    env_value LISTEN_HTTP
    if [ -n "$VALUE" ]; then
        is_listen_addr "$VALUE" || die "$SOURCE=$VALUE: expected IP:PORT or PORT"
        OPTS+=("--listen-http=$VALUE")
    fi

    env_value PORT_MIN
    local min=$VALUE min_src=$SOURCE
    env_value PORT_MAX
    local max=$VALUE max_src=$SOURCE
    if [ -n "$min" ]; then
        is_port "$min" || die "$min_src=$min: expected a port number 1-65535"
        OPTS+=("--port-min=$min")
    fi
    if [ -n "$max" ]; then
        is_port "$max" || die "$max_src=$max: expected a port number 1-65535"
        OPTS+=("--port-max=$max")
    fi
    if [ -n "$min" ] && [ -n "$max" ] && [ "$((10#$min))" -ge "$((10#$max))" ]; then
        die "$min_src=$min must be below $max_src=$max"
    fi

    env_value LOG_LEVEL
    if [ -n "$VALUE" ]; then
        { is_uint "$VALUE" && [ "$VALUE" -le 7 ]; } || die "$SOURCE=$VALUE: expected a log level 0-7"
        OPTS+=("--log-level=$VALUE")
    fi
    env_value NUM_THREADS
    if [ -n "$VALUE" ]; then
        { is_uint "$VALUE" && [ "$VALUE" -ge 1 ]; } || die "$SOURCE=$VALUE: expected a positive number of threads"
        OPTS+=("--num-threads=$VALUE")
    fi

    env_value RECORDING_DIR
    if [ -n "$VALUE" ]; then
        [[ $VALUE == /* ]] || die "$SOURCE=$VALUE: expected an absolute path"
        OPTS+=("--recording-dir=$VALUE")
    fi
    env_value RECORDING_METHOD
    if [ -n "$VALUE" ]; then
        [[ $VALUE == pcap || $VALUE == proc ]] || die "$SOURCE=$VALUE: expected pcap or proc"
        OPTS+=("--recording-method=$VALUE")
    fi
    env_value RECORDING_FORMAT
    if [ -n "$VALUE" ]; then
        [[ $VALUE == raw || $VALUE == eth ]] || die "$SOURCE=$VALUE: expected raw or eth"
        OPTS+=("--recording-format=$VALUE")
    fi
}

recording_args() {
    OPTS=()
    env_value RECORDING_DIR
    local spool=${VALUE:-/var/spool/rtprelay}
    [[ $spool == /* ]] || die "$SOURCE=$spool: expected an absolute path"
    has_option --spool-dir -- "$@" || OPTS+=("--spool-dir=$spool")

    env_value RECORDING_OUTPUT_DIR
    local out=${VALUE:-/var/lib/rtprelay-recording}
    [[ $out == /* ]] || die "$SOURCE=$out: expected an absolute path"
    has_option --output-dir -- "$@" || OPTS+=("--output-dir=$out")

    env_value RECORDING_OUTPUT_FORMAT
    if [ -n "$VALUE" ]; then
        [[ $VALUE == wav ]] || die "$SOURCE=$VALUE: expected wav"
        OPTS+=("--output-format=$VALUE")
    fi
    env_value RECORDING_NUM_THREADS
    if [ -n "$VALUE" ]; then
        { is_uint "$VALUE" && [ "$VALUE" -ge 1 ]; } || die "$SOURCE=$VALUE: expected a positive number of threads"
        OPTS+=("--num-threads=$VALUE")
    fi
    has_option --foreground -f -- "$@" || OPTS+=("--foreground")
}

# The capabilities the relay can use for XDP, with their numbers: loading BPF programs and maps (BPF, or SYS_ADMIN
# on kernels and engines without BPF), attaching them (NET_ADMIN), tracing-type helpers (PERFMON), raw and AF_XDP
# sockets (NET_RAW), AF_XDP frame memory beyond the locked-memory limit (IPC_LOCK). The daemon keeps those of them
# the container was given, nothing else.
RELAY_CAPS="net_admin:12 net_raw:13 ipc_lock:14 sys_admin:21 perfmon:38 bpf:39"

# drop_root COMMAND CAP:BIT... -> DROP: the setpriv command prefix the daemon runs under. It always sets
# no_new_privs (PR_SET_NO_NEW_PRIVS: execve can no longer raise privileges through setuid/setgid bits or file
# capabilities; it is inherited and cannot be cleared). Started as root, it also runs the daemon as rtprelay with
# those of the capabilities that are in this process's permitted and bounding sets, as ambient capabilities: those
# survive the switch to a non-root user and the exec, with no_new_privs too (no_new_privs only stops gains at
# execve; ambient capabilities are already held), while root's ordinary capabilities do not. File capabilities
# (setcap) are not used on purpose: a binary with file capabilities fails to exec where the container lacks them,
# and no_new_privs would ignore them anyway.
DROP=()
drop_root() {
    DROP=(setpriv --no-new-privs)
    local cmd=$1
    shift
    if [ "$(id -u)" != 0 ]; then
        DROP+=(--)
        return 0
    fi
    local prm bnd eff spec name bit keep= shown=
    prm=$(awk '/^CapPrm:/ { print $2 }' /proc/self/status)
    bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
    eff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
    # Switching users needs CAP_SETUID (7) and CAP_SETGID (6): without them, stay root as the user asked.
    if (((0x$eff >> 6 & 3) != 3)); then
        printf 'docker-entrypoint: running as root: no CAP_SETUID/CAP_SETGID to switch to the rtprelay user\n' >&2
        DROP+=(--)
        return 0
    fi
    for spec in "$@"; do
        name=${spec%%:*} bit=${spec#*:}
        if (((0x$prm & 0x$bnd) >> bit & 1)); then
            keep+=",+$name"
            shown+="${shown:+,}$name"
        fi
    done
    local uid gid
    uid=$(id -u rtprelay) && gid=$(id -g rtprelay) || die "no rtprelay user in this image"
    DROP+=("--reuid=$uid" "--regid=$gid" --init-groups "--inh-caps=-all$keep" "--ambient-caps=-all$keep")
    # Lower the bounding set too when allowed (CAP_SETPCAP, 8), so that nothing can regain another capability.
    if (((0x$eff >> 8 & 1) == 1)); then DROP+=("--bounding-set=-all$keep"); fi
    DROP+=(--)
    printf 'docker-entrypoint: started as root: running %s as rtprelay (uid %s) with capabilities: %s\n' \
        "$(basename "$cmd")" "$uid" "${shown:-none}" >&2
}

if [ $# -eq 0 ] || [[ $1 == -* ]]; then
    set -- rtprelay "$@"
fi

case "$1" in
    rtprelay | */rtprelay)
        cmd=$1
        shift
        # --version/--help need no configuration.
        if has_option --version -v -V --help -h -- "$@"; then exec "$cmd" "$@"; fi
        relay_args "$@"
        drop_root "$cmd" $RELAY_CAPS
        exec "${DROP[@]}" "$cmd" "${OPTS[@]}" "$@"
        ;;
    rtprelay-recording | */rtprelay-recording)
        cmd=$1
        shift
        if has_option --version -v -V --help -h -- "$@"; then exec "$cmd" "$@"; fi
        recording_args "$@"
        # The recorder only reads the spool and writes files: no capabilities.
        drop_root "$cmd"
        exec "${DROP[@]}" "$cmd" "${OPTS[@]}" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
