#!/bin/bash
# Entry point of the rtprelay image: turns RTPENGINE_* / RTPRELAY_* variables into command-line options, then
# execs the daemon so that it is PID 1 and receives SIGTERM itself (graceful stop, exit 0).
#
#   (no command) or options only          -> rtprelay [env options] [options]
#   rtprelay | rtpengine [options]        -> the same (rtpengine is an alias of rtprelay)
#   rtprelay-recording | rtpengine-recording [options]
#                                         -> the recording daemon, with the RTPENGINE_RECORDING_* variables
#   anything else                         -> exec'd as given (e.g. bash, rtprelay-ctl, rtpengine-ctl)
#
# The mapping is generic: RTPENGINE_<OPTION>=VALUE (or RTPRELAY_<OPTION>) becomes --<option>=VALUE, the option
# name in lower case with '-' for '_', checked against the relay's own option list (`rtprelay --list-options`):
# a name the relay does not know is warned about and left out. A flag takes yes/no (true/false, 1/0, on/off). A
# repeatable option takes several values separated by ';' (or ',' or spaces), or numbered variables
# (RTPENGINE_INTERFACE_1, RTPENGINE_INTERFACE_2, ...: after the plain one, in number order). For one option,
# RTPRELAY_ variables win over RTPENGINE_ ones. Options after the image name come after these, so they win too.
# Then the relay itself checks the whole configuration (`--list-control-sockets`, a dry run): a bad value stops the
# container before the daemon starts, with the relay's message, the variable it came from, and exit code 2.
#
# Nothing overrides a config file with a default: the entrypoint adds only --config-file (RTPENGINE_CONFIG_FILE,
# else /etc/rtpengine/rtpengine.conf when present, else the image's /etc/rtprelay/rtprelay.conf) and, when neither
# the variables, the command line nor that file names a media interface, --interface=<the container's first
# address> (with RTPENGINE_PUBLIC_IP as its advertised address).
#
# Started as root (`docker run --user 0`, needed for the XDP plane: Docker gives a non-root user no capabilities),
# it switches the daemons to the rtprelay user and hands over only the capabilities XDP needs, as ambient
# capabilities: see drop_root below. Either way the daemons run with no_new_privs set (`setpriv --no-new-privs`):
# nothing they exec can gain privileges through setuid/setgid bits or file capabilities.
set -euo pipefail

# The image's binaries: the option lists and the dry run come from them, whatever command runs.
RELAY_BIN=/usr/local/bin/rtprelay
RECORDER_BIN=/usr/local/bin/rtprelay-recording
CONFIG_DEFAULT=/etc/rtprelay/rtprelay.conf
CONFIG_RTPENGINE=/etc/rtpengine/rtpengine.conf
RECORDING_CONFIG_DEFAULT=/etc/rtprelay/rtprelay-recording.conf
RECORDING_CONFIG_RTPENGINE=/etc/rtpengine/rtpengine-recording.conf

die() {
    printf 'docker-entrypoint: %s\n' "$*" >&2
    exit 2
}
warn() { printf 'docker-entrypoint: warning: %s\n' "$*" >&2; }

is_ipv4() {
    [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
    local o
    for o in "${BASH_REMATCH[@]:1}"; do [ "$((10#$o))" -le 255 ] || return 1; done
}
is_ipv6() { [[ $1 =~ ^[0-9A-Fa-f:.]+$ ]] && [[ $1 == *:*:* || $1 == *::* ]]; }
is_ip() { is_ipv4 "$1" || is_ipv6 "$1"; }
is_true() { [[ ${1,,} =~ ^(1|yes|true|on)$ ]]; }
is_false() { [[ ${1,,} =~ ^(0|no|false|off)$ ]]; }

# The container's first non-loopback address: IPv4 first, else IPv6.
first_address() {
    local addrs a
    addrs=$(hostname -I 2>/dev/null || true)
    for a in $addrs; do is_ipv4 "$a" && { echo "$a"; return; }; done
    for a in $addrs; do is_ipv6 "$a" && { echo "$a"; return; }; done
    return 1
}

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

# --- the variables -------------------------------------------------------------------------------------------
# env_settings IS_LIST: every RTPENGINE_* / RTPRELAY_* variable with a value, grouped by option name. Sets STEMS
# (option names, sorted) and, per name, VARS[name] (the variables that count, space-separated, in order: the plain
# one, then the numbered ones by number; only the RTPRELAY_ ones when there are any). The function IS_LIST decides
# whether NAME_N is a numbered form of NAME (a repeatable option) or a name of its own.
declare -A VARS=()
STEMS=()
env_settings() {
    local is_list=$1 var rest key stem index rank lines=()
    VARS=()
    STEMS=()
    for var in $(compgen -e); do
        [[ $var =~ ^(RTPENGINE|RTPRELAY)_([A-Za-z0-9_]+)$ ]] || continue
        [ -n "${!var}" ] || continue
        [ "${BASH_REMATCH[1]}" = RTPRELAY ] && rank=0 || rank=1
        rest=${BASH_REMATCH[2]}
        key=${rest,,}
        key=${key//_/-}
        stem=$key index=0
        if [[ $key =~ ^(.+)-([0-9]+)$ ]]; then
            local base=${BASH_REMATCH[1]} number=${BASH_REMATCH[2]}
            if "$is_list" "$base"; then stem=$base index=$((10#$number + 1)); fi
        fi
        lines+=("$stem $rank $index $var")
    done
    [ ${#lines[@]} -gt 0 ] || return 0
    local cur='' cur_rank=''
    while read -r stem rank index var; do
        if [ "$stem" != "$cur" ]; then
            cur=$stem cur_rank=$rank
            STEMS+=("$stem")
            VARS[$stem]=$var
        elif [ "$rank" = "$cur_rank" ]; then
            VARS[$stem]+=" $var"
        fi
    done < <(printf '%s\n' "${lines[@]}" | LC_ALL=C sort -k1,1 -k2,2n -k3,3n)
}

# The relay's options: KIND[name] = flag|value|list, USE[name] = run|ignored|exit (`rtprelay --list-options`).
declare -A KIND=() USE=()
load_relay_options() {
    local name kind use listing
    listing=$("$RELAY_BIN" --list-options) || die "$RELAY_BIN --list-options failed"
    while read -r name kind use; do
        [ -n "$name" ] || continue
        KIND[$name]=$kind USE[$name]=$use
    done <<<"$listing"
    [ -n "${KIND[interface]:-}" ] || die "$RELAY_BIN --list-options listed no options"
}
relay_is_list() { [ "${KIND[$1]:-}" = list ]; }

# The recording daemon's options, from its --help (clap): RKIND[name] = flag|value.
declare -A RKIND=()
load_recorder_options() {
    local line re='^[[:space:]]+(-[A-Za-z],[[:space:]]+)?--([a-z0-9-]+)([[:space:]]+<[^>]*>)?'
    while IFS= read -r line; do
        [[ $line =~ $re ]] || continue
        case ${BASH_REMATCH[2]} in help | version) continue ;; esac
        if [ -n "${BASH_REMATCH[3]}" ]; then RKIND[${BASH_REMATCH[2]}]=value; else RKIND[${BASH_REMATCH[2]}]=flag; fi
    done < <("$RECORDER_BIN" --help 2>/dev/null || true)
}
# The recorder's option a RECORDING_* name stands for: recording-dir is its spool, recording-X its --X.
recorder_option() {
    case $1 in
        recording-dir) echo spool-dir ;;
        recording-*) [ -n "${RKIND[${1#recording-}]:-}" ] && echo "${1#recording-}" ;;
        *) return 1 ;;
    esac
}
no_list() { return 1; }

# Names the entrypoint reads itself.
OWN_NAMES=" public-ip "

# Values the relay accepts as they are, but the recording chain does not.
extra_check() { # extra_check NAME VALUE VAR
    case $1 in
        recording-method) [[ $2 == pcap || $2 == proc ]] || die "$3=$2: expected pcap or proc" ;;
        recording-format) [[ $2 == raw || $2 == eth ]] || die "$3=$2: expected raw or eth" ;;
        recording-dir) [[ $2 == /* ]] || die "$3=$2: expected an absolute path" ;;
    esac
}

# --- the relay -----------------------------------------------------------------------------------------------
# relay_args ARGS: OPTS = the options from the variables; FROM[--name] = "VAR=VALUE" for the messages.
declare -A FROM=()
relay_args() {
    OPTS=()
    FROM=()
    load_relay_options
    load_recorder_options
    env_settings relay_is_list

    local public='' public_src='' ifaces=() iface_src='' stem var value item items
    for stem in "${STEMS[@]}"; do
        if [[ $OWN_NAMES == *" $stem "* ]]; then
            var=${VARS[$stem]%% *}
            public=${!var} public_src=$var
            continue
        fi
        if [ -z "${KIND[$stem]:-}" ]; then
            # The recorder's variables share the environment (one env file for both containers).
            recorder_option "$stem" >/dev/null && continue
            warn "${VARS[$stem]// /, }: --$stem is not an option of rtprelay: ignored"
            continue
        fi
        if [ "${USE[$stem]}" = exit ]; then
            warn "${VARS[$stem]// /, }: --$stem only prints something and exits: ignored"
            continue
        fi
        for var in ${VARS[$stem]}; do
            value=${!var}
            case ${KIND[$stem]} in
                flag)
                    if is_true "$value"; then
                        OPTS+=("--$stem")
                    elif is_false "$value"; then
                        OPTS+=("--$stem=false")
                    else
                        die "$var=$value: expected yes or no"
                    fi
                    ;;
                value)
                    extra_check "$stem" "$value" "$var"
                    OPTS+=("--$stem=$value")
                    ;;
                list)
                    IFS=$' \t\n,;' read -r -a items <<<"$value"
                    [ ${#items[@]} -gt 0 ] || die "$var=$value: no value in it"
                    for item in "${items[@]}"; do
                        if [ "$stem" = interface ]; then
                            ifaces+=("$item")
                            iface_src=$var
                        else
                            OPTS+=("--$stem=$item")
                        fi
                    done
                    ;;
            esac
            FROM[--$stem]+="${FROM[--$stem]:+, }$var=$value"
        done
    done

    if [ -n "$public" ] && ! is_ip "$public"; then
        die "$public_src=$public: expected an IPv4 or IPv6 address"
    fi
    if [ ${#ifaces[@]} -gt 0 ] && [ -n "$public" ]; then
        [ ${#ifaces[@]} -eq 1 ] \
            || die "$public_src needs a single interface; give each advertised address in $iface_src as NAME/IP!ADVERTISED"
        [[ ${ifaces[0]} != *'!'* ]] || die "$public_src is set but $iface_src=${ifaces[0]} already has an advertised address"
        ifaces[0]="${ifaces[0]}!$public"
    fi
    for item in "${ifaces[@]}"; do OPTS+=("--interface=$item"); done

    # The config file: the variable's (mapped above), the command line's, else rtpengine's when mounted, else the
    # image's.
    if [ -z "${FROM[--config-file]:-}" ] && ! has_option --config-file -- "$@"; then
        if [ -r "$CONFIG_RTPENGINE" ]; then
            OPTS=("--config-file=$CONFIG_RTPENGINE" "${OPTS[@]}")
        else
            OPTS=("--config-file=$CONFIG_DEFAULT" "${OPTS[@]}")
        fi
    fi

    # The relay checks everything, the config file included. With no interface anywhere, the container's first
    # address is the default; an advertised address for an interface that the config file names goes in the file.
    local out
    if ! out=$(relay_dry_run "$@"); then
        if [[ $out == *'no media interface configured'* ]]; then
            local addr
            addr=$(first_address) || die "no non-loopback address in this container: set RTPENGINE_INTERFACE"
            OPTS+=("--interface=$addr${public:+!$public}")
            out=$(relay_dry_run "$@") || relay_failed "$out"
        else
            relay_failed "$out"
        fi
    elif [ -n "$public" ] && [ ${#ifaces[@]} -eq 0 ]; then
        if has_option -i --interface -- "$@"; then
            die "$public_src is set but the interface comes from the command line: write it as IP!$public there"
        fi
        die "$public_src is set but the config file names the interface: write it as IP!$public there, or set RTPENGINE_INTERFACE"
    fi
}

# relay_dry_run ARGS: the relay loads and checks the configuration the daemon will get, and exits.
relay_dry_run() {
    "${DROP[@]}" "$RELAY_BIN" --list-control-sockets "${OPTS[@]}" "$@" 2>&1
}

# relay_failed MESSAGE: stops with the relay's message, naming the variables of the options it names.
relay_failed() {
    local msg=$1 sources='' opt
    while read -r opt; do
        [ -n "${FROM[$opt]:-}" ] && sources+="${sources:+; }${FROM[$opt]}"
    done < <(grep -oE -- '--[a-z0-9-]+' <<<"$msg" | sort -u)
    die "${sources:+$sources: }$(tr '\n' ' ' <<<"$msg" | sed 's/ *$//')"
}

# --- the recording daemon ------------------------------------------------------------------------------------
recording_args() {
    OPTS=()
    load_relay_options
    load_recorder_options
    env_settings no_list
    local stem opt var value
    for stem in "${STEMS[@]}"; do
        var=${VARS[$stem]%% *}
        value=${!var}
        if ! opt=$(recorder_option "$stem"); then
            # The relay's variables share the environment; anything else is a mistake.
            [ -n "${KIND[$stem]:-}" ] || [[ $OWN_NAMES == *" $stem "* ]] \
                || warn "$var: neither rtprelay nor rtprelay-recording has an option --$stem: ignored"
            continue
        fi
        case $opt in spool-dir | output-dir | config-file)
            [[ $value == /* || $value == none ]] || die "$var=$value: expected an absolute path" ;;
        esac
        if [ "${RKIND[$opt]}" = flag ]; then
            if is_true "$value"; then
                OPTS+=("--$opt")
            elif ! is_false "$value"; then
                die "$var=$value: expected yes or no"
            fi
        else
            OPTS+=("--$opt=$value")
        fi
    done
    if ! has_option --config-file -- "${OPTS[@]}" "$@"; then
        if [ -r "$RECORDING_CONFIG_RTPENGINE" ]; then
            OPTS=("--config-file=$RECORDING_CONFIG_RTPENGINE" "${OPTS[@]}")
        else
            OPTS=("--config-file=$RECORDING_CONFIG_DEFAULT" "${OPTS[@]}")
        fi
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
    local prm bnd eff spec name bit keep='' shown=''
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
    rtprelay | */rtprelay | rtpengine | */rtpengine)
        # rtpengine runs rtprelay under its own name, so that the process is found as the relay.
        cmd=$1
        [[ $cmd == rtpengine || $cmd == */rtpengine ]] && cmd=rtprelay
        shift
        # --version/--help and the listings need no configuration.
        if has_option --version -v -V --help -h --list-options -- "$@"; then exec "$cmd" "$@"; fi
        drop_root "$cmd" $RELAY_CAPS
        relay_args "$@"
        exec "${DROP[@]}" "$cmd" "${OPTS[@]}" "$@"
        ;;
    rtprelay-recording | */rtprelay-recording | rtpengine-recording | */rtpengine-recording)
        cmd=$1
        [[ $cmd == rtpengine-recording || $cmd == */rtpengine-recording ]] && cmd=rtprelay-recording
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
