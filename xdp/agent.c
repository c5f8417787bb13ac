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

SEC("xdp")
int cl_agent(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct ethhdr *eth = data;
	struct cl_fc_agent *nh;
	struct cl_config *cfg;
	struct cl_iface *ifc;
	__u32 epoch, kepoch, hash, vni, port;
	struct iphdr *ip;
	struct cl_flow f;
	int err, cacheable;

	if ((void *)(eth + 1) > data_end)
		return cl_drop(CL_CNT_DROP_TRUNC_ETH);
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
	cfg = cl_get_config();
	if (!cfg || !cfg->host_ip)
		return cl_drop(CL_CNT_DROP_NO_CONFIG);
	vni = ifc->vni;

	if (cfg->flags & CL_CFG_F_LB) {
		struct cl_ep_key sk = { .vni = vni, .ip = f.daddr };
		struct cl_scaled *sc = bpf_map_lookup_elem(&cl_scaled, &sk);

		if (sc) {
			err = cl_lb_dnat(ip, data_end, &f, vni, sc);
			if (err)
				return cl_drop(err);
		}
	}
	hash = cl_flow_hash(f.saddr, f.daddr, f.sport, f.dport, f.proto);

	epoch = cfg->epoch;
	kepoch = cfg->kepoch;
	nh = cl_fc_agent_slot(hash);
	if (!nh)
		return cl_drop(CL_CNT_DROP_NO_CONFIG); /* cannot happen: a per-CPU array slot */
	if (!(nh->vni == vni && nh->daddr == f.daddr && nh->hash == hash && nh->epoch == epoch &&
	      nh->kepoch == kepoch && bpf_jiffies64() < nh->expires_j)) {
		nh->vni = 0; /* the slot is being rewritten */
		err = cl_agent_decide(cfg, ifc, vni, f.daddr, hash, nh, &cacheable);
		if (err)
			return cl_drop(err);
		if (cacheable) {
			nh->daddr = f.daddr;
			nh->hash = hash;
			nh->epoch = epoch;
			nh->kepoch = kepoch;
			nh->vni = vni;
		}
	}

	port = nh->port;
	if (nh->event == CL_CNT_LOCAL) {
		/* same droplet: no encapsulation, MACs as a delivery from the overlay writes them */
		if (cfg->flags & CL_CFG_F_LB)
			cl_lb_rnat_apply(ip, data_end, &f, vni);
		cl_mac_copy16(eth->h_dest, nh->mac);
		cl_set_gw_mac(eth->h_source);
		cl_count(CL_CNT_LOCAL);
		return cl_redirect(port);
	}
	err = cl_encap_push(ctx, nh->hdr, nh->csum_base);
	if (err)
		return cl_drop(err);
	cl_count(nh->event); /* tx_encap = direct + via_bouncer + via_divider (userspace sums) */
	if (!port)
		return cl_drop(CL_CNT_DROP_NO_PORT);
	return cl_redirect(port);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
