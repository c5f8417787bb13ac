/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Substrate next hop resolution and transmission.
 *
 * Substrate addressing: every droplet has one substrate address (cl_config.host_ip) on its
 * substrate interface (cl_config.substrate_ifindex, MAC host_mac). The outer destination MAC
 * of a frame to droplet X is cl_neigh[X].mac, sent out of cl_neigh[X].ifindex (0: the
 * substrate interface); userspace writes one entry per peer droplet (netns lab: the peer's
 * substrate veth MAC behind the lab switch, or the point-to-point link's peer). Without an
 * entry the frame goes to cl_config.nexthop_mac (a routed substrate), else it is dropped.
 */
#ifndef CL_NEIGH_H
#define CL_NEIGH_H

#include "maps.h"

static __always_inline int cl_resolve(const struct cl_config *cfg, __be32 ip, const __u8 **mac,
				      __u32 *ifindex)
{
	struct cl_neigh *n = bpf_map_lookup_elem(&cl_neigh, &ip);

	if (n) {
		*mac = n->mac;
		*ifindex = n->ifindex ? n->ifindex : cfg->substrate_ifindex;
		return 0;
	}
	if (!cl_mac_is_zero(cfg->nexthop_mac)) {
		*mac = cfg->nexthop_mac;
		*ifindex = cfg->substrate_ifindex;
		return 0;
	}
	return -1;
}

/* Redirect through the devmap; a port missing from it is a counted drop, never a silent one. */
static __always_inline int cl_redirect(__u32 ifindex)
{
	int ret = bpf_redirect_map(&cl_tx_ports, ifindex, 0);

	if (ret != XDP_REDIRECT)
		return cl_drop(CL_CNT_DROP_NO_PORT);
	return ret;
}

/* Transmit on the substrate: back out of the ingress port (XDP_TX) or through another one. */
static __always_inline int cl_xmit(struct xdp_md *ctx, __u32 ifindex)
{
	if (ifindex == 0 || ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return cl_redirect(ifindex);
}

#endif /* CL_NEIGH_H */
