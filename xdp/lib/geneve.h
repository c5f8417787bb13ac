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
#define CL_RTS_F_VIA (1U << 3)     /* sent to a bouncer/divider: the sender has no direct path */
#define CL_RTS_F_STALE (1U << 4)   /* reflected: the inner destination is not where you sent it */

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
	/* one (unaligned) 32-bit load: a memcpy from a byte array would be four byte loads, and
	 * the option sits in the frame, where unaligned loads are fine on the JITs we run on */
	return *(const __be32 *)o->host_ip;
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

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cl_encap composes header words for a little-endian BPF target (bpfel)"
#endif

/* Bytes b0..b3 in memory order as one little-endian 32-bit store. */
#define CL_LE32(b0, b1, b2, b3) \
	((__u32)(__u8)(b0) | ((__u32)(__u8)(b1) << 8) | ((__u32)(__u8)(b2) << 16) | ((__u32)(__u8)(b3) << 24))

/* Compose the 66-byte outer header of a flow into @d (8-byte aligned, >= 68 bytes) with total
 * length, UDP length and IPv4 checksum left 0; returns the IPv4 header sum without the total
 * length. Composed in registers as 32-bit words -- this is done once per flow and cached
 * (lib/fcache.h); cl_encap_push() then copies it in front of every frame. */
static __always_inline __u32 cl_encap_template(__u32 *d, const struct cl_config *cfg,
					       const struct cl_encap_args *a)
{
	const __u16 *dm = (const __u16 *)a->dst_mac;
	const __u16 *sm = (const __u16 *)cfg->host_mac;
	const __u8 *hm = cfg->host_mac;
	__u32 saddr = cfg->host_ip, daddr = a->dst_ip;
	__u16 sport_be = bpf_htons(CL_SPORT_BASE | (a->hash & CL_SPORT_MASK));

	/* Ethernet: dst, src, type */
	d[0] = dm[0] | ((__u32)dm[1] << 16);
	d[1] = dm[2] | ((__u32)sm[0] << 16);
	d[2] = sm[1] | ((__u32)sm[2] << 16);
	/* type 0x0800 | IPv4 version 4, ihl 5 | tos 0 */
	d[3] = CL_LE32(0x08, 0x00, 0x45, 0x00);
	/* total length (per frame) | id 0 */
	d[4] = 0;
	/* fragment 0 | ttl | protocol UDP */
	d[5] = CL_LE32(0, 0, CL_OUTER_TTL, IPPROTO_UDP);
	/* checksum (per frame) | saddr[0..1] */
	d[6] = saddr << 16;
	/* saddr[2..3] | daddr[0..1] */
	d[7] = (saddr >> 16) | (daddr << 16);
	/* daddr[2..3] | UDP source port (the flow hash) */
	d[8] = (daddr >> 16) | ((__u32)sport_be << 16);
	/* UDP destination port 6081 | length (per frame) */
	d[9] = bpf_htons(CL_GENEVE_PORT);
	/* UDP checksum 0 (RFC 8926 3.3) | Geneve ver 0 + optlen 4 words | flags 0 */
	d[10] = CL_LE32(0, 0, sizeof(struct cl_rts_opt) / 4, 0);
	/* Geneve protocol 0x6558 | VNI[0..1] */
	d[11] = CL_LE32(CL_ETH_P_TEB >> 8, CL_ETH_P_TEB, a->vni >> 16, a->vni >> 8);
	/* VNI[2] | reserved | option class 0x0111 */
	d[12] = CL_LE32(a->vni, 0, CL_OPT_CLASS >> 8, CL_OPT_CLASS);
	/* option type RTS | length 3 words | RTS flags | host ip[0] */
	d[13] = CL_LE32(CL_OPT_TYPE_RTS, CL_RTS_LEN_WORDS, a->rts_flags, saddr);
	/* host ip[1..3] | host mac[0] */
	d[14] = (saddr >> 8) | ((__u32)hm[0] << 24);
	/* host mac[1..4] */
	d[15] = CL_LE32(hm[1], hm[2], hm[3], hm[4]);
	/* host mac[5] | pad */
	d[16] = hm[5];
	/* IPv4 header words as they sit in memory, total length and checksum excluded */
	return 0x0045 + 0x1100 + CL_OUTER_TTL + (saddr & 0xffff) + (saddr >> 16) + (daddr & 0xffff) +
	       (daddr >> 16);
}

/* Push a flow's outer header (from cl_encap_template) in front of the frame and fill in the
 * lengths and the checksum. Returns 0 or a drop reason. */
static __always_inline int cl_encap_push(struct xdp_md *ctx, const __u8 *hdr, __u32 csum_base)
{
	const __u64 *t = (const __u64 *)hdr;
	void *data, *data_end;
	__u32 ip_len;
	__u16 tot_be;
	__u64 *d;

	if (bpf_xdp_adjust_head(ctx, -(int)CL_ENCAP_LEN))
		return CL_CNT_DROP_ADJUST;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + CL_ENCAP_LEN > data_end)
		return CL_CNT_DROP_ADJUST;
	ip_len = (__u32)(data_end - data) - ETH_HLEN;
	tot_be = bpf_htons(ip_len);
	d = data;
	d[0] = t[0];
	d[1] = t[1];
	d[2] = t[2] | tot_be;                                    /* bytes 16-17: total length */
	d[3] = t[3] | cl_csum_fold(csum_base + tot_be);            /* bytes 24-25: checksum */
	d[4] = t[4] | ((__u64)bpf_htons(ip_len - sizeof(struct iphdr)) << 48); /* 38-39: UDP len */
	d[5] = t[5];
	d[6] = t[6];
	d[7] = t[7];
	*(__u16 *)(d + 8) = *(const __u16 *)(t + 8);
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
