/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Direct path: a droplet learns "endpoint -> host" from the RTS option and later sends to
 * that host without a bouncer.
 *
 * Every agent puts its own substrate address in the RTS option, and the VIA flag when it
 * sends to a bouncer or divider. A bouncer sets the BOUNCED flag when it forwards. The
 * receiving transit learns (vni, inner source) -> RTS host when BOUNCED, VIA or LEARN is set,
 * and after a BOUNCED/VIA frame it arms `notify`: the next replies its agent sends on that
 * direct path carry LEARN, so the original sender learns the way back.
 * Frames that already arrive direct and unflagged cost no map write (and no lookup).
 *
 * An entry is used only while jiffies < expires_j and gen == cl_config.hostcache_gen: userspace
 * deletes single entries when an endpoint moves or goes away and bumps the generation to
 * drop them all; the expiry bounds how long an entry it could not reach stays in use. A frame
 * that still reaches the old host is re-routed through a bouncer (transit.c). */
#ifndef CL_DIRECT_PATH_H
#define CL_DIRECT_PATH_H

#include "maps.h"
#include "geneve.h"
#include "neigh.h"
#include "fcache.h"

static __always_inline struct cl_hostcache *cl_hc_lookup(const struct cl_config *cfg, __u32 vni,
							   __be32 ip)
{
	struct cl_ep_key k = { .vni = vni, .ip = ip };
	struct cl_hostcache *e = bpf_map_lookup_elem(&cl_hostcache, &k);

	if (!e)
		return NULL;
	if (e->gen != cfg->hostcache_gen || bpf_jiffies64() >= e->expires_j)
		return NULL;
	return e;
}

static __always_inline __u64 cl_hc_ttl_jiffies(const struct cl_config *cfg)
{
	__u64 ttl_ms = (cfg->hostcache_ttl_ns ? cfg->hostcache_ttl_ns : CL_HOSTCACHE_TTL_DEFAULT_NS) / 1000000;
	__u64 ttl = ttl_ms * (cfg->hz ? cfg->hz : 250) / 1000;

	return ttl ? ttl : 1;
}

/* Learn (vni, ep_ip) -> RTS host; a BOUNCED frame also arms the notification countdown. */
static __always_inline void cl_hc_learn(struct cl_config *cfg, __u32 vni, __be32 ep_ip,
					const struct cl_rts_opt *rts)
{
	struct cl_ep_key k = { .vni = vni, .ip = ep_ip };
	struct cl_hostcache v = {};
	struct cl_hostcache *e;
	struct cl_fc_learn *fl;
	__be32 host = cl_rts_host(rts);
	__u8 bounced = (rts->flags & (CL_RTS_F_BOUNCED | CL_RTS_F_VIA)) != 0;
	__u64 epochs = cl_epochs(cfg), ttl, now = bpf_jiffies64();
	const __u8 *mac;
	__u32 port;

	if (host == 0 || host == cfg->host_ip)
		return;
	/* fast: this very entry was found fresh (and armed, if we must arm) since the last change */
	fl = cl_fc_learn_slot(vni, ep_ip);
	if (fl && *(__u64 *)&fl->vni == ((__u64)vni | ((__u64)ep_ip << 32)) &&
	    *(__u64 *)&fl->epoch == epochs && fl->host == host && now < fl->fresh_until_j &&
	    (fl->armed || !bounced))
		return;

	ttl = cl_hc_ttl_jiffies(cfg);
	e = bpf_map_lookup_elem(&cl_hostcache, &k);
	if (e && e->host_ip == host && e->gen == cfg->hostcache_gen && e->expires_j > now + ttl / 2) {
		if (bounced && e->notify != CL_HOSTCACHE_NOTIFY) {
			e->notify = CL_HOSTCACHE_NOTIFY; /* the sender bounces: teach it again */
			cl_kepoch_bump(cfg);
			return;
		}
		if (fl) { /* nothing to write: remember that */
			fl->ip = ep_ip;
			fl->host = host;
			*(__u64 *)&fl->epoch = epochs;
			fl->armed = e->notify == CL_HOSTCACHE_NOTIFY;
			fl->fresh_until_j = e->expires_j - ttl / 2;
			fl->vni = vni;
		}
		return;
	}
	v.host_ip = host;
	if (cl_resolve(cfg, host, &mac, &port) == 0) {
		__builtin_memcpy(v.mac, mac, 6);
		v.ifindex = port;
	} else {
		__builtin_memcpy(v.mac, rts->host_mac, 6);
	}
	v.notify = bounced ? CL_HOSTCACHE_NOTIFY : 0;
	v.gen = cfg->hostcache_gen;
	v.expires_j = now + ttl;
	bpf_map_update_elem(&cl_hostcache, &k, &v, BPF_ANY);
	cl_kepoch_bump(cfg);
	cl_count(CL_CNT_LEARNED);
}

/* A STALE reflection: forget the direct path to (vni, ep_ip). */
static __always_inline void cl_hc_invalidate(struct cl_config *cfg, __u32 vni, __be32 ep_ip)
{
	struct cl_ep_key k = { .vni = vni, .ip = ep_ip };

	bpf_map_delete_elem(&cl_hostcache, &k);
	cl_kepoch_bump(cfg);
	cl_count(CL_CNT_INVALIDATED);
}

#endif /* CL_DIRECT_PATH_H */
