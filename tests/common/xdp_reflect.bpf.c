// SPDX-License-Identifier: MIT OR Apache-2.0
//
// A harness check, not part of the relay: UDP to port 7777 (IPv4 without options, or IPv6 without
// extension headers) is sent back where it came from with XDP_TX, everything else passes. Swapping the
// MAC, IP addresses and ports leaves both the IPv4 header checksum and the UDP checksum valid (a one's
// complement sum does not depend on order), so a reply that arrives proves the topology delivers frames
// sent with XDP_TX from the relay's veth, with valid checksums. No headers, so it builds with a bare
// `clang -target bpf`.

#define SEC(name) __attribute__((section(name), used))
#define XDP_PASS 2
#define XDP_TX 3

typedef unsigned char u8;
typedef unsigned int u32;

struct xdp_md {
	u32 data;
	u32 data_end;
	u32 data_meta;
	u32 ingress_ifindex;
	u32 rx_queue_index;
	u32 egress_ifindex;
};

static inline __attribute__((always_inline)) void swap(u8 *a, u8 *b, int n)
{
	for (int i = 0; i < n; i++) {
		u8 t = a[i];
		a[i] = b[i];
		b[i] = t;
	}
}

/* Port 7777 in network byte order, compared byte by byte. */
static inline __attribute__((always_inline)) int is_reflect_port(const u8 *udp)
{
	return udp[2] == 0x1e && udp[3] == 0x61;
}

SEC("xdp")
int xdp_reflect(struct xdp_md *ctx)
{
	u8 *data = (u8 *)(long)ctx->data;
	u8 *end = (u8 *)(long)ctx->data_end;

	if (data + 14 > end)
		return XDP_PASS;
	if (data[12] == 0x08 && data[13] == 0x00) {
		u8 *ip = data + 14;
		u8 *udp = ip + 20;
		if (udp + 8 > end || ip[0] != 0x45 || ip[9] != 17 || !is_reflect_port(udp))
			return XDP_PASS;
		swap(data, data + 6, 6);
		swap(ip + 12, ip + 16, 4);
		swap(udp, udp + 2, 2);
		return XDP_TX;
	}
	if (data[12] == 0x86 && data[13] == 0xdd) {
		u8 *ip = data + 14;
		u8 *udp = ip + 40;
		if (udp + 8 > end || ip[6] != 17 || !is_reflect_port(udp))
			return XDP_PASS;
		swap(data, data + 6, 6);
		swap(ip + 8, ip + 24, 16);
		swap(udp, udp + 2, 2);
		return XDP_TX;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
