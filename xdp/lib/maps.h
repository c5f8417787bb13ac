/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map of the overlay, in one place. Layouts are mirrored by ctypes structures in
 * centaurus/bpf/maps.py; tests/xdp/test_layout.py compares both through the object's BTF, so
 * change the two together. No implicit padding: every hole is an explicit _pad field.
 *
 * All maps are pinned by name (LIBBPF_PIN_BY_NAME) under the pin root the loader gives
 * (centaurus.BPFFS_ROOT/<droplet>), so transit.o and agent.o of one droplet share them and a
 * restarted transitd adopts them. Sizes and limits: xdp/README.md.
 */
#ifndef CL_MAPS_H
#define CL_MAPS_H

#include "common.h"
#include "counters.h"

#define CL_MAX_VPCS 1024
#define CL_MAX_NETWORKS 4096
#define CL_MAX_ENDPOINTS 16384
#define CL_IFACE_SLOTS 16384 /* cl_ifaces is an array indexed by ifindex below this */
#define CL_MAX_IFACES_X 4096 /* larger ifindexes: cl_ifaces_x (hash) */
#define CL_MAX_SCALED 1024
#define CL_MAX_HOSTCACHE 16384
#define CL_MAX_LB_FLOWS 16384
#define CL_MAX_NEIGHS 1024
#define CL_MAX_GONE 4096
#define CL_MAX_PORTS 4096
#define CL_FCACHE_BITS 10
#define CL_FCACHE_SLOTS (1 << CL_FCACHE_BITS) /* per CPU, per cache */

#define CL_MAX_BOUNCERS 16 /* per network; power of two (index masking) */
#define CL_MAX_DIVIDERS 16 /* per VPC */
#define CL_MAX_BACKENDS 32 /* per scaled endpoint */

#define CL_HOSTCACHE_TTL_DEFAULT_NS (30ULL * 1000000000ULL)
#define CL_HOSTCACHE_NOTIFY 3 /* replies that carry LEARN after a bounced packet arrived */

/* ---- droplet configuration: cl_config[0] -------------------------------------------- */
#define CL_CFG_F_LB (1U << 0) /* scaled endpoints programmed here: check reverse NAT */

struct cl_config {
	__be32 host_ip;          /* this droplet's substrate address */
	__u32 substrate_ifindex; /* default egress for encapsulated frames */
	__u8 host_mac[6];        /* MAC of the substrate interface */
	__u8 nexthop_mac[6];     /* substrate next hop for unknown neighbours (zero: none) */
	__u32 flags;             /* CL_CFG_F_* */
	__u32 hostcache_gen;     /* host cache entries of another generation are ignored */
	__u32 hz;                /* kernel jiffies per second (0: assume 250) */
	__u64 hostcache_ttl_ns;  /* lifetime of a learned direct path (0: default 30 s) */
	__u32 epoch;             /* bumped by userspace on every change: flushes the fast caches */
	__u32 kepoch;            /* bumped (atomically) by the dataplane when it writes the host
				  * cache; a concurrent userspace write may lose a bump, harmless
				  * since that write bumps epoch (the pair never repeats) */
};

/* ---- VPCs: cl_vpcs[vni] --------------------------------------------------------------- */
#define CL_VPC_F_DIVIDER (1U << 0) /* this droplet is a divider of the VPC */

struct cl_vpc {
	__be32 cidr_ip;
	__be32 cidr_mask;
	__u32 flags;     /* CL_VPC_F_* */
	__u32 ndividers;
	__be32 dividers[CL_MAX_DIVIDERS]; /* substrate addresses of the VPC's dividers */
};

/* ---- networks: LPM on (vni, prefix) --------------------------------------------------- */
#define CL_NET_F_BOUNCER (1U << 0) /* this droplet is a bouncer of the network */

struct cl_net_key {
	__u32 prefixlen; /* 32 (the vni) + the CIDR's prefix length */
	__u32 vni;
	__be32 ip;
};

struct cl_net {
	__be32 cidr_ip;
	__be32 cidr_mask;
	__u32 net_id;    /* management-plane id, for stats and debugging */
	__u32 flags;     /* CL_NET_F_* */
	__u32 nbouncers;
	__be32 bouncers[CL_MAX_BOUNCERS]; /* substrate addresses of the network's bouncers */
};

/* ---- endpoints: cl_endpoints[(vni, ip)] ------------------------------------------------ */
#define CL_EP_SIMPLE 1 /* Mizar's TRAN_SIMPLE_EP */
#define CL_EP_SCALED 2 /* virtual IP over backends (cl_scaled) */

struct cl_ep_key {
	__u32 vni;
	__be32 ip;
};

struct cl_ep {
	__u8 kind;       /* CL_EP_* */
	__u8 _pad0;
	__u16 flags;
	__be32 host_ip;  /* droplet hosting it */
	__u32 ifindex;   /* droplet-side veth when hosted here, else 0 */
	__u32 net_id;
	__be32 vpc_ip;   /* the VPC's CIDR: inner sources outside it are spoofed */
	__be32 vpc_mask;
	__u8 mac[6];     /* the endpoint's own MAC (destination MAC on delivery) */
	__u8 _pad1[2];
};

/* ---- local endpoint interfaces: cl_ifaces[ifindex of the droplet-side veth] -----------
 * An array (an inlined lookup, no hashing: the agent does it for every frame); a slot with
 * vni 0 is empty. Ifindexes >= CL_IFACE_SLOTS (netns with much veth churn) use cl_ifaces_x. */
struct cl_iface {
	__u32 vni;
	__be32 ip;       /* the only source address this endpoint may use */
	__be32 net_ip;   /* its network's CIDR */
	__be32 net_mask;
	__u32 net_id;
	__u8 mac[6];
	__u8 _pad[2];
};

/* ---- scaled endpoints: cl_scaled[(vni, virtual ip)] ---------------------------------- */
struct cl_scaled {
	__u32 nbackends;
	__be32 backends[CL_MAX_BACKENDS]; /* backend endpoint IPs (same VNI) */
};

/* ---- direct-path host cache: cl_hostcache[(vni, ip)] (LRU) --------------------------- */
struct cl_hostcache {
	__be32 host_ip;  /* droplet hosting the endpoint */
	__u32 ifindex;   /* egress port towards it (0: substrate_ifindex) */
	__u8 mac[6];     /* next-hop MAC towards host_ip */
	__u8 notify;     /* replies still to send with the LEARN flag */
	__u8 _pad0;
	__u32 gen;       /* cl_config.hostcache_gen when learned */
	__u32 _pad1;
	__u64 expires_j; /* in jiffies (bpf_jiffies64: free, unlike a clock read per packet) */
};

/* ---- scaled-endpoint reverse translation: cl_lb_rnat[flow] (LRU) ---------------------- */
struct cl_lb_key {
	__u32 vni;
	__be32 client_ip;
	__be32 backend_ip;
	__be16 client_port;  /* ICMP echo: the echo id on both sides */
	__be16 backend_port;
	__u8 proto;
	__u8 _pad[3];
};

struct cl_lb_val {
	__be32 vip;
	__u32 _pad;
};

/* ---- tombstones: cl_gone[(vni, ip)] = jiffies until which a frame that still comes here
 * direct for this former local endpoint is reflected to its sender (STALE) -------------- */
struct cl_gone {
	__u64 until_j;
};

/* ---- substrate neighbours: cl_neigh[substrate ip] ------------------------------------- */
struct cl_neigh {
	__u8 mac[6];
	__u8 _pad[2];
	__u32 ifindex;  /* egress port (0: substrate_ifindex) */
};

/* ---- per-CPU decision caches (lib/fcache.h) --------------------------------------------
 * Each slot remembers one forwarding decision together with every input it depends on. */
struct cl_fc_agent {     /* agent: (ingress interface, 5-tuple) -> next hop */
	__be32 saddr;     /* key: the endpoint's source address (= its cl_ifaces ip) */
	__be32 daddr;     /* key: destination (after a scaled-endpoint DNAT) */
	__u32 ports;      /* key: source | destination port << 16 as in the frame (ICMP echo:
			   * the id twice; 0 for fragments and other protocols) */
	__u32 ifindex;    /* key: ingress interface of the agent; 0: empty slot */
	__u8 proto;       /* key: IP protocol */
	__u8 flags;       /* key: CL_FC_F_* */
	__u8 event;       /* CL_CNT_DIRECT / _VIA_BOUNCER / _VIA_DIVIDER / _LOCAL */
	__u8 _pad0;
	__be32 dst_ip;    /* droplet to encapsulate to */
	__u32 epoch;      /* cl_config.epoch when filled */
	__u32 kepoch;     /* cl_config.kepoch when filled */
	__u32 port;       /* egress ifindex (LOCAL: the endpoint's veth) */
	__u32 csum_base;  /* outer IPv4 header sum without the total length */
	__u8 mac[6];      /* next-hop MAC (LOCAL: the endpoint's MAC) */
	__u8 _pad1[2];
	__u64 expires_j;  /* learned direct paths expire; others: ~0 */
	__u8 hdr[68];     /* the 66-byte outer header for this flow, lengths and checksum 0 */
	__u32 packets;    /* frames sent under this decision's event, not yet in cl_counters */
};
/* cl_fc_agent.flags: filled while scaled endpoints were enabled (CL_CFG_F_LB): the fast path,
 * which does not translate, never uses such a slot */
#define CL_FC_F_LB 1

struct cl_fc_transit {   /* transit: (vni, destination, outer source port) -> action */
	__u32 vni;        /* key (0: empty slot) */
	__be32 daddr;     /* key: inner destination */
	__be16 sport;     /* key: outer UDP source port (the sender's flow hash) */
	__u16 _pad0;      /* 0: (sport, epoch) is compared as one 64-bit word */
	__u32 epoch;
	__be32 vpc_ip;    /* inner sources must be in the VPC */
	__be32 vpc_mask;
	__be32 target;    /* next droplet (forwarding) */
	__u32 port;       /* egress ifindex (decap: the endpoint's veth; 0: XDP_TX) */
	__u8 mac[6];      /* next-hop MAC, or the endpoint's MAC */
	__u8 event;       /* CL_CNT_RX_DECAP / _BOUNCED / _DIVIDED / _REROUTED */
	__u8 _pad1;
	__u32 packets;    /* frames sent under this decision's event, not yet in cl_counters */
	__u32 _pad2;
} __attribute__((aligned(8))); /* the key is compared as 64-bit words: one load each */

struct cl_fc_learn {     /* transit: (vni, inner source) already learned, nothing to write */
	__u32 vni;
	__be32 ip;
	__u32 epoch;      /* epoch and kepoch: one 64-bit word, like cl_config's */
	__u32 kepoch;
	__be32 host;
	__u8 armed;       /* the entry's notify countdown is full */
	__u8 _pad[3];
	__u64 fresh_until_j; /* after this the entry is refreshed (half its lifetime) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cl_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CL_MAX_VPCS);
	__type(key, __u32);
	__type(value, struct cl_vpc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_vpcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CL_MAX_NETWORKS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cl_net_key);
	__type(value, struct cl_net);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_networks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CL_MAX_ENDPOINTS);
	__type(key, struct cl_ep_key);
	__type(value, struct cl_ep);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CL_IFACE_SLOTS);
	__type(key, __u32);
	__type(value, struct cl_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CL_MAX_IFACES_X);
	__type(key, __u32);
	__type(value, struct cl_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_ifaces_x SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CL_MAX_SCALED);
	__type(key, struct cl_ep_key);
	__type(value, struct cl_scaled);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_scaled SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CL_MAX_HOSTCACHE);
	__type(key, struct cl_ep_key);
	__type(value, struct cl_hostcache);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_hostcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CL_MAX_LB_FLOWS);
	__type(key, struct cl_lb_key);
	__type(value, struct cl_lb_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_lb_rnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CL_MAX_GONE);
	__type(key, struct cl_ep_key);
	__type(value, struct cl_gone);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_gone SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CL_MAX_NEIGHS);
	__type(key, __be32);
	__type(value, struct cl_neigh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_neigh SEC(".maps");

/* Redirect targets, keyed by ifindex (value: the same ifindex). Ifindexes are resolved in
 * the network namespace of the process that updates the map: update it inside the droplet.
 * Pinned by the loader, not by libbpf: the kernel adds BPF_F_RDONLY_PROG to devmaps, which
 * libbpf 1.1's pin-reuse check then reports as a mismatch (the loader reuses the fd instead). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, CL_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} cl_tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CL_FCACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct cl_fc_agent);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_fc_agent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CL_FCACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct cl_fc_transit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_fc_transit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CL_FCACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct cl_fc_learn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_fc_learn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CL_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_counters SEC(".maps");

static __always_inline void cl_count(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&cl_counters, &reason);

	if (v)
		*v += 1;
}

static __always_inline void cl_count_n(__u32 reason, __u32 n)
{
	__u64 *v = bpf_map_lookup_elem(&cl_counters, &reason);

	if (v)
		*v += n;
}

/* Frames sent under a cached decision are counted in its decision-cache slot (lib/fcache.h),
 * on the line the hit has just read, instead of by a cl_counters lookup per frame. A slot's
 * count moves to cl_counters[slot event] before the slot is rewritten, and whenever it reaches
 * CL_FC_FLUSH; userspace (Overlay.stats) adds what the slots still hold. */
#define CL_FC_FLUSH (1U << 30)

static __always_inline void cl_fc_count(__u32 *packets, __u32 event)
{
	__u32 n = *packets + 1;

	if (n >= CL_FC_FLUSH) {
		cl_count_n(event, n);
		n = 0;
	}
	*packets = n;
}

static __always_inline void cl_fc_flush(__u32 *packets, __u32 event)
{
	if (*packets) {
		cl_count_n(event, *packets);
		*packets = 0;
	}
}

static __always_inline int cl_drop(__u32 reason)
{
	cl_count(reason);
	return XDP_DROP;
}

static __always_inline struct cl_iface *cl_lookup_iface(__u32 ifindex)
{
	struct cl_iface *i;

	if (ifindex >= CL_IFACE_SLOTS)
		return bpf_map_lookup_elem(&cl_ifaces_x, &ifindex);
	i = bpf_map_lookup_elem(&cl_ifaces, &ifindex);
	return (i && i->vni) ? i : NULL;
}

static __always_inline struct cl_config *cl_get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cl_config, &zero);
}

#endif /* CL_MAPS_H */
