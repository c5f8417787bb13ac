/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding an encapsulated frame on to another droplet: the bouncer (network scope:
 * endpoint -> host), the divider (VPC scope: network -> bouncer) and the re-route of a frame
 * that reached a droplet which no longer hosts its endpoint all use this one rewrite:
 * outer source = us, outer destination = next droplet, TTL - 1, checksums fixed, MACs set. */
#ifndef CL_BOUNCER_H
#define CL_BOUNCER_H

#include "maps.h"
#include "csum.h"
#include "geneve.h"
#include "neigh.h"

/* Set an RTS flag in a frame in flight (BOUNCED: the receiver learns the sender and tells it
 * back; STALE: a reflection), keeping a non-zero UDP checksum right. */
static __always_inline void cl_rts_set_flag(struct cl_rts_opt *rts, struct udphdr *udp, __u8 flag)
{
	__u16 *word = (__u16 *)&rts->flags; /* flags + host_ip[0]: 2-byte aligned in the UDP payload */
	__u16 old = *word;

	rts->flags |= flag;
	if (udp->check == 0)
		return; /* no UDP checksum in use */
	cl_csum_replace2(&udp->check, old, *word);
	if (udp->check == 0)
		udp->check = 0xffff;
}

/* Send the frame on to droplet @target via next hop (@mac, @port); @port 0 = XDP_TX. The
 * frame counts as @event in the decision-cache slot's @packets, or in cl_counters (NULL).
 * The new IPv4 checksum is summed from registers: the header's first three words are read
 * once, before any store (TTL, addresses and checksum are then written). Summing it back
 * from the header after the stores made 32-bit loads overlap the 8- and 16-bit stores just
 * issued, which the CPU cannot forward (a stall of the order of 10 ns per frame here). */
static __always_inline int cl_forward(struct xdp_md *ctx, const struct cl_config *cfg,
				      struct ethhdr *eth, struct iphdr *ip, struct udphdr *udp,
				      __be32 target, const __u8 *mac, __u32 port, __u32 event, __u32 *packets)
{
	__u32 *w = (__u32 *)ip;
	__u32 w0 = w[0], w1 = w[1], w2 = w[2]; /* w2: ttl | protocol | checksum (little-endian) */
	__be32 old_src = ip->saddr, old_dst = ip->daddr, host_ip = cfg->host_ip;
	__u64 sum;

	if ((w2 & 0xff) <= 1)
		return cl_drop(CL_CNT_DROP_TTL);
	w2 = (w2 & 0xffff) - 1; /* TTL - 1 (>= 1: no borrow), checksum 0 */
	sum = (__u64)w0 + w1 + w2 + host_ip + target;
	sum = (sum & 0xffff) + (sum >> 16); /* < 2^20: the 16-bit folds of cl_csum_fold stay exact */
	w[2] = w2 | ((__u32)cl_csum_fold((__u32)sum) << 16);
	ip->saddr = host_ip;
	ip->daddr = target;
	cl_udp_csum_replace4(&udp->check, old_src, host_ip);
	cl_udp_csum_replace4(&udp->check, old_dst, target);

	cl_mac_copy16(eth->h_dest, mac);
	cl_mac_copy16(eth->h_source, cfg->host_mac);
	if (packets)
		cl_fc_count(packets, event);
	else
		cl_count(event);
	return cl_xmit(ctx, port);
}

#endif /* CL_BOUNCER_H */
