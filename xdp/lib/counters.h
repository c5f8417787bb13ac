/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU event and drop counters, indexed by one enum.
 *
 * Userspace (centaurus.bpf.maps.COUNTER_NAMES) mirrors this enum by name: the suffix after
 * CL_CNT_ lower-cased is the stats key (`rx_decap`, `bounced`, `drop_unknown_vni`, ...).
 * Append new reasons just before CL_CNT_MAX; never renumber (pinned maps outlive builds).
 */
#ifndef CL_COUNTERS_H
#define CL_COUNTERS_H

enum cl_counter {
	/* transit (substrate ingress) */
	CL_CNT_PASS = 0,        /* not overlay traffic: handed to the droplet's own stack */
	CL_CNT_RX_DECAP,        /* decapsulated and delivered to a local endpoint */
	CL_CNT_BOUNCED,         /* bouncer: sent on to the endpoint's host */
	CL_CNT_DIVIDED,         /* divider: sent on to a bouncer of the destination network */
	CL_CNT_REROUTED,        /* not ours any more (stale direct path): sent to a bouncer */
	CL_CNT_LEARNED,         /* host cache entry written from an RTS option */
	/* agent (endpoint egress) */
	CL_CNT_TX_ENCAP,        /* not counted by BPF: userspace reports direct + via_bouncer + via_divider */
	CL_CNT_DIRECT,          /* ... straight to the destination's host */
	CL_CNT_VIA_BOUNCER,     /* ... to a bouncer of the destination network */
	CL_CNT_VIA_DIVIDER,     /* ... to a divider of the VPC */
	CL_CNT_LOCAL,           /* destination on this droplet: redirected without encap */
	CL_CNT_ARP_REPLY,       /* ARP request answered */
	CL_CNT_LB_DNAT,         /* scaled endpoint: virtual IP translated to a backend */
	CL_CNT_LB_RNAT,         /* scaled endpoint: reply translated back to the virtual IP */
	/* drops (the `drop_` prefix is what the stats readers look for) */
	CL_CNT_DROP_TRUNC_ETH,
	CL_CNT_DROP_TRUNC_IP,
	CL_CNT_DROP_BAD_IP,     /* version, header length, total length */
	CL_CNT_DROP_BAD_CSUM,   /* outer IPv4 header checksum */
	CL_CNT_DROP_IP_FRAG,
	CL_CNT_DROP_TRUNC_UDP,
	CL_CNT_DROP_BAD_UDP,    /* UDP length disagrees with the IP length */
	CL_CNT_DROP_TRUNC_GENEVE,
	CL_CNT_DROP_BAD_GENEVE, /* version or protocol type */
	CL_CNT_DROP_GENEVE_OPT_LEN,
	CL_CNT_DROP_GENEVE_CRITICAL,
	CL_CNT_DROP_NOT_FOR_US, /* Geneve to another substrate address */
	CL_CNT_DROP_UNKNOWN_VNI,
	CL_CNT_DROP_TRUNC_INNER,
	CL_CNT_DROP_INNER_NOT_IPV4,
	CL_CNT_DROP_SPOOFED_SRC, /* inner source not in the VNI's VPC / not the endpoint's IP */
	CL_CNT_DROP_NO_ENDPOINT,
	CL_CNT_DROP_NO_NETWORK,
	CL_CNT_DROP_NO_BOUNCER,
	CL_CNT_DROP_NO_DIVIDER,
	CL_CNT_DROP_NO_NEIGH,   /* no substrate MAC for the next hop */
	CL_CNT_DROP_TTL,
	CL_CNT_DROP_NO_PORT,    /* redirect target not in the devmap */
	CL_CNT_DROP_NO_CONFIG,
	CL_CNT_DROP_NOT_ENDPOINT, /* agent on an interface that is no endpoint's */
	CL_CNT_DROP_UNSUPPORTED,  /* endpoint sent neither IPv4 nor ARP */
	CL_CNT_DROP_ARP,          /* ARP that is not a well-formed request for someone else */
	CL_CNT_DROP_NO_BACKEND,
	CL_CNT_DROP_SCALED_REMOTE, /* virtual IP reached a host that cannot translate it */
	CL_CNT_DROP_ADJUST,        /* bpf_xdp_adjust_head failed */
	CL_CNT_DROP_LOOP,          /* would send to ourselves */
	/* (appended events) */
	CL_CNT_REFLECTED,   /* sent direct for an endpoint not here: back to its sender, STALE */
	CL_CNT_INVALIDATED, /* a STALE reflection came back: that direct path is forgotten */
	CL_CNT_MAX
};

/* Anchor so the enum is in the object's BTF: the binding's drift test reads it from there. */
const volatile enum cl_counter cl_counter_max = CL_CNT_MAX;

#endif /* CL_COUNTERS_H */
