#!/usr/bin/env bash
# Exempts the relay's media port range from connection tracking (conntrack), or removes that exemption.
#
# Every UDP packet to or from a port in the range skips conntrack, in both directions (prerouting: packets
# arriving; output: packets the host sends), for IPv4 and IPv6. That saves the tracking work per media packet
# (about a tenth of a userspace forward's CPU where conntrack is loaded, e.g. by Docker's or a firewall's rules)
# and keeps the media from filling the conntrack table. The rules live in their own table or chain, so --remove
# takes out exactly what this script added and nothing else.
#
#   scripts/notrack.sh 30000 40000                  add (or replace) the exemption for ports 30000-40000
#   scripts/notrack.sh 30000-40000                  the same
#   scripts/notrack.sh --remove                     remove it
#   scripts/notrack.sh --show                       print the rules in place, if any
#   scripts/notrack.sh --backend iptables 30000 40000
#
# Backends: nft (default when `nft` is installed: one `inet` table covers IPv4 and IPv6), iptables (the
# `iptables`/`ip6tables` on PATH, whichever variant they are), iptables-legacy, iptables-nft. Use the one
# your firewall tooling uses, so that its own saves and flushes do not surprise you.
#
# Security: untracked packets match no `ct state` / `-m conntrack --ctstate` rule other than `untracked`. A
# stateful firewall that accepts the media range only as "established,related" would then drop the media:
# accept the range explicitly (e.g. `udp dport 30000-40000 accept` in your input chain) and keep the range
# dedicated to the relay, outside net.ipv4.ip_local_port_range. NAT does not apply to untracked packets either.
#
# Needs root (CAP_NET_ADMIN in the network namespace it runs in). Idempotent: adding twice replaces.
set -euo pipefail

NAME=rtprelay_notrack          # nft table
CHAIN=RTPRELAY_NOTRACK         # iptables chain in the raw table
BACKEND=""
ACTION=add
MIN=""
MAX=""

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --remove) ACTION=remove ;;
    --show) ACTION=show ;;
    --backend) [ $# -ge 2 ] || usage; BACKEND="$2"; shift ;;
    --backend=*) BACKEND="${1#--backend=}" ;;
    -h|--help) usage ;;
    -*) echo "notrack.sh: unknown option $1" >&2; usage ;;
    *)
      if [ -z "$MIN" ] && [[ "$1" == *-* ]]; then
        MIN="${1%-*}"; MAX="${1#*-}"
      elif [ -z "$MIN" ]; then MIN="$1"
      elif [ -z "$MAX" ]; then MAX="$1"
      else usage
      fi ;;
  esac
  shift
done

if [ -z "$BACKEND" ]; then
  if command -v nft >/dev/null 2>&1; then BACKEND=nft; else BACKEND=iptables; fi
fi
case "$BACKEND" in
  nft) ;;
  iptables) IPT=(iptables ip6tables) ;;
  iptables-legacy) IPT=(iptables-legacy ip6tables-legacy) ;;
  iptables-nft) IPT=(iptables-nft ip6tables-nft) ;;
  *) echo "notrack.sh: unknown backend $BACKEND (nft, iptables, iptables-legacy, iptables-nft)" >&2; exit 2 ;;
esac

if [ "$ACTION" = add ]; then
  [ -n "$MIN" ] && [ -n "$MAX" ] || { echo "notrack.sh: give the media port range (MIN MAX or MIN-MAX)" >&2; exit 2; }
  for p in "$MIN" "$MAX"; do
    [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] \
      || { echo "notrack.sh: bad port $p" >&2; exit 2; }
  done
  [ "$MIN" -le "$MAX" ] || { echo "notrack.sh: $MIN > $MAX" >&2; exit 2; }
fi

nft_has() { nft list table inet "$NAME" >/dev/null 2>&1; }

case "$BACKEND:$ACTION" in
  nft:add)
    # One transaction: the old table (if any) goes and the new one comes at once. Priority raw (-300) runs
    # before conntrack (-200).
    {
      if nft_has; then echo "delete table inet $NAME"; fi
      cat <<EOF
table inet $NAME {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
    udp dport $MIN-$MAX notrack
    udp sport $MIN-$MAX notrack
  }
  chain output {
    type filter hook output priority raw; policy accept;
    udp sport $MIN-$MAX notrack
    udp dport $MIN-$MAX notrack
  }
}
EOF
    } | nft -f -
    ;;
  nft:remove)
    if nft_has; then nft delete table inet "$NAME"; fi
    ;;
  nft:show)
    if nft_has; then nft list table inet "$NAME"; fi
    ;;
  *:add|*:remove)
    for ipt in "${IPT[@]}"; do
      # Unhook and drop our chain (if there), then, when adding, build it again.
      for hook in PREROUTING OUTPUT; do
        while "$ipt" -w -t raw -D "$hook" -j "$CHAIN" 2>/dev/null; do :; done
      done
      if "$ipt" -w -t raw -L "$CHAIN" -n >/dev/null 2>&1; then
        "$ipt" -w -t raw -F "$CHAIN"
        "$ipt" -w -t raw -X "$CHAIN"
      fi
      if [ "$ACTION" = add ]; then
        "$ipt" -w -t raw -N "$CHAIN"
        "$ipt" -w -t raw -A "$CHAIN" -p udp --dport "$MIN:$MAX" -j CT --notrack
        "$ipt" -w -t raw -A "$CHAIN" -p udp --sport "$MIN:$MAX" -j CT --notrack
        "$ipt" -w -t raw -I PREROUTING 1 -j "$CHAIN"
        "$ipt" -w -t raw -I OUTPUT 1 -j "$CHAIN"
      fi
    done
    ;;
  *:show)
    for ipt in "${IPT[@]}"; do
      "$ipt" -w -t raw -S "$CHAIN" 2>/dev/null || true
    done
    ;;
esac
