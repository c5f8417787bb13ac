/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksum helpers: full IPv4 header sums and RFC 1624 incremental updates. */
#ifndef CL_CSUM_H
#define CL_CSUM_H

#include "common.h"

static __always_inline __u16 cl_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Sum of a 20-byte IPv4 header (no options) with the checksum field taken as is, folded to
 * 20 bits (cl_csum_fold finishes it). Five 32-bit loads summed in 64 bits and folded: the
 * ones' complement sum does not depend on the word size (RFC 1071), and this is half the
 * instructions of ten 16-bit loads. */
static __always_inline __u32 cl_ipv4_sum(const struct iphdr *ip)
{
	const __u32 *w = (const __u32 *)ip;
	__u64 sum = (__u64)w[0] + w[1] + w[2] + w[3] + w[4];

	return (__u32)((sum & 0xffff) + (sum >> 16)); /* < 2^20: 16-bit folds stay exact (2^16 = 1 mod 0xffff) */
}

/* Checksum to store in an IPv4 header (no options). */
static __always_inline __u16 cl_ipv4_csum(struct iphdr *ip)
{
	ip->check = 0;
	return cl_csum_fold(cl_ipv4_sum(ip));
}

/* True when a received 20-byte IPv4 header's checksum is valid. */
static __always_inline int cl_ipv4_csum_ok(const struct iphdr *ip)
{
	return cl_csum_fold(cl_ipv4_sum(ip)) == 0;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for a 32-bit field change. */
static __always_inline void cl_csum_replace4(__u16 *check, __be32 from, __be32 to)
{
	__u32 sum = (__u16)~*check;

	sum += (__u16)~(from & 0xffff);
	sum += (__u16)~(from >> 16);
	sum += to & 0xffff;
	sum += to >> 16;
	*check = cl_csum_fold(sum);
}

/* Same for a 16-bit field (values as read from the packet). */
static __always_inline void cl_csum_replace2(__u16 *check, __u16 from, __u16 to)
{
	__u32 sum = (__u16)~*check;

	sum += (__u16)~from;
	sum += to;
	*check = cl_csum_fold(sum);
}

/* UDP over IPv4: a zero checksum means "none" and must stay zero (0 is sent as 0xffff). */
static __always_inline void cl_udp_csum_replace4(__u16 *check, __be32 from, __be32 to)
{
	if (*check == 0)
		return;
	cl_csum_replace4(check, from, to);
	if (*check == 0)
		*check = 0xffff;
}

#endif /* CL_CSUM_H */
