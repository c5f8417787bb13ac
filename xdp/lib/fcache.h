/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU decision caches in front of the map lookups of the fast paths.
 *
 * Why: a hash lookup costs ~13 ns here, an LPM lookup more, a per-CPU array slot ~1 ns, and
 * a whole veth hop only ~60 ns. The agent's decision (next hop for a frame) is a function of
 * (vni, destination, flow hash) and of the maps; transit's (deliver / bounce / divide) of
 * (vni, destination, outer source port) and of the maps. Each cache slot stores a decision
 * WITH all of those inputs, so a hit is exactly what the slow path would compute -- as long
 * as the maps did not change. Map changes are tracked by epochs, never by timing:
 *   - cl_config.epoch: bumped by userspace on every map write (centaurus.bpf.overlay does);
 *   - cl_config.kepoch: bumped by the dataplane itself when it writes the host cache
 *     (learning, re-arming or counting down a notification).
 * A slot is used only if the epochs it was filled under are still current. Epochs are read
 * BEFORE the lookups whose result is cached, so a change racing with a fill leaves a slot
 * that never matches. Learned direct paths keep their expiry, checked on every hit (jiffies,
 * free). Decisions the slow path must see every time (a notification countdown) are never
 * cached; drops are never cached. Per-CPU: no locking, no torn slots. */
#ifndef CL_FCACHE_H
#define CL_FCACHE_H

#include "maps.h"
#include "hash.h"

static __always_inline void cl_kepoch_bump(struct cl_config *cfg)
{
	__sync_fetch_and_add(&cfg->kepoch, 1);
}

static __always_inline struct cl_fc_agent *cl_fc_agent_slot(__u32 hash)
{
	__u32 slot = hash & (CL_FCACHE_SLOTS - 1);

	return bpf_map_lookup_elem(&cl_fc_agent, &slot);
}

static __always_inline struct cl_fc_transit *cl_fc_transit_slot(__u32 vni, __be32 daddr, __be16 sport)
{
	__u32 slot = ((daddr ^ ((__u32)sport << 16) ^ vni) * 0x9e3779b1) >> (32 - CL_FCACHE_BITS);

	return bpf_map_lookup_elem(&cl_fc_transit, &slot);
}

static __always_inline struct cl_fc_learn *cl_fc_learn_slot(__u32 vni, __be32 ip)
{
	__u32 slot = ((ip ^ vni) * 0x85ebca6b) >> (32 - CL_FCACHE_BITS);

	return bpf_map_lookup_elem(&cl_fc_learn, &slot);
}

#endif /* CL_FCACHE_H */
