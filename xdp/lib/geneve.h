/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Geneve (RFC 8926) header, the direct-path (RTS) option, encapsulation and option parsing.
 *
 * Every frame an agent encapsulates carries exactly one option, 16 bytes:
 *   class 0x0111 | type 0x48 | len 3 | flags | host ipv4 | host mac | pad
 * so the outer header is 14 + 20 + 8 + 8 + 16 = 66 bytes (CL_ENCAP_LEN): substrate MTU must
 * be at least inner MTU + 66 (1566 for 1500-byte endpoints).
 */
#ifndef CL_GENEVE_H
#define CL_GENEVE_H

#include "common.h"
#include "counters.h"
#include "csum.h"

struct cl_genevehdr {
	__u8 ver_optlen; /* version (2 bits, = 0) | option length in 4-byte words (6 bits) */
	__u8 flags;      /* O (0x80), C (0x40), reserved */
	__be16 proto;    /* CL_ETH_P_TEB */
	__u8 vni[3];
	__u8 rsvd;
};

struct cl_gnv_opt {
	__be16 opt_class;
	__u8 type;
	__u8 len;        /* low 5 bits: data length in 4-byte words */
};

/* RTS flags. Bit 0 is Mizar's match_flow (unused here, always 0). */
#define CL_RTS_F_BOUNCED (1U << 1) /* a bouncer forwarded it: the sender has no direct path */
#define CL_RTS_F_LEARN (1U << 2)   /* sent direct after a bounce: receiver, learn the sender */

struct cl_rts_opt {
	struct cl_gnv_opt hdr;
	__u8 flags;
	__u8 host_ip[4]; /* the sending endpoint's droplet (substrate address) */
	__u8 host_mac[6];
	__u8 pad;
};

#define CL_RTS_LEN_WORDS ((sizeof(struct cl_rts_opt) - sizeof(struct cl_gnv_opt)) / 4)

#define CL_OFF_IP ETH_HLEN
#define CL_OFF_UDP (CL_OFF_IP + 20)
#define CL_OFF_GNV (CL_OFF_UDP + 8)
#define CL_OFF_OPTS (CL_OFF_GNV + 8)
#define CL_ENCAP_BASE_LEN CL_OFF_OPTS /* 50: outer headers without options */
#define CL_ENCAP_LEN (CL_OFF_OPTS + 16) /* 66: what an agent adds */

_Static_assert(sizeof(struct cl_rts_opt) == 16, "RTS option is 16 bytes");
_Static_assert(sizeof(struct cl_genevehdr) == 8, "Geneve header is 8 bytes");

static __always_inline __u32 cl_geneve_vni(const struct cl_genevehdr *g)
{
	return ((__u32)g->vni[0] << 16) | ((__u32)g->vni[1] << 8) | g->vni[2];
}

static __always_inline __be32 cl_rts_host(const struct cl_rts_opt *o)
{
	__be32 ip;

	__builtin_memcpy(&ip, o->host_ip, 4);
	return ip;
}

/* Copy a MAC with 16-bit accesses (both sides are at least 2-byte aligned here). */
static __always_inline void cl_mac_copy16(void *dst, const void *src)
{
	__u16 *d = dst;
	const __u16 *s = src;

	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
}

struct cl_encap_args {
	__be32 dst_ip;
	const __u8 *dst_mac;
	__u32 vni;
	__u32 hash;
	__u8 rts_flags;
};

/* Push outer Ethernet/IPv4/UDP/Geneve+RTS in front of the frame. Returns 0 or a drop reason. */
static __always_inline int cl_encap(struct xdp_md *ctx, const struct cl_config *cfg,
				    const struct cl_encap_args *a)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	struct cl_genevehdr *g;
	struct cl_rts_opt *rts;
	__u32 inner_len;

	if (bpf_xdp_adjust_head(ctx, -(int)CL_ENCAP_LEN))
		return CL_CNT_DROP_ADJUST;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + CL_ENCAP_LEN > data_end)
		return CL_CNT_DROP_ADJUST;
	inner_len = (__u32)(data_end - data) - CL_ENCAP_LEN;

	eth = data;
	cl_mac_copy16(eth->h_dest, a->dst_mac);
	cl_mac_copy16(eth->h_source, cfg->host_mac);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip = data + CL_OFF_IP;
	*(__u16 *)ip = bpf_htons(0x4500); /* version 4, ihl 5, tos 0 */
	ip->tot_len = bpf_htons(CL_ENCAP_LEN - ETH_HLEN + inner_len);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = CL_OUTER_TTL;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = cfg->host_ip;
	ip->daddr = a->dst_ip;
	ip->check = cl_ipv4_csum(ip);

	udp = data + CL_OFF_UDP;
	udp->source = bpf_htons(CL_SPORT_BASE | (a->hash & CL_SPORT_MASK));
	udp->dest = bpf_htons(CL_GENEVE_PORT);
	udp->len = bpf_htons(CL_ENCAP_LEN - CL_OFF_UDP + inner_len);
	udp->check = 0; /* allowed for Geneve over IPv4 (RFC 8926 3.3); receivers accept both */

	g = data + CL_OFF_GNV;
	g->ver_optlen = sizeof(struct cl_rts_opt) / 4;
	g->flags = 0;
	g->proto = bpf_htons(CL_ETH_P_TEB);
	g->vni[0] = (a->vni >> 16) & 0xff;
	g->vni[1] = (a->vni >> 8) & 0xff;
	g->vni[2] = a->vni & 0xff;
	g->rsvd = 0;

	rts = data + CL_OFF_OPTS;
	rts->hdr.opt_class = bpf_htons(CL_OPT_CLASS);
	rts->hdr.type = CL_OPT_TYPE_RTS;
	rts->hdr.len = CL_RTS_LEN_WORDS;
	rts->flags = a->rts_flags;
	__builtin_memcpy(rts->host_ip, &cfg->host_ip, 4);
	__builtin_memcpy(rts->host_mac, cfg->host_mac, 6);
	rts->pad = 0;
	return 0;
}

/* Walk the options of @g (optlen bytes, already checked to fit in the UDP payload).
 * Returns 0 and sets *rts (or leaves it NULL), or a drop reason. */
static __always_inline int cl_geneve_options(struct cl_genevehdr *g, void *data_end, __u32 optlen,
					     struct cl_rts_opt **rts)
{
	void *opts = (void *)(g + 1);
	__u32 off = 0;

	/* bounded loop (verifier >= 5.3); clang cannot unroll it because of the early returns */
	for (int i = 0; i < CL_GENEVE_MAX_OPTS; i++) {
		struct cl_gnv_opt *o;
		__u32 olen;

		if (off >= optlen)
			break;
		o = opts + (off & 0xff);
		if ((void *)(o + 1) > data_end)
			return CL_CNT_DROP_GENEVE_OPT_LEN;
		olen = sizeof(*o) + (o->len & 0x1f) * 4;
		if (off + olen > optlen)
			return CL_CNT_DROP_GENEVE_OPT_LEN;
		if (o->opt_class == bpf_htons(CL_OPT_CLASS) && o->type == CL_OPT_TYPE_RTS) {
			if (olen != sizeof(struct cl_rts_opt))
				return CL_CNT_DROP_GENEVE_OPT_LEN;
			if ((void *)o + sizeof(struct cl_rts_opt) > data_end)
				return CL_CNT_DROP_GENEVE_OPT_LEN;
			*rts = (struct cl_rts_opt *)o;
		} else if (o->type & CL_OPT_CRITICAL) {
			return CL_CNT_DROP_GENEVE_CRITICAL;
		}
		off += olen;
	}
	if (off != optlen)
		return CL_CNT_DROP_GENEVE_OPT_LEN; /* more options than we walk */
	return 0;
}

#endif /* CL_GENEVE_H */
