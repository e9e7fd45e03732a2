#!/bin/sh
# Entry point of the HA example's Redis image: one image, three roles.
#
#   master                          redis-server on 6379
#   replica MASTER_IP               redis-server on 6379, replicating MASTER_IP:6379
#   sentinel MASTER_IP [QUORUM]     redis-sentinel on 26379, watching MASTER_IP:6379 under the name "rtprelay"
#   anything else                   exec'd as given (redis-cli, sh...)
#
# Further arguments go to the server as config options (e.g. --requirepass SECRET). The addresses are IPs: the
# example's network gives every container a static one, and rtprelay's --redis takes an IP, not a host name.
# No password and protected mode off, because only the example's private bridge network reaches these ports:
# set --requirepass (and the masterauth/auth-pass that go with it) before Redis is reachable from anywhere else.
set -eu

role=${1:-master}
[ $# -gt 0 ] && shift

case "$role" in
    master)
        exec redis-server --bind 0.0.0.0 --protected-mode no --port 6379 --dir /data --appendonly yes "$@"
        ;;
    replica)
        master=${1:?replica needs the master IP}
        shift
        exec redis-server --bind 0.0.0.0 --protected-mode no --port 6379 --dir /data --appendonly yes \
            --replicaof "$master" 6379 "$@"
        ;;
    sentinel)
        master=${1:?sentinel needs the master IP}
        quorum=${2:-2}
        [ $# -gt 0 ] && shift
        [ $# -gt 0 ] && shift
        # Sentinel rewrites its config file with what it learns (replicas, other sentinels, the current master
        # after a failover): write it once, and keep it in the /data volume across restarts of the container.
        conf=/data/sentinel.conf
        if [ ! -s "$conf" ]; then
            cat >"$conf" <<CONF
port 26379
bind 0.0.0.0
protected-mode no
dir /data
sentinel monitor rtprelay $master 6379 $quorum
sentinel down-after-milliseconds rtprelay 5000
sentinel failover-timeout rtprelay 30000
sentinel parallel-syncs rtprelay 1
CONF
        fi
        exec redis-sentinel "$conf" "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
