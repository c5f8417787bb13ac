// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Transit XDP: ingress of a droplet's substrate interface.
 *
 * Frames that are not Geneve (UDP 6081) pass to the droplet's own stack. Geneve frames are
 * validated layer by layer -- anything malformed, not addressed to us, of an unknown VNI or
 * with an inner source outside the VNI's VPC is dropped and counted -- and then
 *   - inner destination is a local endpoint: learn the direct path from the RTS option,
 *     decapsulate, write the endpoint's MAC, redirect to its veth;
 *   - a remote endpoint we know (we bounce for its network): bouncer -- send to its host;
 *   - unknown here: by LPM on (vni, destination) send to a bouncer of its network (divider
 *     role, or a frame that followed a stale direct path); if we are that network's bouncer
 *     the endpoint does not exist: drop.
 */
#include "lib/maps.h"
#include "lib/bouncer.h"
#include "lib/csum.h"
#include "lib/direct_path.h"
#include "lib/divider.h"
#include "lib/fcache.h"
#include "lib/geneve.h"
#include "lib/hash.h"
#include "lib/lb.h"
#include "lib/neigh.h"
#include "lib/parse.h"

static __always_inline int cl_pass(void)
{
	cl_count(CL_CNT_PASS);
	return XDP_PASS;
}

/* The slow path: consult the maps and write the decision into the cache slot @act (key
 * fields excluded). Returns 0 or a drop reason. */
static __always_inline int cl_transit_decide(const struct cl_config *cfg, __u32 vni, __be32 saddr,
					     __be32 daddr, __be16 sport, struct cl_fc_transit *act)
{
	struct cl_ep_key k = { .vni = vni, .ip = daddr };
	struct cl_ep *ep = bpf_map_lookup_elem(&cl_endpoints, &k);
	const __u8 *mac;
	struct cl_vpc *vpc;
	struct cl_net *net;

	if (ep) {
		act->vpc_ip = ep->vpc_ip;
		act->vpc_mask = ep->vpc_mask;
		if ((saddr & act->vpc_mask) != act->vpc_ip)
			return CL_CNT_DROP_SPOOFED_SRC;
		if (ep->kind != CL_EP_SIMPLE)
			return CL_CNT_DROP_SCALED_REMOTE;
		if (ep->ifindex) {
			act->event = CL_CNT_RX_DECAP;
			act->port = ep->ifindex;
			cl_mac_copy16(act->mac, ep->mac);
			return 0;
		}
		/* bouncer: network scope, endpoint -> host */
		act->target = ep->host_ip;
		act->event = CL_CNT_BOUNCED;
	} else {
		vpc = bpf_map_lookup_elem(&cl_vpcs, &vni);
		if (!vpc)
			return CL_CNT_DROP_UNKNOWN_VNI;
		act->vpc_ip = vpc->cidr_ip;
		act->vpc_mask = vpc->cidr_mask;
		if ((saddr & act->vpc_mask) != act->vpc_ip)
			return CL_CNT_DROP_SPOOFED_SRC;
		net = cl_lookup_net(vni, daddr);
		if (!net)
			return CL_CNT_DROP_NO_NETWORK;
		if (net->flags & CL_NET_F_BOUNCER)
			return CL_CNT_DROP_NO_ENDPOINT;
		/* divider (VPC scope: network -> bouncer), or a stale direct path re-routed; the
		 * sender's flow hash is in the outer source port */
		act->target = cl_pick_bouncer(net, cl_fmix32(sport));
		if (!act->target)
			return CL_CNT_DROP_NO_BOUNCER;
		act->event = (vpc->flags & CL_VPC_F_DIVIDER) ? CL_CNT_DIVIDED : CL_CNT_REROUTED;
	}
	if (act->target == cfg->host_ip || act->target == 0)
		return CL_CNT_DROP_LOOP;
	if (cl_resolve(cfg, act->target, &mac, &act->port))
		return CL_CNT_DROP_NO_NEIGH;
	cl_mac_copy16(act->mac, mac);
	return 0;
}

/* Fast validation: the Geneve frame exactly as every agent sends it -- outer IPv4 without
 * options or fragmentation, addressed to us, UDP to 6081 whose length agrees with the IP
 * length, Geneve version 0 carrying Ethernet with exactly one RTS option, an inner IPv4
 * header -- checked with a few 64-bit loads and masks (the caller made sure the first
 * CL_CANON_LEN bytes are in the frame). Such a frame passes every check of the layered
 * validation below, so taking this shortcut changes nothing; anything else (including
 * every malformed frame) goes through the layered checks and their drop reasons. */
#define CL_CANON_LEN (CL_ENCAP_LEN + ETH_HLEN + 20)

static __always_inline int cl_geneve_canonical(__u8 *p, void *data_end, const struct cl_config *cfg)
{
	__u64 w12 = *(__u64 *)(p + 12); /* type | version, ihl | tos | total length | id */
	__u64 w20 = *(__u64 *)(p + 20); /* fragment | ttl | protocol | checksum | saddr[0..1] */
	__u64 w34 = *(__u64 *)(p + 34); /* UDP source | destination | length | checksum */
	__u64 w42 = *(__u64 *)(p + 42); /* Geneve version, optlen | flags | protocol | vni | rsvd */
	__u32 tot, ulen, daddr;
	__u64 sum;
	__u8 iv;

	if ((w12 & 0xffffff) != CL_LE32(0x08, 0x00, 0x45, 0) ||
	    (w20 & 0xff00ff3f) != CL_LE32(0, 0, 0, IPPROTO_UDP) ||
	    ((w34 >> 16) & 0xffff) != bpf_htons(CL_GENEVE_PORT) ||
	    (w42 & 0xffff00ff) != CL_LE32(sizeof(struct cl_rts_opt) / 4, 0, CL_ETH_P_TEB >> 8, CL_ETH_P_TEB & 0xff) ||
	    *(__u32 *)(p + CL_OFF_OPTS) != CL_LE32(CL_OPT_CLASS >> 8, CL_OPT_CLASS, CL_OPT_TYPE_RTS, CL_RTS_LEN_WORDS))
		return 0;
	daddr = *(__u32 *)(p + 30);
	if (daddr != cfg->host_ip || !cfg->host_ip)
		return 0;
	tot = bpf_ntohs((__u16)(w12 >> 32));
	ulen = bpf_ntohs((__u16)(w34 >> 32));
	if (tot > (__u32)(data_end - (void *)(p + ETH_HLEN)) || ulen != tot - 20 ||
	    ulen < sizeof(struct udphdr) + sizeof(struct cl_genevehdr) + sizeof(struct cl_rts_opt))
		return 0;
	if (*(__u16 *)(p + CL_ENCAP_LEN + 12) != bpf_htons(ETH_P_IP))
		return 0;
	iv = p[CL_ENCAP_LEN + ETH_HLEN];
	if ((iv & 0xf0) != 0x40 || (iv & 0x0f) < 5)
		return 0;
	/* the outer IPv4 header checksum over bytes 14..33, from the words already loaded: any
	 * 16-bit-aligned chunk summed as an integer is its 16-bit words' sum mod 0xffff (2^16 = 1) */
	sum = (w12 >> 16) + (__u32)w20 + (w20 >> 32) + *(__u16 *)(p + 28) + daddr;
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	return cl_csum_fold((__u32)sum) == 0;
}

/* Carry out a decision (@act, its key already matched): forward to another droplet, or
 * decapsulate and deliver to the local endpoint. */
static __always_inline int cl_transit_act(struct xdp_md *ctx, struct cl_config *cfg, struct cl_fc_transit *act,
					  struct ethhdr *eth, struct iphdr *ip, struct udphdr *udp,
					  struct cl_rts_opt *rts, struct ethhdr *ieth, struct iphdr *iip,
					  __u32 hdr_len, void *data_end, __u32 vni)
{
	__u32 port;

	if (act->event != CL_CNT_RX_DECAP) {
		if (act->event == CL_CNT_BOUNCED && rts)
			cl_rts_set_flag(rts, udp, CL_RTS_F_BOUNCED);
		return cl_forward(ctx, cfg, eth, ip, udp, act->target, act->mac, act->port, act->event, &act->packets);
	}

	/* local delivery */
	if (rts && (rts->flags & (CL_RTS_F_BOUNCED | CL_RTS_F_VIA | CL_RTS_F_LEARN)))
		cl_hc_learn(cfg, vni, iip->saddr, rts);
	if (cfg->flags & CL_CFG_F_LB) {
		struct cl_flow f;

		if (cl_parse_flow(iip, data_end, &f) == 0)
			cl_lb_rnat_apply(iip, data_end, &f, vni);
	}
	cl_mac_copy16(ieth->h_dest, act->mac);
	cl_set_gw_mac(ieth->h_source);
	port = act->port;
	if (bpf_xdp_adjust_head(ctx, (int)hdr_len))
		return cl_drop(CL_CNT_DROP_ADJUST);
	cl_fc_count(&act->packets, CL_CNT_RX_DECAP);
	return cl_redirect(port);
}

/* Fast path of a canonical frame (cl_geneve_canonical passed) whose flow has a current decision:
 * every header at its constant offset, nothing merged with the layered path's pointers.
 * Returns the verdict, or -1 when the full path must run (no current decision, STALE). */
static __always_inline int cl_transit_fast(struct xdp_md *ctx, __u8 *p, void *data_end, struct cl_config *cfg)
{
	struct cl_rts_opt *rts = (void *)(p + CL_OFF_OPTS);
	struct udphdr *udp = (void *)(p + CL_OFF_UDP);
	struct iphdr *iip = (void *)(p + CL_ENCAP_LEN + ETH_HLEN);
	__u32 vni = bpf_ntohl(*(__u32 *)(p + CL_OFF_GNV + 4)) >> 8; /* vni[0..2] | reserved */
	__be16 sport = udp->source;
	struct cl_fc_transit *act;

	if (rts->flags & CL_RTS_F_STALE)
		return -1;
	act = cl_fc_transit_slot(vni, sport);
	if (!act || *(__u64 *)&act->vni != ((__u64)vni | ((__u64)iip->daddr << 32)) ||
	    *(__u64 *)&act->sport != ((__u64)sport | ((__u64)cfg->epoch << 32)))
		return -1;
	if ((iip->saddr & act->vpc_mask) != act->vpc_ip)
		return cl_drop(CL_CNT_DROP_SPOOFED_SRC);
	return cl_transit_act(ctx, cfg, act, (void *)p, (void *)(p + CL_OFF_IP), udp, rts, (void *)(p + CL_ENCAP_LEN),
			      iip, CL_ENCAP_LEN, data_end, vni);
}

SEC("xdp")
int cl_transit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cl_rts_opt *rts = NULL;
	struct ethhdr *eth = data, *ieth;
	struct cl_fc_transit *act;
	struct iphdr *ip, *iip;
	struct cl_genevehdr *g;
	struct cl_config *cfg;
	struct udphdr *udp;
	__u32 tot, ulen, optlen, hdr_len, vni, epoch, port;
	int err;

	if ((void *)(eth + 1) > data_end)
		return cl_drop(CL_CNT_DROP_TRUNC_ETH);
	cfg = cl_get_config();
	if (!cfg)
		return cl_drop(CL_CNT_DROP_NO_CONFIG); /* cannot happen: an array slot */
	if (data + CL_CANON_LEN <= data_end && cl_geneve_canonical(data, data_end, cfg)) {
		err = cl_transit_fast(ctx, data, data_end, cfg);
		if (err >= 0)
			return err;
		ip = data + CL_OFF_IP;
		udp = data + CL_OFF_UDP;
		g = data + CL_OFF_GNV;
		rts = data + CL_OFF_OPTS;
		hdr_len = CL_ENCAP_LEN;
		ieth = data + CL_ENCAP_LEN;
		iip = data + CL_ENCAP_LEN + ETH_HLEN;
	} else {
		if (cl_eth_proto(eth) != bpf_htons(ETH_P_IP))
			return cl_pass();
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return cl_drop(CL_CNT_DROP_TRUNC_IP);
		if (ip->protocol != IPPROTO_UDP)
			return cl_pass();
		if (ip->version != 4 || ip->ihl < 5)
			return cl_drop(CL_CNT_DROP_BAD_IP);
		udp = (void *)ip + (ip->ihl & 0xf) * 4;
		if ((void *)(udp + 1) > data_end)
			return cl_drop(CL_CNT_DROP_TRUNC_UDP);
		if (udp->dest != bpf_htons(CL_GENEVE_PORT))
			return cl_pass();

		/* Overlay traffic from here on: ours to forward or to drop, never the stack's. */
		if (ip->ihl != 5)
			return cl_drop(CL_CNT_DROP_BAD_IP);
		if (ip->frag_off & bpf_htons(0x3fff))
			return cl_drop(CL_CNT_DROP_IP_FRAG);
		tot = bpf_ntohs(ip->tot_len);
		if (tot < sizeof(*ip) + sizeof(*udp))
			return cl_drop(CL_CNT_DROP_BAD_IP);
		if (tot > (__u32)(data_end - (void *)ip))
			return cl_drop(CL_CNT_DROP_TRUNC_IP);
		if (!cl_ipv4_csum_ok(ip))
			return cl_drop(CL_CNT_DROP_BAD_CSUM);
		if (!cfg->host_ip)
			return cl_drop(CL_CNT_DROP_NO_CONFIG);
		if (ip->daddr != cfg->host_ip)
			return cl_drop(CL_CNT_DROP_NOT_FOR_US);
		ulen = bpf_ntohs(udp->len);
		if (ulen != tot - sizeof(*ip))
			return cl_drop(CL_CNT_DROP_BAD_UDP);

		g = data + CL_OFF_GNV;
		if (ulen < sizeof(*udp) + sizeof(*g) || (void *)(g + 1) > data_end)
			return cl_drop(CL_CNT_DROP_TRUNC_GENEVE);
		if ((g->ver_optlen >> 6) != 0 || g->proto != bpf_htons(CL_ETH_P_TEB))
			return cl_drop(CL_CNT_DROP_BAD_GENEVE);
		optlen = (g->ver_optlen & 0x3f) * 4;
		if (sizeof(*udp) + sizeof(*g) + optlen > ulen)
			return cl_drop(CL_CNT_DROP_GENEVE_OPT_LEN);
		if (optlen == sizeof(struct cl_rts_opt) && (void *)g + sizeof(*g) + sizeof(*rts) <= data_end &&
		    *(__u32 *)(g + 1) == CL_LE32(CL_OPT_CLASS >> 8, CL_OPT_CLASS, CL_OPT_TYPE_RTS, CL_RTS_LEN_WORDS)) {
			rts = (void *)(g + 1); /* what every agent sends: one RTS option */
		} else {
			err = cl_geneve_options(g, data_end, optlen, &rts);
			if (err)
				return cl_drop(err);
		}

		hdr_len = CL_ENCAP_BASE_LEN + optlen;
		ieth = data + (hdr_len & 0x1ff);
		if ((void *)(ieth + 1) > data_end)
			return cl_drop(CL_CNT_DROP_TRUNC_INNER);
		if (cl_eth_proto(ieth) != bpf_htons(ETH_P_IP))
			return cl_drop(CL_CNT_DROP_INNER_NOT_IPV4);
		iip = (void *)(ieth + 1);
		if ((void *)(iip + 1) > data_end)
			return cl_drop(CL_CNT_DROP_TRUNC_INNER);
		if (iip->version != 4 || iip->ihl < 5)
			return cl_drop(CL_CNT_DROP_INNER_NOT_IPV4);

	}

	vni = cl_geneve_vni(g);
	if (rts && (rts->flags & CL_RTS_F_STALE)) {
		/* our direct path to the inner destination led to a droplet that lost it */
		cl_hc_invalidate(cfg, vni, iip->daddr);
		return XDP_DROP;
	}
	epoch = cfg->epoch;
	act = cl_fc_transit_slot(vni, udp->source);
	if (!act)
		return cl_drop(CL_CNT_DROP_NO_CONFIG); /* cannot happen: a per-CPU array slot */
	if (*(__u64 *)&act->vni == ((__u64)vni | ((__u64)iip->daddr << 32)) &&
	    *(__u64 *)&act->sport == ((__u64)udp->source | ((__u64)epoch << 32))) {
		if ((iip->saddr & act->vpc_mask) != act->vpc_ip)
			return cl_drop(CL_CNT_DROP_SPOOFED_SRC);
	} else {
		cl_fc_flush(&act->packets, act->event);
		act->vni = 0; /* the slot is being rewritten */
		err = cl_transit_decide(cfg, vni, iip->saddr, iip->daddr, udp->source, act);
		if ((err == CL_CNT_DROP_NO_NETWORK || err == CL_CNT_DROP_NO_ENDPOINT) && rts) {
			/* sent here direct (a learned path) for an endpoint that lived here and is gone:
			 * tell the sender (only for our own tombstones: garbage stays a counted drop) */
			struct cl_ep_key gk = { .vni = vni, .ip = iip->daddr };
			struct cl_gone *gone = bpf_map_lookup_elem(&cl_gone, &gk);
			__be32 sender = cl_rts_host(rts);
			const __u8 *mac;

			if (gone && bpf_jiffies64() < gone->until_j && sender && sender == ip->saddr &&
			    sender != cfg->host_ip &&
			    !(rts->flags & (CL_RTS_F_BOUNCED | CL_RTS_F_VIA | CL_RTS_F_STALE)) &&
			    cl_resolve(cfg, sender, &mac, &port) == 0) {
				cl_rts_set_flag(rts, udp, CL_RTS_F_STALE);
				return cl_forward(ctx, cfg, eth, ip, udp, sender, mac, port, CL_CNT_REFLECTED, NULL);
			}
		}
		if (err)
			return cl_drop(err);
		act->daddr = iip->daddr;
		*(__u64 *)&act->sport = (__u64)udp->source | ((__u64)epoch << 32); /* _pad0 = 0 */
		act->vni = vni;
	}

	return cl_transit_act(ctx, cfg, act, eth, ip, udp, rts, ieth, iip, hdr_len, data_end, vni);
}

/* Userspace's clock: jiffies and CLOCK_MONOTONIC as the dataplane sees them, written into
 * the first 16 bytes of a BPF_PROG_RUN frame (host-cache expiries are kept in jiffies). */
SEC("xdp")
int cl_clock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 *now = data;

	if ((void *)(now + 2) > data_end)
		return XDP_ABORTED;
	now[0] = bpf_jiffies64();
	now[1] = bpf_ktime_get_ns();
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
