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
#define CL_MAX_IFACES 4096
#define CL_MAX_SCALED 1024
#define CL_MAX_HOSTCACHE 16384
#define CL_MAX_LB_FLOWS 16384
#define CL_MAX_NEIGHS 1024
#define CL_MAX_PORTS 4096

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
	__u32 _pad;
	__u64 hostcache_ttl_ns;  /* lifetime of a learned direct path (0: default 30 s) */
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

/* ---- local endpoint interfaces: cl_ifaces[ifindex of the droplet-side veth] ----------- */
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
	__u64 expires_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns) */
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

/* ---- substrate neighbours: cl_neigh[substrate ip] ------------------------------------- */
struct cl_neigh {
	__u8 mac[6];
	__u8 _pad[2];
	__u32 ifindex;  /* egress port (0: substrate_ifindex) */
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
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CL_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct cl_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cl_ifaces SEC(".maps");

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

static __always_inline int cl_drop(__u32 reason)
{
	cl_count(reason);
	return XDP_DROP;
}

static __always_inline struct cl_config *cl_get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cl_config, &zero);
}

#endif /* CL_MAPS_H */
