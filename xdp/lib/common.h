/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared includes, wire constants and tiny helpers for every Centaurus XDP program.
 *
 * Wire facts (not code) follow Mizar's transit XDP: Geneve over UDP 6081, VNI = VPC id,
 * option class 0x0111, "return to sender" (RTS) option type 0x48 whose data is
 * flags(1) | host ipv4(4) | host mac(6) | pad(1).
 */
#ifndef CL_COMMON_H
#define CL_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define cl_likely(x) __builtin_expect(!!(x), 1)
#define cl_unlikely(x) __builtin_expect(!!(x), 0)

#define CL_GENEVE_PORT 6081
#define CL_ETH_P_TEB 0x6558 /* Geneve protocol type: transparent Ethernet bridging */
#define CL_OPT_CLASS 0x0111 /* Mizar's Geneve option class (network byte order on the wire) */
#define CL_OPT_TYPE_RTS 0x48 /* direct-path ("return to sender") option */
#define CL_OPT_CRITICAL 0x80 /* option type bit: receiver must drop if it does not understand */
#define CL_GENEVE_MAX_OPTS 4 /* options walked per packet; more is a malformed packet here */

#define CL_ICMP_ECHOREPLY 0
#define CL_ICMP_ECHO 8

#define CL_OUTER_TTL 64
/* Source ports for the outer UDP header carry the flow hash (RFC 8926 entropy). */
#define CL_SPORT_BASE 0xC000
#define CL_SPORT_MASK 0x3FFF

/* Virtual MAC the ARP responder answers with for every peer and gateway of an endpoint, and
 * the source MAC of every frame delivered to an endpoint: endpoints see one L3 gateway. */
#define CL_GW_MAC_0 0x02
#define CL_GW_MAC_1 0x43
#define CL_GW_MAC_2 0x4c
#define CL_GW_MAC_3 0x00
#define CL_GW_MAC_4 0x00
#define CL_GW_MAC_5 0x01

/* v & mask, with the mask kept: clang drops a mask it can prove redundant (x % n < n), but
 * the verifier cannot prove it and rejects the array index without it. */
static __always_inline __u32 cl_bound(__u32 v, __u32 mask)
{
	asm volatile("" : "+r"(v));
	return v & mask;
}

/* (three 16-bit stores; MACs in frames and map values here are 2-byte aligned) */
static __always_inline void cl_set_gw_mac(__u8 *mac)
{
	__u16 *m = (__u16 *)mac;

	m[0] = CL_GW_MAC_0 | (CL_GW_MAC_1 << 8);
	m[1] = CL_GW_MAC_2 | (CL_GW_MAC_3 << 8);
	m[2] = CL_GW_MAC_4 | (CL_GW_MAC_5 << 8);
}

/* The EtherType as one 16-bit load (struct ethhdr is packed: clang would load it bytewise). */
static __always_inline __be16 cl_eth_proto(const struct ethhdr *eth)
{
	return *(const __be16 *)((const __u8 *)eth + 12);
}

static __always_inline void cl_copy_mac(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, ETH_ALEN);
}

static __always_inline int cl_mac_is_zero(const __u8 *m)
{
	return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

#endif /* CL_COMMON_H */
