/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Scaled endpoints (NET-8 load balancing): a virtual IP spread over backend endpoints.
 *
 * Translation happens on the client's droplet, both ways: the agent picks a backend by flow
 * hash (a flow keeps its backend while the backend list is unchanged), rewrites the inner
 * destination (DNAT, IP and TCP/UDP checksums fixed) and records the flow in cl_lb_rnat; a
 * reply from that backend to that client -- delivered by transit, or by the agent when the
 * backend is on the same droplet -- gets its source rewritten back to the virtual IP. The
 * backend sees the client's real address. Only addresses are translated, never ports.
 * ICMP echo is keyed by its id; ICMP errors from backends are not translated back. */
#ifndef CL_LB_H
#define CL_LB_H

#include "maps.h"
#include "csum.h"
#include "hash.h"
#include "parse.h"

/* Fix the TCP/UDP checksum for an address change in the pseudo-header. */
static __always_inline void cl_l4_addr_changed(struct cl_flow *f, void *data_end, __be32 from,
					       __be32 to)
{
	if (!f->l4)
		return;
	if (f->proto == IPPROTO_TCP) {
		struct tcphdr *th = f->l4;

		if ((void *)(th + 1) <= data_end)
			cl_csum_replace4((__u16 *)&th->check, from, to);
	} else if (f->proto == IPPROTO_UDP) {
		struct udphdr *uh = f->l4;

		if ((void *)(uh + 1) <= data_end)
			cl_udp_csum_replace4((__u16 *)&uh->check, from, to);
	}
}

/* DNAT the frame to a backend of @sc. Returns 0 or a drop reason. */
static __always_inline int cl_lb_dnat(struct iphdr *ip, void *data_end, struct cl_flow *f,
				      __u32 vni, const struct cl_scaled *sc)
{
	struct cl_lb_key k = {};
	struct cl_lb_val nv = {};
	struct cl_lb_val *v;
	__u32 n = sc->nbackends;
	__be32 vip = f->daddr, be;

	if (n == 0 || n > CL_MAX_BACKENDS)
		return CL_CNT_DROP_NO_BACKEND;
	be = sc->backends[cl_bound(cl_flow_hash(f->saddr, vip, f->sport, f->dport, f->proto) % n,
				   CL_MAX_BACKENDS - 1)];
	if (be == 0)
		return CL_CNT_DROP_NO_BACKEND;

	k.vni = vni;
	k.client_ip = f->saddr;
	k.backend_ip = be;
	k.client_port = f->sport;
	k.backend_port = f->dport;
	k.proto = f->proto;
	v = bpf_map_lookup_elem(&cl_lb_rnat, &k);
	if (!v || v->vip != vip) {
		nv.vip = vip;
		bpf_map_update_elem(&cl_lb_rnat, &k, &nv, BPF_ANY);
	}

	cl_l4_addr_changed(f, data_end, vip, be);
	cl_csum_replace4((__u16 *)&ip->check, vip, be);
	ip->daddr = be;
	f->daddr = be;
	cl_count(CL_CNT_LB_DNAT);
	return 0;
}

/* A reply from a backend to a client of a scaled endpoint: restore the virtual IP. */
static __always_inline void cl_lb_rnat_apply(struct iphdr *ip, void *data_end, struct cl_flow *f,
					     __u32 vni)
{
	struct cl_lb_key k = {};
	struct cl_lb_val *v;
	__be32 vip;

	k.vni = vni;
	k.client_ip = f->daddr;
	k.backend_ip = f->saddr;
	k.client_port = f->dport;
	k.backend_port = f->sport;
	k.proto = f->proto;
	v = bpf_map_lookup_elem(&cl_lb_rnat, &k);
	if (!v)
		return;
	vip = v->vip;
	cl_l4_addr_changed(f, data_end, f->saddr, vip);
	cl_csum_replace4((__u16 *)&ip->check, f->saddr, vip);
	ip->saddr = vip;
	f->saddr = vip;
	cl_count(CL_CNT_LB_RNAT);
}

#endif /* CL_LB_H */
