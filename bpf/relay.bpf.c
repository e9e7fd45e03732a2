// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * rtprelay's XDP fast path: forwards UDP packets of learned media flows in the
 * driver, without a trip through the socket layer.
 *
 * A packet whose destination (the relay's ip:port) has a rule in `flows` gets
 * its addresses and ports rewritten to the rule's egress socket and peer, the
 * TTL/hop limit decremented, the IPv4 header checksum recomputed, the UDP
 * checksum updated for what changed (or computed over the whole datagram when
 * the sender left it partial, as a veth peer with checksum offload does), the
 * MACs set from bpf_fib_lookup(), or where it cannot answer from the next hop
 * userspace wrote in `peers` from the kernel's routing and neighbour tables
 * (either cached per CPU and flow for a second, in `hops`), and is sent back
 * out (XDP_TX) or to another device the program is attached to (`devs`).
 * Anything unusual (no rule, not RTP-like, fragments, unknown next hop, a next
 * hop on a device the relay is not attached to, too big for the route's MTU,
 * mixed families, a multicast or broadcast source MAC, ...) is passed to the
 * kernel unchanged, where the userspace planes handle it: this program only
 * takes the easy, common case. Nothing the program sees changes where it
 * sends: it learns no next hop from packets.
 *
 * With the AF_XDP plane on (RTPRELAY_CFG_AFXDP in `config`), the UDP packets
 * to the relay's addresses (`locals`) and port range that would be passed go
 * to the AF_XDP socket of their device and rx queue (`xsks`) instead, or
 * still to the kernel when that queue has none. Malformed (bad checksums
 * included), fragmented, VLAN-tagged and non-UDP packets (ARP, ND) are always
 * passed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "relay.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Not in the uapi headers usable from BPF. */
#define AF_INET 2
#define AF_INET6 10
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1FFF

/* The payload checksum is summed in chunks of this many bytes; payloads
 * longer than CSUM_MAX (jumbo frames) are passed. */
#define CSUM_CHUNK 64
#define CSUM_MAX 9000

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RTPRELAY_MAX_FLOWS);
	__type(key, struct rtprelay_flow_key);
	__type(value, struct rtprelay_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RTPRELAY_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct rtprelay_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RTPRELAY_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct rtprelay_hop);
} hops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rtprelay_stats);
} stats SEC(".maps");

/* Next hops where bpf_fib_lookup() cannot answer, written by userspace only
 * (see struct rtprelay_peer): at most one per rule. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RTPRELAY_MAX_FLOWS);
	__type(key, struct rtprelay_pair);
	__type(value, struct rtprelay_peer);
} peers SEC(".maps");

/* The devices the program is attached to, by ifindex (the loader fills it):
 * the only ones it redirects to. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, RTPRELAY_MAX_ATTACHED);
	__type(key, __u32);
	__type(value, __u32);
} devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rtprelay_config);
} config SEC(".maps");

/* Devices with AF_XDP sockets: ifindex -> slot, registered by the AF_XDP plane. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RTPRELAY_MAX_DEVICES);
	__type(key, __u32);
	__type(value, __u32);
} xsk_devs SEC(".maps");

/* AF_XDP sockets by device slot * RTPRELAY_MAX_QUEUES + rx queue index. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, RTPRELAY_MAX_DEVICES * RTPRELAY_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* The relay's own addresses (RTPRELAY_CFG_LOCALS): key rtprelay_addr, the
 * family's all-zero address for any address of it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RTPRELAY_MAX_LOCALS);
	__type(key, struct rtprelay_addr);
	__type(value, __u32);
} locals SEC(".maps");

enum outcome { PASSED, FORWARDED, DROPPED, ABORTED, REDIRECTED };

/* relay_port() results */
#define RELAY_PORT 1  /* the port is in the relay's range */
#define RELAY_AFXDP 2 /* ... and the AF_XDP plane takes what is not forwarded here */

/* Is `addr` (16 bytes, v4-mapped for `family` V4) one of the relay's own
 * addresses, or is any address of its family? */
static __always_inline int is_local(const __be32 addr[4], __u8 family)
{
	struct rtprelay_addr key = {};

	__builtin_memcpy(key.addr, addr, sizeof(key.addr));
	if (bpf_map_lookup_elem(&locals, &key))
		return 1;
	key.addr[0] = 0;
	key.addr[1] = 0;
	key.addr[3] = 0;
	/* addr[2] stays 0x0000ffff for v4-mapped. */
	if (family == RTPRELAY_FAMILY_V6)
		key.addr[2] = 0;
	return bpf_map_lookup_elem(&locals, &key) != NULL;
}

/* Whether a packet to `daddr` (16 bytes, v4-mapped for `family` V4) and
 * `port` (network order) is for the relay's port range on one of its
 * addresses (RELAY_PORT, with RELAY_AFXDP when the AF_XDP plane is on), else
 * 0. */
static __always_inline int relay_port(__be16 port, const __be32 daddr[4], __u8 family)
{
	__u32 zero = 0;
	struct rtprelay_config *c = bpf_map_lookup_elem(&config, &zero);
	__u16 p = bpf_ntohs(port);

	if (!c || p < c->port_min || p > c->port_max)
		return 0;
	if ((c->flags & RTPRELAY_CFG_LOCALS) && !is_local(daddr, family))
		return 0;
	return RELAY_PORT | ((c->flags & RTPRELAY_CFG_AFXDP) ? RELAY_AFXDP : 0);
}

static __always_inline int addr_eq(const __be32 a[4], const __be32 b[4])
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* The next hop from src to dst: the routing and neighbour tables when
 * bpf_fib_lookup() answers, else what userspace wrote in `peers` from those
 * same tables (forwarding off on the device, or no neighbour entry yet). False
 * when neither knows (the stack then sends the packet and resolves the
 * neighbour), and when the packet is too big for the route's MTU (the stack
 * sends the ICMP error). */
static __always_inline int lookup_hop(struct xdp_md *ctx, struct bpf_fib_lookup *fib, const __be32 src[4],
				      const __be32 dst[4])
{
	struct rtprelay_pair key = {};
	struct rtprelay_peer *p;
	long rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);

	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return 1;
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return 0;
	__builtin_memcpy(key.saddr, src, sizeof(key.saddr));
	__builtin_memcpy(key.daddr, dst, sizeof(key.daddr));
	p = bpf_map_lookup_elem(&peers, &key);
	if (!p)
		return 0;
	fib->ifindex = p->ifindex;
	__builtin_memcpy(fib->smac, p->our_mac, ETH_ALEN);
	__builtin_memcpy(fib->dmac, p->peer_mac, ETH_ALEN);
	return 1;
}

/* lookup_hop() through this CPU's cache in the flow's hop slot `h` (may be
 * NULL): a hop found for the same source and destination less than
 * RTPRELAY_HOP_TTL_NS ago, for a packet at least as long as this one (fib's
 * tot_len, so the MTU check holds), is reused. `now` is
 * bpf_ktime_get_coarse_ns(). */
static __always_inline int next_hop(struct xdp_md *ctx, struct bpf_fib_lookup *fib, const __be32 src[4],
				    const __be32 dst[4], struct rtprelay_hop *h, __u64 now)
{
	__u32 len = fib->tot_len;

	if (h && h->ifindex && now < h->expires_ns && len <= h->len && addr_eq(h->daddr, dst) &&
	    addr_eq(h->saddr, src)) {
		fib->ifindex = h->ifindex;
		__builtin_memcpy(fib->smac, h->smac, ETH_ALEN);
		__builtin_memcpy(fib->dmac, h->dmac, ETH_ALEN);
		return 1;
	}
	if (!lookup_hop(ctx, fib, src, dst))
		return 0;
	if (h) {
		h->ifindex = fib->ifindex;
		h->len = len;
		__builtin_memcpy(h->smac, fib->smac, ETH_ALEN);
		__builtin_memcpy(h->dmac, fib->dmac, ETH_ALEN);
		__builtin_memcpy(h->saddr, src, sizeof(h->saddr));
		__builtin_memcpy(h->daddr, dst, sizeof(h->daddr));
		h->expires_ns = now + RTPRELAY_HOP_TTL_NS;
	}
	return 1;
}

/* Count the outcome in `stats` and return the XDP action. */
static __always_inline int finish(enum outcome o, int action)
{
	__u32 zero = 0;
	struct rtprelay_stats *s = bpf_map_lookup_elem(&stats, &zero);

	if (s) {
		switch (o) {
		case PASSED:
			s->passed++;
			break;
		case FORWARDED:
			s->forwarded++;
			break;
		case DROPPED:
			s->dropped++;
			break;
		case ABORTED:
			s->aborted++;
			break;
		case REDIRECTED:
			s->redirected++;
			break;
		}
	}
	return action;
}

#define PASS() finish(PASSED, XDP_PASS)

/* A UDP packet (to `daddr` and network-order port `dport`, untagged unless
 * `vlan`) that this program does not forward: to the AF_XDP socket of its
 * device and rx queue when the address and port are the relay's and the
 * AF_XDP plane is on, else to the stack. VLAN-tagged frames always go to the
 * stack, which strips the tag. */
static __always_inline int pass_udp(struct xdp_md *ctx, __be16 dport, const __be32 daddr[4], __u8 family,
				    int vlan)
{
	if (!vlan) {
		if (relay_port(dport, daddr, family) & RELAY_AFXDP) {
			__u32 dev = ctx->ingress_ifindex, q = ctx->rx_queue_index;
			__u32 *slot = bpf_map_lookup_elem(&xsk_devs, &dev);

			if (slot && *slot < RTPRELAY_MAX_DEVICES && q < RTPRELAY_MAX_QUEUES &&
			    bpf_redirect_map(&xsks, *slot * RTPRELAY_MAX_QUEUES + q, XDP_PASS) ==
				    XDP_REDIRECT)
				return finish(REDIRECTED, XDP_REDIRECT);
		}
	}
	return PASS();
}

/* PASS() for the handlers once the UDP header is known (locals udp, local (the
 * destination address), family, vlan). */
#define PASS_UDP() pass_udp(ctx, udp->dest, local, family, vlan)
/* A failure after the packet was rewritten: it cannot be passed any more. */
#define ABORT() finish(ABORTED, XDP_DROP)

static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Find the rule for a packet to addr:port: exact address first, then the
 * family's wildcard. */
static __always_inline struct rtprelay_flow *find_flow(const __be32 addr[4], __be16 port, __u8 family)
{
	struct rtprelay_flow_key key = {};
	struct rtprelay_flow *f;

	key.addr[0] = addr[0];
	key.addr[1] = addr[1];
	key.addr[2] = addr[2];
	key.addr[3] = addr[3];
	key.port = port;
	key.family = family;
	f = bpf_map_lookup_elem(&flows, &key);
	if (f)
		return f;
	key.addr[0] = 0;
	key.addr[1] = 0;
	key.addr[3] = 0;
	/* addr[2] stays 0 for IPv6 and 0x0000ffff for v4-mapped. */
	if (family == RTPRELAY_FAMILY_V6)
		key.addr[2] = 0;
	return bpf_map_lookup_elem(&flows, &key);
}

/* Does the payload look like what the rule carries? 0: no (pass it, userspace
 * counts it as malformed), 1: RTP (or opaque), 2: RTCP. The RTP header check
 * (version, CSRC list, extension) and the RFC 5761 demux (second byte in
 * 192..=223) follow src/wire. */
/* RTCP as the userspace path accepts it: the first packet's type is one that
 * may start a compound (SR .. the last defined type, 200..211) and its length
 * fits the datagram. 2 (RTCP) when it is, 0 (pass, userspace counts it as
 * malformed) when not. The caller checked 8 bytes and the version. */
static __always_inline int rtcp_ok(__u8 *pl, __u32 plen)
{
	__u32 words = ((__u32)pl[2] << 8) | pl[3];

	if (pl[1] < 200 || pl[1] > 211)
		return 0;
	return (words + 1) * 4 <= plen ? 2 : 0;
}

static __always_inline int classify(struct xdp_md *ctx, __u16 flags, __u8 *pl, void *end, __u32 off,
				    __u32 plen)
{
	__u8 b0, b1, ext[4];
	__u32 hl;

	if (flags & RTPRELAY_F_KIND_OPAQUE)
		return 1;
	if (plen < 8 || (void *)(pl + 8) > end)
		return 0;
	b0 = pl[0];
	b1 = pl[1];
	if ((b0 >> 6) != 2)
		return 0;
	if (flags & RTPRELAY_F_KIND_RTCP)
		return rtcp_ok(pl, plen);
	if (!(flags & RTPRELAY_F_KIND_RTP))
		return 0;
	if (b1 >= 192 && b1 <= 223)
		return rtcp_ok(pl, plen);
	if (plen < 12)
		return 0;
	hl = 12 + 4 * (b0 & 0x0f);
	if (b0 & 0x10) {
		if (hl + 4 > plen)
			return 0;
		if (bpf_xdp_load_bytes(ctx, off + hl, ext, sizeof(ext)) < 0)
			return 0;
		hl += 4 + 4 * (((__u32)ext[2] << 8) | ext[3]);
	}
	return hl <= plen ? 1 : 0;
}

/* State of the payload checksum loop (bpf_loop callback). */
struct sum_state {
	struct xdp_md *ctx;
	__u32 off; /* payload start, from ctx->data */
	__u32 len; /* payload length */
	__u32 sum; /* running 32-bit one's-complement sum, memory order */
	__u32 err;
};

/* Add chunk `i` (CSUM_CHUNK bytes, the last one zero-padded, which is what
 * the checksum wants for an odd tail) to the sum. Copying through the stack
 * keeps the verifier's work independent of the payload length. */
static long sum_chunk(__u64 i, void *data)
{
	struct sum_state *st = data;
	__u8 buf[CSUM_CHUNK] = {};
	__u32 done = i * CSUM_CHUNK;
	__u64 n;

	if (done >= st->len)
		return 1;
	n = st->len - done;
	/* Keep clang from folding the clamp into something the verifier cannot
	 * bound: the size must be known to lie in 1..CSUM_CHUNK. */
	barrier_var(n);
	if (n > CSUM_CHUNK)
		n = CSUM_CHUNK;
	barrier_var(n);
	if (n == 0)
		return 1;
	if (bpf_xdp_load_bytes(st->ctx, st->off + done, buf, n) < 0) {
		st->err = 1;
		return 1;
	}
	st->sum = bpf_csum_diff(0, 0, (__be32 *)buf, CSUM_CHUNK, st->sum);
	return 0;
}

/* One's-complement sum of `len` payload bytes at `off` (from ctx->data), in
 * memory order, or -1 when they cannot be read or are too many. */
static __always_inline __s64 payload_sum(struct xdp_md *ctx, __u32 off, __u32 len)
{
	struct sum_state st = { .ctx = ctx, .off = off, .len = len };

	if (len > CSUM_MAX)
		return -1;
	if (len == 0)
		return 0;
	bpf_loop((len + CSUM_CHUNK - 1) / CSUM_CHUNK, sum_chunk, &st, 0);
	if (st.err)
		return -1;
	return st.sum;
}

/* The UDP checksum from a payload sum and the new header and pseudo-header
 * fields (memory order); 0 is sent as 0xffff. */
static __always_inline __u16 udp_csum(__u64 sum, const __be32 *saddr, const __be32 *daddr, int words,
				      __be16 sport, __be16 dport, __be16 ulen_be)
{
	int i;
	__u16 c;

	for (i = 0; i < 4; i++) {
		if (i >= words)
			break;
		sum += saddr[i];
		sum += daddr[i];
	}
	sum += bpf_htons(IPPROTO_UDP);
	sum += ulen_be; /* pseudo-header length */
	sum += sport;
	sum += dport;
	sum += ulen_be; /* UDP header length */
	c = ~fold(sum);
	return c ? c : 0xffff;
}

/* Sum of `words` 32-bit address words (memory order). */
static __always_inline __u64 addr_sum(const __be32 *a, int words)
{
	__u64 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		if (i >= words)
			break;
		sum += a[i];
	}
	return sum;
}

/* What replacing fields summing to `old` by fields summing to `new` adds to a
 * one's-complement sum (RFC 1624: ~m + m'). Modulo 0xffff, where the folded sum
 * lives, ~m is -m; `words` 32-bit multiples of 0xffff keep it unsigned, so
 * `old` must be below words * 2^32. */
static __always_inline __u64 sum_diff(__u64 old, __u64 new, int words)
{
	return (__u64)words * 0xffffffffULL - old + new;
}

/* A UDP header from a local sender on a veth (CHECKSUM_PARTIAL) carries only the
 * folded pseudo-header sum, not complemented; the payload is not in it yet.
 * `pseudo` is that sum from the frame's own addresses. A complete checksum
 * that happens to equal it is recomputed in full, which is right as well. */
static __always_inline int partial_csum(__u16 check, __u64 pseudo)
{
	return check == fold(pseudo);
}

/* The UDP checksum after the addresses and ports changed, updated from the old
 * one (RFC 1624): `diff` from sum_diff() over the changed words. A checksum
 * that was wrong stays wrong, so the receiver still drops a corrupted packet.
 * 0 is sent as 0xffff. */
static __always_inline __u16 udp_csum_update(__u16 check, __u64 diff)
{
	__u16 c = ~fold((__u64)(__u16)~check + diff);

	return c ? c : 0xffff;
}

/* May a frame that arrived here leave by `egress`? Back out of its own device,
 * or by another device the program is attached to (`devs`); a route or next
 * hop on any other device (one the relay does not serve) is the stack's. */
static __always_inline int may_send(struct xdp_md *ctx, __u32 egress)
{
	return egress == ctx->ingress_ifindex || bpf_map_lookup_elem(&devs, &egress) != NULL;
}

/* Send the rewritten frame out of fib's egress device (may_send() holds). */
static __always_inline int transmit(struct xdp_md *ctx, __u32 egress)
{
	if (egress == ctx->ingress_ifindex)
		return finish(FORWARDED, XDP_TX);
	/* Gone from `devs` since may_send() (detached): drop, it was rewritten. */
	if (bpf_redirect_map(&devs, egress, 0) != XDP_REDIRECT)
		return ABORT();
	return finish(FORWARDED, XDP_REDIRECT);
}

/* This CPU's counters of the flow (NULL only if the slot is out of range). */
static __always_inline struct rtprelay_counters *slot_of(struct rtprelay_flow *f)
{
	__u32 slot = f->slot;

	return bpf_map_lookup_elem(&counters, &slot);
}

/* This CPU's next-hop cache of the flow (NULL only if the slot is out of range). */
static __always_inline struct rtprelay_hop *hop_of(struct rtprelay_flow *f)
{
	__u32 slot = f->slot;

	return bpf_map_lookup_elem(&hops, &slot);
}

static __always_inline void count(struct rtprelay_counters *c, int kind, __u32 plen, __u64 now)
{
	if (!c)
		return;
	if (kind == 2) {
		c->rtcp_packets++;
		c->rtcp_bytes += plen;
	} else {
		c->packets++;
		c->bytes += plen;
	}
	c->last_seen_ns = now;
}

/* Strict source rejected: count it and drop. */
static __always_inline int reject(struct rtprelay_flow *f)
{
	__u32 slot = f->slot;
	struct rtprelay_counters *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		c->errors++;
	return finish(DROPPED, XDP_DROP);
}

/* block media: does this RTP/opaque packet (payload at pl) get dropped? Not
 * when it is RTP of a payload type the rule still passes (DTMF events). */
static __always_inline int blocked(struct rtprelay_flow *f, __u8 *pl, void *end)
{
	__u8 pt;

	if (!(f->flags & RTPRELAY_F_BLOCK))
		return 0;
	if (!(f->flags & RTPRELAY_F_KIND_RTP) || (void *)(pl + 2) > end)
		return 1;
	pt = pl[1] & 0x7f;
	return !((f->pass_pts[pt >> 5] >> (pt & 31)) & 1);
}

/* A blocked packet is counted as received (and as blocked), then dropped. */
static __always_inline int drop_blocked(struct rtprelay_flow *f, __u32 plen)
{
	struct rtprelay_counters *c = slot_of(f);

	count(c, 1, plen, bpf_ktime_get_coarse_ns());
	if (c)
		c->blocked++;
	return finish(DROPPED, XDP_DROP);
}

/* Sum of the 20-byte IPv4 header, memory order. */
static __always_inline __u64 ipv4_sum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u64 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < 10; i++)
		sum += w[i];
	return sum;
}

static __always_inline int handle_v4(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip, void *end,
				     __u32 l3off, int vlan)
{
	struct bpf_fib_lookup fib = {};
	struct rtprelay_counters *c;
	struct rtprelay_flow *f;
	struct udphdr *udp;
	__be32 local[4], src[4];
	__u32 tot, ulen, plen, poff;
	__u64 old, now;
	__s64 psum;
	int kind, full;
	const __u8 family = RTPRELAY_FAMILY_V4;

	if ((void *)(ip + 1) > end)
		return PASS();
	if (ip->version != 4 || ip->ihl < 5)
		return PASS();
	if (ip->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_))
		return PASS();
	if (ip->protocol != IPPROTO_UDP)
		return PASS();
	/* Options are rare on media and would need a variable-length header
	 * checksum: leave them to the stack. */
	if (ip->ihl != 5)
		return PASS();
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return PASS();
	tot = bpf_ntohs(ip->tot_len);
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || tot != sizeof(*ip) + ulen || (void *)udp + ulen > end)
		return PASS();
	/* The header must be intact: the kernel drops a bad one, so do we (by
	 * passing it there, never to AF_XDP) instead of repairing it. */
	if (fold(ipv4_sum(ip)) != 0xffff)
		return PASS();
	plen = ulen - sizeof(*udp);
	poff = l3off + sizeof(*ip) + sizeof(*udp);

	local[0] = 0;
	local[1] = 0;
	local[2] = bpf_htonl(0xffff);
	local[3] = ip->daddr;
	f = find_flow(local, udp->dest, family);
	if (!f)
		return PASS_UDP();
	if (f->flags & RTPRELAY_F_OUT_V6)
		return PASS_UDP();
	if (f->flags & RTPRELAY_F_STRICT) {
		src[0] = 0;
		src[1] = 0;
		src[2] = bpf_htonl(0xffff);
		src[3] = ip->saddr;
		if (!addr_eq(src, f->expect_addr) || udp->source != f->expect_port)
			return reject(f);
	}
	kind = classify(ctx, f->flags, (void *)(udp + 1), end, poff, plen);
	if (!kind)
		return PASS_UDP();
	if (kind == 1 && blocked(f, (void *)(udp + 1), end))
		return drop_blocked(f, plen);
	if (ip->ttl <= 1)
		return PASS_UDP();

	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = f->sport;
	fib.dport = f->dport;
	fib.tot_len = tot;
	fib.ipv4_src = f->saddr[3];
	fib.ipv4_dst = f->daddr[3];
	fib.ifindex = ctx->ingress_ifindex;
	c = slot_of(f);
	now = bpf_ktime_get_coarse_ns();
	if (!next_hop(ctx, &fib, f->saddr, f->daddr, hop_of(f), now))
		return PASS_UDP();
	if ((vlan && fib.ifindex != ctx->ingress_ifindex) || !may_send(ctx, fib.ifindex))
		return PASS_UDP();

	/* 0: the sender sent no checksum (IPv4 allows it), and neither do we. */
	psum = 0;
	old = (__u64)ip->saddr + ip->daddr;
	full = udp->check && partial_csum(udp->check, old + bpf_htons(IPPROTO_UDP) + udp->len);
	if (full) {
		psum = payload_sum(ctx, poff, plen);
		if (psum < 0)
			return PASS_UDP();
	}

	/* Everything is known: rewrite. */
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	ip->saddr = f->saddr[3];
	ip->daddr = f->daddr[3];
	ip->ttl--;
	ip->check = 0;
	ip->check = ~fold(ipv4_sum(ip));
	if (full)
		udp->check = udp_csum(psum, &f->saddr[3], &f->daddr[3], 1, f->sport, f->dport, udp->len);
	else if (udp->check)
		udp->check = udp_csum_update(udp->check,
					     sum_diff(old + udp->source + udp->dest,
						      (__u64)f->saddr[3] + f->daddr[3] + f->sport + f->dport, 3));
	udp->source = f->sport;
	udp->dest = f->dport;
	count(c, kind, plen, now);
	return transmit(ctx, fib.ifindex);
}

static __always_inline int handle_v6(struct xdp_md *ctx, struct ethhdr *eth, struct ipv6hdr *ip6, void *end,
				     __u32 l3off, int vlan)
{
	struct bpf_fib_lookup fib = {};
	struct rtprelay_counters *c;
	struct rtprelay_flow *f;
	struct udphdr *udp;
	__be32 local[4], src[4];
	__u32 ulen, plen, poff;
	__u64 old, now;
	__s64 psum = 0;
	int kind, full;
	const __u8 family = RTPRELAY_FAMILY_V6;

	if ((void *)(ip6 + 1) > end)
		return PASS();
	if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
		return PASS();
	udp = (void *)(ip6 + 1);
	if ((void *)(udp + 1) > end)
		return PASS();
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || ulen != bpf_ntohs(ip6->payload_len) || (void *)udp + ulen > end)
		return PASS();
	/* The checksum is mandatory in IPv6 (RFC 8200): the kernel drops a zero
	 * one, so do we (by passing it there, never to AF_XDP). */
	if (!udp->check)
		return PASS();
	plen = ulen - sizeof(*udp);
	poff = l3off + sizeof(*ip6) + sizeof(*udp);

	__builtin_memcpy(local, &ip6->daddr, sizeof(local));
	f = find_flow(local, udp->dest, family);
	if (!f)
		return PASS_UDP();
	if (!(f->flags & RTPRELAY_F_OUT_V6))
		return PASS_UDP();
	if (f->flags & RTPRELAY_F_STRICT) {
		__builtin_memcpy(src, &ip6->saddr, sizeof(src));
		if (!addr_eq(src, f->expect_addr) || udp->source != f->expect_port)
			return reject(f);
	}
	kind = classify(ctx, f->flags, (void *)(udp + 1), end, poff, plen);
	if (!kind)
		return PASS_UDP();
	if (kind == 1 && blocked(f, (void *)(udp + 1), end))
		return drop_blocked(f, plen);
	if (ip6->hop_limit <= 1)
		return PASS_UDP();

	fib.family = AF_INET6;
	fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = f->sport;
	fib.dport = f->dport;
	fib.tot_len = ulen + sizeof(*ip6);
	__builtin_memcpy(fib.ipv6_src, f->saddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, f->daddr, sizeof(fib.ipv6_dst));
	fib.ifindex = ctx->ingress_ifindex;
	c = slot_of(f);
	now = bpf_ktime_get_coarse_ns();
	if (!next_hop(ctx, &fib, f->saddr, f->daddr, hop_of(f), now))
		return PASS_UDP();
	if ((vlan && fib.ifindex != ctx->ingress_ifindex) || !may_send(ctx, fib.ifindex))
		return PASS_UDP();

	__builtin_memcpy(src, &ip6->saddr, sizeof(src));
	__builtin_memcpy(local, &ip6->daddr, sizeof(local));
	old = addr_sum(src, 4) + addr_sum(local, 4);
	full = partial_csum(udp->check, old + bpf_htons(IPPROTO_UDP) + udp->len);
	if (full) {
		psum = payload_sum(ctx, poff, plen);
		if (psum < 0)
			return PASS_UDP();
	}

	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	__builtin_memcpy(&ip6->saddr, f->saddr, sizeof(ip6->saddr));
	__builtin_memcpy(&ip6->daddr, f->daddr, sizeof(ip6->daddr));
	ip6->hop_limit--;
	if (full)
		udp->check = udp_csum(psum, f->saddr, f->daddr, 4, f->sport, f->dport, udp->len);
	else
		udp->check = udp_csum_update(udp->check,
					     sum_diff(old + udp->source + udp->dest,
						      addr_sum(f->saddr, 4) + addr_sum(f->daddr, 4) + f->sport + f->dport,
						      9));
	udp->source = f->sport;
	udp->dest = f->dport;
	count(c, kind, plen, now);
	return transmit(ctx, fib.ifindex);
}

SEC("xdp")
int rtprelay_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__u32 l3off = sizeof(*eth);
	__be16 proto;
	int vlan = 0;

	if ((void *)(eth + 1) > end)
		return PASS();
	/* A multicast or broadcast source is no station's address: never
	 * forwarded (nor handed to AF_XDP), the stack decides. */
	if (eth->h_source[0] & 1)
		return PASS();
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		struct vlan_tag *tag = l3;

		if ((void *)(tag + 1) > end)
			return PASS();
		proto = tag->proto;
		l3 = tag + 1;
		l3off += sizeof(*tag);
		vlan = 1;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return handle_v4(ctx, eth, l3, end, l3off, vlan);
	if (proto == bpf_htons(ETH_P_IPV6))
		return handle_v6(ctx, eth, l3, end, l3off, vlan);
	return PASS();
}
