// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Transit agent: XDP on the droplet-side veth of each endpoint, i.e. every frame the endpoint
 * sends. It answers ARP, keeps the endpoint to its own source address, translates scaled
 * endpoints, and sends each IPv4 frame
 *   - to a local endpoint: rewritten MACs, redirected to its veth, no encapsulation;
 *   - to a remote endpoint whose host it knows (host cache, or cl_endpoints on a bouncer):
 *     Geneve straight to that host (the direct path);
 *   - else to a bouncer of the destination network (same network), or to a divider of the
 *     VPC (another network; a droplet that is itself a divider picks the bouncer directly).
 */
#include "lib/maps.h"
#include "lib/arp.h"
#include "lib/direct_path.h"
#include "lib/divider.h"
#include "lib/geneve.h"
#include "lib/hash.h"
#include "lib/lb.h"
#include "lib/neigh.h"
#include "lib/parse.h"

static __always_inline int cl_agent_local(const struct cl_config *cfg, const struct cl_ep *ep,
					  struct ethhdr *eth, struct iphdr *ip, void *data_end,
					  struct cl_flow *f, __u32 vni)
{
	if (cfg->flags & CL_CFG_F_LB)
		cl_lb_rnat_apply(ip, data_end, f, vni);
	cl_mac_copy16(eth->h_dest, ep->mac);
	cl_set_gw_mac(eth->h_source);
	cl_count(CL_CNT_LOCAL);
	return cl_redirect(ep->ifindex);
}

SEC("xdp")
int cl_agent(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct cl_encap_args a = {};
	struct ethhdr *eth = data;
	struct cl_hostcache *hc;
	struct cl_config *cfg;
	struct cl_iface *ifc;
	struct cl_ep_key k;
	struct iphdr *ip;
	struct cl_ep *ep;
	struct cl_flow f;
	const __u8 *mac;
	__u32 port, event;
	int err;

	if ((void *)(eth + 1) > data_end)
		return cl_drop(CL_CNT_DROP_TRUNC_ETH);
	ifc = bpf_map_lookup_elem(&cl_ifaces, &ifindex);
	if (!ifc)
		return cl_drop(CL_CNT_DROP_NOT_ENDPOINT);
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return cl_arp_respond(eth, data_end, ifc);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
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
	a.vni = ifc->vni;

	if (cfg->flags & CL_CFG_F_LB) {
		struct cl_scaled *sc;

		k.vni = a.vni;
		k.ip = f.daddr;
		sc = bpf_map_lookup_elem(&cl_scaled, &k);
		if (sc) {
			err = cl_lb_dnat(ip, data_end, &f, a.vni, sc);
			if (err)
				return cl_drop(err);
		}
	}
	a.hash = cl_flow_hash(f.saddr, f.daddr, f.sport, f.dport, f.proto);

	/* 1. the direct path, learned */
	hc = cl_hc_lookup(cfg, a.vni, f.daddr);
	if (hc) {
		a.dst_ip = hc->host_ip;
		a.dst_mac = hc->mac;
		port = hc->ifindex ? hc->ifindex : cfg->substrate_ifindex;
		if (hc->notify) {
			hc->notify--;
			a.rts_flags = CL_RTS_F_LEARN;
		}
		event = CL_CNT_DIRECT;
		goto encap;
	}

	/* 2. an endpoint this droplet knows: its own, or one of a network it bounces for */
	k.vni = a.vni;
	k.ip = f.daddr;
	ep = bpf_map_lookup_elem(&cl_endpoints, &k);
	if (ep) {
		if (ep->kind != CL_EP_SIMPLE)
			return cl_drop(CL_CNT_DROP_SCALED_REMOTE);
		if (ep->ifindex)
			return cl_agent_local(cfg, ep, eth, ip, data_end, &f, a.vni);
		a.dst_ip = ep->host_ip;
		event = CL_CNT_DIRECT;
	} else if ((f.daddr & ifc->net_mask) == ifc->net_ip) {
		/* 3. same network: one of its bouncers */
		struct cl_net *net = cl_lookup_net(a.vni, f.daddr);

		if (!net)
			return cl_drop(CL_CNT_DROP_NO_NETWORK);
		if (net->flags & CL_NET_F_BOUNCER)
			return cl_drop(CL_CNT_DROP_NO_ENDPOINT);
		a.dst_ip = cl_pick_bouncer(net, a.hash);
		if (!a.dst_ip)
			return cl_drop(CL_CNT_DROP_NO_BOUNCER);
		event = CL_CNT_VIA_BOUNCER;
	} else {
		/* 4. another network of the VPC: through a divider */
		struct cl_vpc *vpc = bpf_map_lookup_elem(&cl_vpcs, &a.vni);

		if (!vpc)
			return cl_drop(CL_CNT_DROP_UNKNOWN_VNI);
		if (vpc->flags & CL_VPC_F_DIVIDER) {
			struct cl_net *net = cl_lookup_net(a.vni, f.daddr);

			if (!net)
				return cl_drop(CL_CNT_DROP_NO_NETWORK);
			if (net->flags & CL_NET_F_BOUNCER)
				return cl_drop(CL_CNT_DROP_NO_ENDPOINT);
			a.dst_ip = cl_pick_bouncer(net, a.hash);
			if (!a.dst_ip)
				return cl_drop(CL_CNT_DROP_NO_BOUNCER);
			event = CL_CNT_VIA_BOUNCER;
		} else {
			a.dst_ip = cl_pick_divider(vpc, a.hash);
			if (!a.dst_ip)
				return cl_drop(CL_CNT_DROP_NO_DIVIDER);
			event = CL_CNT_VIA_DIVIDER;
		}
	}
	if (a.dst_ip == cfg->host_ip)
		return cl_drop(CL_CNT_DROP_LOOP);
	if (cl_resolve(cfg, a.dst_ip, &mac, &port))
		return cl_drop(CL_CNT_DROP_NO_NEIGH);
	a.dst_mac = mac;

encap:
	err = cl_encap(ctx, cfg, &a);
	if (err)
		return cl_drop(err);
	cl_count(CL_CNT_TX_ENCAP);
	cl_count(event);
	if (!port)
		return cl_drop(CL_CNT_DROP_NO_PORT);
	return cl_redirect(port);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
