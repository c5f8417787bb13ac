/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow hash: picks a bouncer, a divider or a backend, and fills the outer UDP source port.
 * The same flow always hashes the same way, so a flow keeps its path and its backend. */
#ifndef CL_HASH_H
#define CL_HASH_H

#include "common.h"

/* murmur3 finaliser: cheap and mixes every input bit into every output bit */
static __always_inline __u32 cl_fmix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* One finaliser over the folded 5-tuple: every field reaches every output bit; the rotation
 * keeps saddr and daddr from cancelling (a->b and b->a differ). */
static __always_inline __u32 cl_flow_hash(__be32 saddr, __be32 daddr, __be16 sport, __be16 dport,
					   __u8 proto)
{
	__u32 h = saddr * 0x9e3779b1 + ((daddr << 13) | (daddr >> 19));

	return cl_fmix32(h ^ (((__u32)sport << 16) | dport) ^ ((__u32)proto << 24));
}

#endif /* CL_HASH_H */
