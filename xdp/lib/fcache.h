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

/* Both epochs as one 64-bit value (epoch | kepoch << 32), the way a slot stores them. */
static __always_inline __u64 cl_epochs(const struct cl_config *cfg)
{
	return *(const __u64 *)&cfg->epoch;
}

_Static_assert(__builtin_offsetof(struct cl_config, epoch) % 8 == 0 &&
	       __builtin_offsetof(struct cl_config, kepoch) == __builtin_offsetof(struct cl_config, epoch) + 4,
	       "cl_config: epoch and kepoch form one aligned 64-bit word");
_Static_assert(__builtin_offsetof(struct cl_fc_agent, daddr) == 4 &&
	       __builtin_offsetof(struct cl_fc_agent, ports) == 8 &&
	       __builtin_offsetof(struct cl_fc_agent, ifindex) == 12 &&
	       __builtin_offsetof(struct cl_fc_agent, flags) == __builtin_offsetof(struct cl_fc_agent, proto) + 1 &&
	       __builtin_offsetof(struct cl_fc_agent, proto) % 2 == 0 &&
	       __builtin_offsetof(struct cl_fc_agent, kepoch) == __builtin_offsetof(struct cl_fc_agent, epoch) + 4 &&
	       __builtin_offsetof(struct cl_fc_agent, epoch) % 8 == 0,
	       "cl_fc_agent: the key is compared as 64-bit words");
_Static_assert(__builtin_offsetof(struct cl_fc_transit, daddr) == 4 &&
	       __builtin_offsetof(struct cl_fc_transit, sport) == 8 &&
	       __builtin_offsetof(struct cl_fc_transit, epoch) == 12,
	       "cl_fc_transit: the key is compared as two 64-bit words");
_Static_assert(__builtin_offsetof(struct cl_fc_learn, ip) == 4 && __builtin_offsetof(struct cl_fc_learn, epoch) == 8 &&
	       __builtin_offsetof(struct cl_fc_learn, kepoch) == 12,
	       "cl_fc_learn: (vni, ip) and the epochs are compared as 64-bit words");

/* The agent's slot of a flow. The key (see struct cl_fc_agent) is compared as three words:
 * addrs = saddr | daddr << 32, ports_if = ports | ifindex << 32, proto_flags = proto | flags
 * << 8 -- all as they sit in the frame, so the fast path reads them with plain loads. */
static __always_inline struct cl_fc_agent *cl_fc_agent_slot(__be32 daddr, __u32 ports, __u32 ifindex)
{
	__u32 slot = ((daddr ^ ports ^ ifindex) * 0x9e3779b1) >> (32 - CL_FCACHE_BITS);

	return bpf_map_lookup_elem(&cl_fc_agent, &slot);
}

static __always_inline int cl_fc_agent_match(const struct cl_fc_agent *nh, __u64 addrs, __u64 ports_if,
					     __u16 proto_flags, __u64 epochs)
{
	return *(const __u64 *)&nh->saddr == addrs && *(const __u64 *)&nh->ports == ports_if &&
	       *(const __u16 *)&nh->proto == proto_flags && *(const __u64 *)&nh->epoch == epochs &&
	       bpf_jiffies64() < nh->expires_j;
}

/* The transit's slot of a flow: indexed by (vni, outer source port) only -- the port is the
 * sender's flow hash, which already mixes the inner addresses in -- so finding the slot does
 * not wait for the inner header's cache line; the key compare still checks the destination. */
static __always_inline struct cl_fc_transit *cl_fc_transit_slot(__u32 vni, __be16 sport)
{
	__u32 slot = ((((__u32)sport << 16) ^ vni) * 0x9e3779b1) >> (32 - CL_FCACHE_BITS);

	return bpf_map_lookup_elem(&cl_fc_transit, &slot);
}

static __always_inline struct cl_fc_learn *cl_fc_learn_slot(__u32 vni, __be32 ip)
{
	__u32 slot = ((ip ^ vni) * 0x85ebca6b) >> (32 - CL_FCACHE_BITS);

	return bpf_map_lookup_elem(&cl_fc_learn, &slot);
}

#endif /* CL_FCACHE_H */
