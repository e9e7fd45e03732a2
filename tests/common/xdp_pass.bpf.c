// SPDX-License-Identifier: MIT OR Apache-2.0
//
// A trivial XDP program that passes every frame on. The test topology attaches it to the bridge-side peer
// of the relay's veth: a frame sent into a veth with XDP_TX or bpf_redirect is dropped unless the peer
// runs an XDP program. No headers, so it builds with a bare `clang -target bpf`.

#define SEC(name) __attribute__((section(name), used))
#define XDP_PASS 2

struct xdp_md;

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
