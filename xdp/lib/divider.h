/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Choosing the next droplet by flow hash: a bouncer of a network (found by LPM on
 * (vni, address)), or a divider of a VPC. */
#ifndef CL_DIVIDER_H
#define CL_DIVIDER_H

#include "maps.h"

static __always_inline struct cl_net *cl_lookup_net(__u32 vni, __be32 ip)
{
	struct cl_net_key k = { .prefixlen = 64, .vni = vni, .ip = ip };

	return bpf_map_lookup_elem(&cl_networks, &k);
}

static __always_inline __be32 cl_pick_bouncer(const struct cl_net *net, __u32 hash)
{
	__u32 n = net->nbouncers;

	if (n == 0 || n > CL_MAX_BOUNCERS)
		return 0;
	return net->bouncers[cl_bound(hash % n, CL_MAX_BOUNCERS - 1)];
}

static __always_inline __be32 cl_pick_divider(const struct cl_vpc *vpc, __u32 hash)
{
	__u32 n = vpc->ndividers;

	if (n == 0 || n > CL_MAX_DIVIDERS)
		return 0;
	return vpc->dividers[cl_bound(hash % n, CL_MAX_DIVIDERS - 1)];
}

#endif /* CL_DIVIDER_H */
