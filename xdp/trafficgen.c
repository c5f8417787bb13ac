// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Packet-rate tooling: the live-frames generator, a plain XDP_REDIRECT hop (the floor any
 * veth overlay can reach with the same number of hops) and receivers that count.
 *
 *   tg_gen     run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: every test frame is
 *              redirected to tg_port[0] (the first veth of the path)
 *   tg_forward attached to a veth: redirect to tg_chain[ingress ifindex]
 *   tg_sink    count and drop (the receiver of a measurement)
 *   tg_pass    count and pass: lets XDP_REDIRECT/XDP_TX frames into a veth whose peer needs
 *              no XDP of its own (without an XDP program on the peer such frames are lost
 *              silently; only the xdp_redirect_err tracepoint sees them)
 */
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tg_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);   /* ingress ifindex */
	__type(value, __u32); /* egress ifindex */
} tg_chain SEC(".maps");

enum tg_stat { TG_RX_PACKETS = 0, TG_RX_BYTES, TG_STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tg_rx SEC(".maps");

static __always_inline void tg_count(struct xdp_md *ctx)
{
	__u32 key = TG_RX_PACKETS;
	__u64 *v = bpf_map_lookup_elem(&tg_rx, &key);

	if (v)
		*v += 1;
	key = TG_RX_BYTES;
	v = bpf_map_lookup_elem(&tg_rx, &key);
	if (v)
		*v += ctx->data_end - ctx->data;
}

SEC("xdp")
int tg_gen(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tg_port, 0, 0);
}

SEC("xdp")
int tg_forward(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tg_chain, ctx->ingress_ifindex, XDP_DROP);
}

SEC("xdp")
int tg_sink(struct xdp_md *ctx)
{
	tg_count(ctx);
	return XDP_DROP;
}

SEC("xdp")
int tg_pass(struct xdp_md *ctx)
{
	tg_count(ctx);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
