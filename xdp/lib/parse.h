/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inner IPv4 parsing shared by the agent (endpoint egress) and transit (decap side). */
#ifndef CL_PARSE_H
#define CL_PARSE_H

#include "common.h"

struct cl_flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport; /* ICMP echo: the echo id on both sides */
	__be16 dport;
	__u8 proto;
	__u8 _pad[3];
	void *l4;     /* start of the L4 header when it is complete, else NULL */
};

struct cl_echo {
	__u8 type;
	__u8 code;
	__u16 check;
	__be16 id;
	__be16 seq;
};

/* Fill @f from the IPv4 header @ip (already bounds-checked for 20 bytes). Returns 0, or -1
 * when the header length is invalid. Ports stay zero for fragments and unknown protocols. */
static __always_inline int cl_parse_flow(struct iphdr *ip, void *data_end, struct cl_flow *f)
{
	__u32 ihl = ip->ihl;
	void *l4;

	if (ip->version != 4 || ihl < 5)
		return -1;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->proto = ip->protocol;
	f->sport = 0;
	f->dport = 0;
	f->l4 = NULL;
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0; /* non-first fragment: no ports */
	l4 = (void *)ip + (ihl & 0xf) * 4;
	if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) {
		__be16 *ports = l4;

		if ((void *)(ports + 2) > data_end)
			return 0;
		f->sport = ports[0];
		f->dport = ports[1];
		if (f->proto == IPPROTO_TCP) {
			if (l4 + sizeof(struct tcphdr) <= data_end)
				f->l4 = l4;
		} else if (l4 + sizeof(struct udphdr) <= data_end) {
			f->l4 = l4;
		}
	} else if (f->proto == IPPROTO_ICMP) {
		struct cl_echo *e = l4;

		if ((void *)(e + 1) > data_end)
			return 0;
		if (e->type == CL_ICMP_ECHO || e->type == CL_ICMP_ECHOREPLY) {
			f->sport = e->id;
			f->dport = e->id;
		}
		f->l4 = l4;
	}
	return 0;
}

#endif /* CL_PARSE_H */
