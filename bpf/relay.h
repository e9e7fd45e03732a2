/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * Map layout shared by the XDP program (relay.bpf.c) and its Rust loader
 * (src/sys/xdp/abi.rs mirrors these structs with #[repr(C)]; keep both in step).
 *
 * Addresses are 16 bytes in network order; IPv4 is stored v4-mapped
 * (::ffff:a.b.c.d) so one layout serves both families. Ports are in network
 * order. Every struct is padded explicitly so that no byte of a hash key is
 * left undefined.
 */
#ifndef RTPRELAY_RELAY_H
#define RTPRELAY_RELAY_H

#include <linux/types.h>

/* Rules (and counter slots) the maps hold. */
#define RTPRELAY_MAX_FLOWS 65536

#define RTPRELAY_FAMILY_V4 4
#define RTPRELAY_FAMILY_V6 6

/* rtprelay_flow.flags */
#define RTPRELAY_F_STRICT      0x0001 /* drop packets whose source is not expect_* */
#define RTPRELAY_F_KIND_RTP    0x0002 /* RTP, with RTCP muxed on the same port */
#define RTPRELAY_F_KIND_RTCP   0x0004 /* RTCP only */
#define RTPRELAY_F_KIND_OPAQUE 0x0008 /* any datagram */
#define RTPRELAY_F_OUT_V6      0x0010 /* the new saddr/daddr are IPv6 */
#define RTPRELAY_F_BLOCK       0x0020 /* block media: count RTP/opaque as received and drop it, except
                                       * RTCP and the payload types in pass_pts (DTMF events) */

/* Key of `flows`: where a packet arrived (the relay's own ip:port). An all-zero
 * address (:: or ::ffff:0.0.0.0) matches any local address of that family. */
struct rtprelay_flow_key {
	__be32 addr[4];
	__be16 port;
	__u8 family; /* RTPRELAY_FAMILY_V4 / _V6 */
	__u8 pad;
};

/* Value of `flows`: how to rewrite and count a packet. */
struct rtprelay_flow {
	__be32 saddr[4];       /* new source: the relay's egress address */
	__be32 daddr[4];       /* new destination: the peer */
	__be32 expect_addr[4]; /* strict source (ingress family, v4-mapped) */
	__be16 sport;
	__be16 dport;
	__be16 expect_port;
	__u16 flags;           /* RTPRELAY_F_* */
	__u32 slot;            /* index into `counters` */
	__u32 pass_pts[4];     /* RTPRELAY_F_BLOCK: RTP payload type n still forwarded if bit n%32 of word n/32 */
};

/* How long a CPU reuses a flow's next hop before asking bpf_fib_lookup() again:
 * route and neighbour changes reach offloaded flows within this time. */
#define RTPRELAY_HOP_TTL_NS 1000000000ULL

/* Value of `counters` (per CPU), indexed by rtprelay_flow.slot. Bytes count the
 * UDP payload, like the userspace planes. */
struct rtprelay_counters {
	__u64 packets;      /* RTP/opaque forwarded, or dropped by RTPRELAY_F_BLOCK */
	__u64 bytes;
	__u64 rtcp_packets;
	__u64 rtcp_bytes;
	__u64 errors;       /* strict-source drops */
	__u64 last_seen_ns; /* bpf_ktime_get_coarse_ns() of the last forwarded packet */
	__u64 blocked;      /* RTPRELAY_F_BLOCK drops (also in packets/bytes) */
};

/* Value of `hops` (per CPU), indexed by rtprelay_flow.slot like `counters`
 * (apart, so that reading the counters copies only them): this CPU's cache of
 * the flow's next hop (the route lookup is a large share of a packet's cost).
 * It serves packets from saddr to daddr of at most len bytes (the length
 * bpf_fib_lookup() checked against the MTU) until expires_ns. Zeroed with the
 * slot's counters; userspace never reads it. */
struct rtprelay_hop {
	__u64 expires_ns;
	__be32 saddr[4];
	__be32 daddr[4];
	__u32 ifindex;      /* 0: no cached hop */
	__u32 len;          /* IP packet length (tot_len) of the lookup */
	__u8 smac[6];
	__u8 dmac[6];
	__u32 pad;
};

/* Rx queues per device, and devices, the `xsks` map (AF_XDP sockets) holds: the
 * socket of queue q of the device in slot s (`xsk_devs`: ifindex -> slot) is at
 * key s * RTPRELAY_MAX_QUEUES + q. */
#define RTPRELAY_MAX_QUEUES 64
#define RTPRELAY_MAX_DEVICES 16

/* rtprelay_config.flags */
#define RTPRELAY_CFG_AFXDP 0x0001 /* hand unforwarded relay-port UDP to the AF_XDP sockets */
#define RTPRELAY_CFG_LOCALS 0x0002 /* only packets to an address in `locals` are the relay's */

/* Addresses `locals` holds: the relay's --interface addresses. */
#define RTPRELAY_MAX_LOCALS 64

/* Value of `config` (one entry): the relay's media port range (host order),
 * 0/0 until the relay sets it. With RTPRELAY_CFG_AFXDP, a UDP packet to these
 * ports that the program does not forward itself goes to the AF_XDP socket of
 * its device and rx queue (`xsks`), or to the stack when that queue has none.
 * With RTPRELAY_CFG_LOCALS, that applies only to packets whose destination
 * address is in `locals`: on a host that routes, transit traffic and other
 * services' traffic to these ports are left to the stack. */
struct rtprelay_config {
	__u16 port_min;
	__u16 port_max;
	__u16 flags; /* RTPRELAY_CFG_* */
	__u16 pad;
};

/* Key of `locals`. */
struct rtprelay_addr {
	__be32 addr[4];
};

/* Key of `peers`: a rule's new source and destination (rtprelay_flow.saddr,
 * .daddr). */
struct rtprelay_pair {
	__be32 saddr[4];
	__be32 daddr[4];
};

/* Value of `peers`: the next hop from saddr to daddr when bpf_fib_lookup()
 * cannot answer (forwarding off on the device: BPF_FIB_LKUP_RET_FWD_DISABLED,
 * or no neighbour entry yet), so offload needs no router setting. Userspace
 * writes it for the pairs of installed rules, from the kernel's own routing
 * and neighbour tables (what the stack would use); the program never learns
 * it from packets, so a host on the link that forges a peer's address and
 * port cannot draw the peer's media to its own MAC. */
struct rtprelay_peer {
	__u32 ifindex;
	__u8 our_mac[6];  /* the relay's MAC on that link (the frame's source) */
	__u8 peer_mac[6]; /* the next hop's MAC (the frame's destination) */
};

/* Devices the program may send to (`devs`, a devmap filled by the loader
 * with the devices it attaches to): a next hop on any other device is left
 * to the stack. */
#define RTPRELAY_MAX_ATTACHED 64

/* Value of `stats` (per CPU, one entry): what happened to every packet seen. */
struct rtprelay_stats {
	__u64 forwarded; /* XDP_TX or XDP_REDIRECT */
	__u64 passed;    /* handed to the kernel stack */
	__u64 dropped;   /* strict-source drops, blocked media */
	__u64 aborted;   /* internal failures after the packet was rewritten */
	__u64 redirected; /* handed to an AF_XDP socket */
};

#endif
