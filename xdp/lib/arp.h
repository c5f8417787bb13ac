/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ARP responder on an endpoint's veth: every address the endpoint asks for (its gateway and
 * its peers) resolves to the virtual gateway MAC, so the endpoint never broadcasts into the
 * overlay and the receiving droplet writes the real destination MAC on delivery. */
#ifndef CL_ARP_H
#define CL_ARP_H

#include "maps.h"
#include "geneve.h"

#define CL_ARPHRD_ETHER 1
#define CL_ARPOP_REQUEST 1
#define CL_ARPOP_REPLY 2

struct cl_arp {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

static __always_inline int cl_arp_respond(struct ethhdr *eth, void *data_end,
					  const struct cl_iface *ifc)
{
	struct cl_arp *a = (void *)(eth + 1);
	__be32 spa, tpa;

	if ((void *)(a + 1) > data_end)
		return cl_drop(CL_CNT_DROP_ARP);
	if (a->htype != bpf_htons(CL_ARPHRD_ETHER) || a->ptype != bpf_htons(ETH_P_IP) ||
	    a->hlen != 6 || a->plen != 4 || a->op != bpf_htons(CL_ARPOP_REQUEST))
		return cl_drop(CL_CNT_DROP_ARP);
	__builtin_memcpy(&spa, a->spa, 4);
	__builtin_memcpy(&tpa, a->tpa, 4);
	/* only the endpoint asking with its own address, never for its own address */
	if (spa != ifc->ip || tpa == ifc->ip)
		return cl_drop(CL_CNT_DROP_ARP);

	cl_mac_copy16(eth->h_dest, a->sha);
	cl_set_gw_mac(eth->h_source);
	a->op = bpf_htons(CL_ARPOP_REPLY);
	cl_mac_copy16(a->tha, a->sha);
	__builtin_memcpy(a->tpa, &spa, 4);
	cl_set_gw_mac(a->sha);
	__builtin_memcpy(a->spa, &tpa, 4);
	cl_count(CL_CNT_ARP_REPLY);
	return XDP_TX;
}

#endif /* CL_ARP_H */
