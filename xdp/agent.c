// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Transit agent: XDP on the droplet-side veth of each endpoint, i.e. every frame the endpoint
 * sends. It answers ARP, keeps the endpoint to its own source address, translates scaled
 * endpoints, and sends each IPv4 frame
 *   - to a local endpoint: rewritten MACs, redirected to its veth, no encapsulation;
 *   - to a remote endpoint whose host it knows (host cache, or cl_endpoints on a bouncer):
 *     Geneve straight to that host (the direct path);
 *   - else to a bouncer of the destination network (same network), or to a divider of the
 *     VPC (another network; a droplet that is itself a divider picks the bouncer directly).
 * The decision is cached per CPU (lib/fcache.h); the slow path below computes it.
 */
#include "lib/maps.h"
#include "lib/arp.h"
#include "lib/direct_path.h"
#include "lib/divider.h"
#include "lib/fcache.h"
#include "lib/geneve.h"
#include "lib/hash.h"
#include "lib/lb.h"
#include "lib/neigh.h"
#include "lib/parse.h"

/* Pick a bouncer of the network @daddr is in. Returns 0 or a drop reason. */
static __always_inline int cl_via_bouncer(__u32 vni, __be32 daddr, __u32 hash, struct cl_fc_agent *nh)
{
	struct cl_net *net = cl_lookup_net(vni, daddr);

	if (!net)
		return CL_CNT_DROP_NO_NETWORK;
	if (net->flags & CL_NET_F_BOUNCER) /* we hold every endpoint of it: this one is not */
		return CL_CNT_DROP_NO_ENDPOINT;
	nh->dst_ip = cl_pick_bouncer(net, hash);
	if (!nh->dst_ip)
		return CL_CNT_DROP_NO_BOUNCER;
	nh->event = CL_CNT_VIA_BOUNCER;
	return 0;
}

/* The slow path: consult the maps and write the decision into the cache slot @nh (key
 * fields excluded). Returns 0, or a drop reason; *cacheable says whether @nh may be reused. */
static __always_inline int cl_agent_decide(struct cl_config *cfg, const struct cl_iface *ifc,
					   __u32 vni, __be32 daddr, __u32 hash, struct cl_fc_agent *nh,
					   int *cacheable)
{
	struct cl_ep_key k = { .vni = vni, .ip = daddr };
	struct cl_encap_args a = { .vni = vni, .hash = hash };
	struct cl_hostcache *hc;
	const __u8 *mac;
	struct cl_ep *ep;
	int err;

	*cacheable = 1;
	nh->expires_j = ~0ULL;

	/* 1. a learned direct path */
	hc = cl_hc_lookup(cfg, vni, daddr);
	if (hc) {
		nh->dst_ip = hc->host_ip;
		cl_mac_copy16(nh->mac, hc->mac);
		nh->port = hc->ifindex ? hc->ifindex : cfg->substrate_ifindex;
		nh->expires_j = hc->expires_j;
		nh->event = CL_CNT_DIRECT;
		if (hc->notify) {
			/* the receiver just learned us: tell it it may learn us back */
			hc->notify--;
			cl_kepoch_bump(cfg);
			a.rts_flags = CL_RTS_F_LEARN;
			*cacheable = 0;
		}
		goto template;
	}

	/* 2. an endpoint this droplet knows: its own, or one of a network it bounces for */
	ep = bpf_map_lookup_elem(&cl_endpoints, &k);
	if (ep) {
		if (ep->kind != CL_EP_SIMPLE)
			return CL_CNT_DROP_SCALED_REMOTE;
		if (ep->ifindex) {
			nh->event = CL_CNT_LOCAL;
			nh->port = ep->ifindex;
			cl_mac_copy16(nh->mac, ep->mac);
			return 0;
		}
		nh->dst_ip = ep->host_ip;
		nh->event = CL_CNT_DIRECT;
	} else if ((daddr & ifc->net_mask) == ifc->net_ip) {
		/* 3. same network: one of its bouncers */
		err = cl_via_bouncer(vni, daddr, hash, nh);
		if (err)
			return err;
	} else {
		/* 4. another network of the VPC: through a divider (or be the divider) */
		struct cl_vpc *vpc = bpf_map_lookup_elem(&cl_vpcs, &vni);

		if (!vpc)
			return CL_CNT_DROP_UNKNOWN_VNI;
		if (vpc->flags & CL_VPC_F_DIVIDER) {
			err = cl_via_bouncer(vni, daddr, hash, nh);
			if (err)
				return err;
		} else {
			nh->dst_ip = cl_pick_divider(vpc, hash);
			if (!nh->dst_ip)
				return CL_CNT_DROP_NO_DIVIDER;
			nh->event = CL_CNT_VIA_DIVIDER;
		}
	}
	if (nh->dst_ip == cfg->host_ip)
		return CL_CNT_DROP_LOOP;
	if (cl_resolve(cfg, nh->dst_ip, &mac, &nh->port))
		return CL_CNT_DROP_NO_NEIGH;
	cl_mac_copy16(nh->mac, mac);
template:
	if (nh->event == CL_CNT_VIA_BOUNCER || nh->event == CL_CNT_VIA_DIVIDER)
		a.rts_flags = CL_RTS_F_VIA; /* whoever delivers it: learn us, tell us back */
	a.dst_ip = nh->dst_ip;
	a.dst_mac = nh->mac;
	nh->csum_base = cl_encap_template((__u32 *)nh->hdr, cfg, &a);
	return 0;
}

/* Send a frame whose decision @nh is made: deliver it on this droplet or encapsulate it. */
static __always_inline int cl_agent_send(struct xdp_md *ctx, struct ethhdr *eth, struct cl_fc_agent *nh)
{
	__u32 port = nh->port, event = nh->event;
	int err;

	if (event == CL_CNT_LOCAL) {
		/* same droplet: no encapsulation, MACs as a delivery from the overlay writes them */
		cl_mac_copy16(eth->h_dest, nh->mac);
		cl_set_gw_mac(eth->h_source);
		cl_fc_count(&nh->packets, CL_CNT_LOCAL);
		return cl_redirect(port);
	}
	err = cl_encap_push(ctx, nh->hdr, nh->csum_base);
	if (err)
		return cl_drop(err);
	cl_fc_count(&nh->packets, event); /* tx_encap = direct + via_bouncer + via_divider (userspace sums) */
	if (!port)
		return cl_drop(CL_CNT_DROP_NO_PORT);
	return cl_redirect(port);
}

/* Every frame the fast path does not take: the full checks in their order (each failure is a
 * drop under its own reason), scaled endpoints, the decision cache, the slow path. */
static __always_inline int cl_agent_full(struct xdp_md *ctx, struct ethhdr *eth, void *data_end,
					 __u32 ifindex, struct cl_config *cfg)
{
	struct cl_fc_agent *nh;
	struct cl_iface *ifc;
	__u32 hash, vni, ports;
	__u64 epochs, addrs, ports_if;
	__u16 proto_flags;
	struct iphdr *ip;
	struct cl_flow f;
	int err, cacheable;

	/* read before the lookups whose results are cached (the interface's too) */
	epochs = cl_epochs(cfg);
	ifc = cl_lookup_iface(ifindex);
	if (!ifc)
		return cl_drop(CL_CNT_DROP_NOT_ENDPOINT);
	if (cl_eth_proto(eth) == bpf_htons(ETH_P_ARP))
		return cl_arp_respond(eth, data_end, ifc);
	if (cl_eth_proto(eth) != bpf_htons(ETH_P_IP))
		return cl_drop(CL_CNT_DROP_UNSUPPORTED);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return cl_drop(CL_CNT_DROP_TRUNC_IP);
	if (cl_parse_flow(ip, data_end, &f))
		return cl_drop(CL_CNT_DROP_BAD_IP);
	if (f.saddr != ifc->ip)
		return cl_drop(CL_CNT_DROP_SPOOFED_SRC);
	if (!cfg->host_ip)
		return cl_drop(CL_CNT_DROP_NO_CONFIG);
	vni = ifc->vni;

	proto_flags = f.proto;
	if (cfg->flags & CL_CFG_F_LB) {
		struct cl_ep_key sk = { .vni = vni, .ip = f.daddr };
		struct cl_scaled *sc = bpf_map_lookup_elem(&cl_scaled, &sk);

		proto_flags |= CL_FC_F_LB << 8;
		if (sc) {
			err = cl_lb_dnat(ip, data_end, &f, vni, sc);
			if (err)
				return cl_drop(err);
		}
	}
	hash = cl_flow_hash(f.saddr, f.daddr, f.sport, f.dport, f.proto);

	ports = (__u32)f.sport | ((__u32)f.dport << 16);
	addrs = (__u64)f.saddr | ((__u64)f.daddr << 32);
	ports_if = (__u64)ports | ((__u64)ifindex << 32);
	nh = cl_fc_agent_slot(f.daddr, ports, ifindex);
	if (!nh)
		return cl_drop(CL_CNT_DROP_NO_CONFIG); /* cannot happen: a per-CPU array slot */
	if (!cl_fc_agent_match(nh, addrs, ports_if, proto_flags, epochs)) {
		cl_fc_flush(&nh->packets, nh->event);
		nh->ifindex = 0; /* the slot is being rewritten */
		err = cl_agent_decide(cfg, ifc, vni, f.daddr, hash, nh, &cacheable);
		if (err)
			return cl_drop(err);
		if (cacheable) {
			*(__u64 *)&nh->saddr = addrs;
			nh->ports = ports;
			*(__u16 *)&nh->proto = proto_flags;
			*(__u64 *)&nh->epoch = epochs;
			nh->ifindex = ifindex;
		}
	}
	if (nh->event == CL_CNT_LOCAL && (cfg->flags & CL_CFG_F_LB))
		cl_lb_rnat_apply(ip, data_end, &f, vni);
	return cl_agent_send(ctx, eth, nh);
}

/* Fast path: an IPv4 TCP/UDP frame without IP options whose flow has a current decision in the
 * per-CPU cache (scaled endpoints disabled). The slot's key holds everything the full path
 * would have checked -- the interface (ifindex), the endpoint's source address, the epochs
 * under which the interface and every map were read -- so a hit is exactly what the full path
 * would do, without the interface lookup, the flow parsing or the flow hash. */
SEC("xdp")
int cl_agent(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct ethhdr *eth = data;
	struct cl_fc_agent *nh;
	struct cl_config *cfg;
	__u8 *ip = data + ETH_HLEN;

	if ((void *)(eth + 1) > data_end)
		return cl_drop(CL_CNT_DROP_TRUNC_ETH);
	cfg = cl_get_config();
	if (!cfg)
		return cl_drop(CL_CNT_DROP_NO_CONFIG); /* cannot happen: an array slot */
	if (cl_eth_proto(eth) == bpf_htons(ETH_P_IP) && (void *)(ip + 24) <= data_end && ip[0] == 0x45) {
		/* bytes 4-11: id | fragment offset | ttl | protocol | checksum */
		__u64 w = *(__u64 *)(ip + 4);
		__u8 proto = w >> 40;

		if (!(w & 0xff1f0000) && (proto == IPPROTO_UDP || proto == IPPROTO_TCP)) {
			__u64 addrs = *(__u64 *)(ip + 12); /* saddr | daddr << 32 */
			__u32 ports = *(__u32 *)(ip + 20);

			nh = cl_fc_agent_slot(addrs >> 32, ports, ifindex);
			if (nh && cl_fc_agent_match(nh, addrs, (__u64)ports | ((__u64)ifindex << 32), proto,
						    cl_epochs(cfg)))
				return cl_agent_send(ctx, eth, nh);
		}
	}
	return cl_agent_full(ctx, eth, data_end, ifindex, cfg);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
