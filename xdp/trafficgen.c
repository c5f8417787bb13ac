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
 *   tg_push / tg_pop  like tg_forward, but push a fixed 66-byte outer header (tg_hdr[0]) or
 *              pop 66 bytes first: the floor of any Geneve overlay over the same hops --
 *              encapsulation alone, no lookup, no validation
 *   tg_sink_match  tg_sink counting only Ethernet/IPv4(no options)/UDP frames to destination port
 *              tg_match[0] (network order): a low-rate receiver that stray ARP/ND frames
 *              do not disturb (everything is dropped either way)
 *   tg_gen_mf  tg_gen for several flows: rewrites the UDP source port of an Ethernet/IPv4
 *              (no options)/UDP frame to base + (n mod flows), n counting per CPU, so RSS,
 *              flow hashing and per-flow caches downstream see tg_flow[0].flows flows
 *              (IPv4 header checksum unaffected; UDP checksum must be 0)
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

#define TG_ENCAP_LEN 66

struct tg_hdr {
	__u8 b[72];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_hdr);
} tg_hdr SEC(".maps");

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

struct tg_flow_cfg {
	__u32 flows;      /* 0 or 1: leave the frame alone */
	__u16 sport_base; /* host byte order */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_flow_cfg);
} tg_flow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tg_seq SEC(".maps");

#define TG_UDP_SPORT_OFF (14 + 20)

SEC("xdp")
int tg_gen_mf(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct tg_flow_cfg *cfg;
	__u32 zero = 0, *seq, n;

	cfg = bpf_map_lookup_elem(&tg_flow, &zero);
	seq = bpf_map_lookup_elem(&tg_seq, &zero);
	if (cfg && seq && cfg->flows > 1 && data + TG_UDP_SPORT_OFF + 2 <= data_end) {
		n = *seq;
		*seq = n + 1 >= cfg->flows ? 0 : n + 1;
		*(__u16 *)(data + TG_UDP_SPORT_OFF) = bpf_htons((__u16)(cfg->sport_base + n));
	}
	return bpf_redirect_map(&tg_port, 0, 0);
}

SEC("xdp")
int tg_forward(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tg_chain, ctx->ingress_ifindex, XDP_DROP);
}

SEC("xdp")
int tg_push(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct tg_hdr *h = bpf_map_lookup_elem(&tg_hdr, &zero);
	const __u64 *t;
	void *data, *data_end;
	__u64 *d;

	if (!h || bpf_xdp_adjust_head(ctx, -TG_ENCAP_LEN))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + TG_ENCAP_LEN > data_end)
		return XDP_DROP;
	t = (const __u64 *)h->b;
	d = data;
	d[0] = t[0];
	d[1] = t[1];
	d[2] = t[2];
	d[3] = t[3];
	d[4] = t[4];
	d[5] = t[5];
	d[6] = t[6];
	d[7] = t[7];
	*(__u16 *)(d + 8) = *(const __u16 *)(t + 8);
	return bpf_redirect_map(&tg_chain, ctx->ingress_ifindex, XDP_DROP);
}

SEC("xdp")
int tg_pop(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_head(ctx, TG_ENCAP_LEN))
		return XDP_DROP;
	return bpf_redirect_map(&tg_chain, ctx->ingress_ifindex, XDP_DROP);
}

SEC("xdp")
int tg_sink(struct xdp_md *ctx)
{
	tg_count(ctx);
	return XDP_DROP;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tg_match SEC(".maps");

SEC("xdp")
int tg_sink_match(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u32 zero = 0, *port = bpf_map_lookup_elem(&tg_match, &zero);

	if (port && data + 38 <= data_end && p[12] == 0x08 && p[13] == 0x00 && p[14] == 0x45 && p[23] == 17 &&
	    *(__u16 *)(p + 36) == (__u16)*port)
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
