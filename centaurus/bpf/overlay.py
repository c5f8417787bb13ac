"""The overlay dataplane of one droplet: its two programs and their shared, pinned maps.

``Overlay.load(pin_dir)`` loads ``transit.o`` and ``agent.o`` with that pin root (the caller
decides it: ``pin_dir_for(lab_id, droplet)`` = ``centaurus.BPFFS_ROOT/<lab_id>/<droplet>``); the
first load pins every map there, the second (and a
restarted daemon) reuses them. Programs are pinned beside them (``prog_cl_transit``,
``prog_cl_agent``) so a restarted daemon can adopt them without reloading. The typed
``put_*``/``delete_*`` methods are the one place that knows how userspace fills each map;
they are single bpf(2) calls. What a droplet must hold (bounded fan-out, PERF-NET-3):
  - cl_config, cl_neigh (peer droplets), cl_tx_ports (its substrate port + endpoint veths);
  - cl_vpcs / cl_networks: the VPCs and networks of its endpoints, of the networks it bounces
    for, and (dividers) every network of the VPCs it divides;
  - cl_endpoints: its own endpoints (ifindex set) and every endpoint of the networks it
    bounces for; scaled endpoints (kind SCALED) + cl_scaled wherever their clients live;
  - cl_ifaces: one entry per local endpoint veth (the agent finds its endpoint by ifindex).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import centaurus
from centaurus.bpf import _libbpf as L
from centaurus.bpf import kclock, xdp
from centaurus.bpf import maps as M
from centaurus.bpf._libbpf import BpfError
from centaurus.bpf.mapio import Map
from centaurus.bpf.netns import in_netns
from centaurus.bpf.obj import BpfObject, ProgInfo, object_path, prog_info

log = logging.getLogger("centaurus.bpf.overlay")

PROGRAMS = {"cl_transit": "transit", "cl_clock": "transit", "cl_agent": "agent"}
#: maps the loader pins itself (libbpf 1.1 cannot reuse pinned devmaps: flags mismatch)
SHARED_BY_HAND = ("cl_tx_ports",)


def pin_dir_for(*parts: str, root: str | Path = centaurus.BPFFS_ROOT) -> Path:
    """``root/<part>/<part>...`` (e.g. lab id, droplet), each part a plain name."""
    for p in parts:
        if not p or "/" in p or p.startswith("."):
            raise ValueError(f"bad pin path component {p!r}")
    return Path(root).joinpath(*parts)


def _net(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr, strict=True)


class Overlay:
    def __init__(self, pin_dir: Path, prog_fds: dict[str, int], netns: str | None = None,
                 objects: Iterable[BpfObject] = ()) -> None:
        self.pin_dir = pin_dir
        self.netns = netns
        self.prog_fds = prog_fds
        self._objects = list(objects)
        self.maps: dict[str, Map] = {
            name: Map.open_pinned(pin_dir / name, kt, vt) for name, (kt, vt) in M.MAPS.items()
        }
        m = self.maps
        self.config, self.vpcs, self.networks = m["cl_config"], m["cl_vpcs"], m["cl_networks"]
        self.endpoints, self.ifaces, self.scaled = m["cl_endpoints"], m["cl_ifaces"], m["cl_scaled"]
        self.ifaces_x = m["cl_ifaces_x"]
        self.hostcache, self.lb_rnat, self.neigh = m["cl_hostcache"], m["cl_lb_rnat"], m["cl_neigh"]
        self.tx_ports, self.counters = m["cl_tx_ports"], m["cl_counters"]
        self.gone = m["cl_gone"]

    # ---- life cycle ---------------------------------------------------------------------
    @classmethod
    def load(cls, pin_dir: str | Path, *, netns: str | None = None,
             reset_incompatible: bool = True) -> Overlay:
        """Load (or re-load, reusing pinned maps) both programs with maps pinned in ``pin_dir``.
        ``netns``: the droplet's netns for ifindex-resolving calls (None: this thread's).
        Pins left by another build whose map layout differs cannot be reused; with
        ``reset_incompatible`` they are removed and the load starts fresh (the caller then
        reprograms the maps, as after a first start) instead of failing."""
        pin_dir = Path(pin_dir)
        try:
            objs = cls._load_objects(pin_dir)
        except BpfError as e:
            if not (reset_incompatible and "parameter mismatch" in str(e)):
                raise
            log.warning("overlay: pinned maps in %s do not match this build, starting fresh", pin_dir)
            remove_pins(pin_dir)
            objs = cls._load_objects(pin_dir)
        fds: dict[str, int] = {}
        for o in objs:
            for name, prog in o.programs.items():
                fds[name] = prog.fd
                pin = pin_dir / f"prog_{name}"
                pin.unlink(missing_ok=True)
                L.check(L.lib.bpf_obj_pin(prog.fd, str(pin).encode()), f"pin {name}")
        return cls(pin_dir, fds, netns, objs)

    @staticmethod
    def _load_objects(pin_dir: Path) -> list[BpfObject]:
        objs: list[BpfObject] = []
        try:
            for obj in ("transit", "agent"):
                objs.append(BpfObject(object_path(obj), pin_root=pin_dir, share_maps=SHARED_BY_HAND))
        except BaseException:
            for o in objs:
                o.close()
            raise
        return objs

    @classmethod
    def open_pinned(cls, pin_dir: str | Path, *, netns: str | None = None) -> Overlay:
        """Adopt what a previous daemon left pinned (maps and programs) without reloading."""
        pin_dir = Path(pin_dir)
        fds = {name: L.check(L.lib.bpf_obj_get(str(pin_dir / f"prog_{name}").encode()), f"get {name}")
               for name in PROGRAMS}
        return cls(pin_dir, fds, netns)

    @staticmethod
    def exists(pin_dir: str | Path) -> bool:
        return (Path(pin_dir) / "cl_config").exists() and (Path(pin_dir) / "prog_cl_agent").exists()

    def close(self) -> None:
        for mp in self.maps.values():
            mp.close()
        for o in self._objects:
            o.close()
        self._objects = []

    def destroy(self) -> None:
        """Close and remove every pin of this droplet (maps die with their last user)."""
        self.close()
        remove_pins(self.pin_dir)

    def __enter__(self) -> Overlay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prog_info(self) -> dict[str, ProgInfo]:
        return {name: prog_info(fd) for name, fd in self.prog_fds.items()}

    # ---- attach -----------------------------------------------------------------------------
    def attach_transit(self, dev: int | str, mode: str = "native") -> None:
        xdp.attach(dev, self.prog_fds["cl_transit"], netns=self.netns, mode=mode)

    def attach_agent(self, dev: int | str, mode: str = "native") -> None:
        xdp.attach(dev, self.prog_fds["cl_agent"], netns=self.netns, mode=mode)

    def detach(self, dev: int | str, mode: str = "native") -> None:
        xdp.detach(dev, netns=self.netns, mode=mode)

    # ---- droplet ----------------------------------------------------------------------------
    def set_config(self, host_ip: str, host_mac: str | bytes, substrate_ifindex: int, *,
                   nexthop_mac: str | bytes | None = None, flags: int | None = None,
                   hostcache_ttl_ns: int = 0) -> None:
        old = self.config.lookup(0)
        c = M.Config(host_ip=M.ip4(host_ip), substrate_ifindex=substrate_ifindex,
                     hostcache_ttl_ns=hostcache_ttl_ns)
        M.set_mac(c.host_mac, host_mac)
        if nexthop_mac:
            M.set_mac(c.nexthop_mac, nexthop_mac)
        c.flags = old.flags if flags is None and old is not None else (flags or 0)
        c.hostcache_gen = old.hostcache_gen if old is not None else 0
        c.epoch = ((old.epoch if old is not None else 0) + 1) & 0xFFFFFFFF
        c.hz = kclock.kernel_hz(self.prog_fds["cl_clock"])
        self.config.update(0, c)
        self.add_port(substrate_ifindex)

    def get_config(self) -> M.Config:
        c: M.Config = self.config.lookup(0)
        return c

    def _set_flags(self, set_bits: int = 0, clear_bits: int = 0) -> None:
        c = self.get_config()
        c.flags = (c.flags | set_bits) & ~clear_bits
        c.epoch = (c.epoch + 1) & 0xFFFFFFFF
        self.config.update(0, c)

    def bump_epoch(self) -> None:
        """Invalidate the dataplane's per-CPU fast caches (lib/fcache.h). Every ``put_*`` /
        ``delete_*`` here does it; call it after writing a map directly."""
        c = self.get_config()
        if c is None:
            return
        c.epoch = (c.epoch + 1) & 0xFFFFFFFF
        self.config.update(0, c)

    def flush_hostcache(self) -> int:
        """Invalidate every learned direct path at once (generation bump) and return the new
        generation; entries are also deleted so the LRU has room."""
        c = self.get_config()
        c.hostcache_gen = (c.hostcache_gen + 1) & 0xFFFFFFFF
        c.epoch = (c.epoch + 1) & 0xFFFFFFFF
        self.config.update(0, c)
        self.hostcache.clear()
        return int(c.hostcache_gen)

    def add_port(self, ifindex: int) -> None:
        """Allow redirects to ``ifindex`` (resolved in the droplet's netns)."""
        if ifindex:
            in_netns(self.netns, lambda: self.tx_ports.update(ifindex, ifindex))

    def delete_port(self, ifindex: int) -> None:
        self.tx_ports.delete(ifindex)
        self.bump_epoch()

    def put_neigh(self, ip: str, mac: str | bytes, ifindex: int = 0) -> None:
        n = M.Neigh(ifindex=ifindex)
        M.set_mac(n.mac, mac)
        self.neigh.update(M.ip4(ip), n)
        self.bump_epoch()
        if ifindex:
            self.add_port(ifindex)

    def delete_neigh(self, ip: str) -> None:
        self.neigh.delete(M.ip4(ip))
        self.bump_epoch()

    # ---- VPCs, networks -------------------------------------------------------------------
    def put_vpc(self, vni: int, cidr: str, dividers: Iterable[str] = (), *,
                divider_here: bool = False) -> None:
        ds = list(dividers)
        if len(ds) > M.MAX_DIVIDERS:
            raise ValueError(f"at most {M.MAX_DIVIDERS} dividers per VPC, got {len(ds)}")
        n = _net(cidr)
        v = M.Vpc(cidr_ip=M.ip4(n.network_address), cidr_mask=M.ip4(n.netmask),
                  flags=M.VPC_F_DIVIDER if divider_here else 0, ndividers=len(ds))
        for i, d in enumerate(ds):
            v.dividers[i] = M.ip4(d)
        self.vpcs.update(_vni(vni), v)
        self.bump_epoch()

    def delete_vpc(self, vni: int) -> None:
        self.vpcs.delete(_vni(vni))
        self.bump_epoch()

    @staticmethod
    def net_key(vni: int, cidr: str) -> M.NetKey:
        n = _net(cidr)
        return M.NetKey(prefixlen=32 + n.prefixlen, vni=_vni(vni), ip=M.ip4(n.network_address))

    def put_network(self, vni: int, cidr: str, bouncers: Iterable[str] = (), *, net_id: int = 0,
                    bouncer_here: bool = False) -> None:
        bs = list(bouncers)
        if len(bs) > M.MAX_BOUNCERS:
            raise ValueError(f"at most {M.MAX_BOUNCERS} bouncers per network, got {len(bs)}")
        n = _net(cidr)
        v = M.Net(cidr_ip=M.ip4(n.network_address), cidr_mask=M.ip4(n.netmask), net_id=net_id,
                  flags=M.NET_F_BOUNCER if bouncer_here else 0, nbouncers=len(bs))
        for i, b in enumerate(bs):
            v.bouncers[i] = M.ip4(b)
        self.networks.update(self.net_key(vni, cidr), v)
        self.bump_epoch()

    def delete_network(self, vni: int, cidr: str) -> None:
        self.networks.delete(self.net_key(vni, cidr))
        self.bump_epoch()

    # ---- endpoints --------------------------------------------------------------------------
    def put_endpoint(self, vni: int, ip: str, *, host_ip: str, mac: str | bytes = b"\0" * 6,
                     vpc_cidr: str, ifindex: int = 0, net_id: int = 0, kind: int = M.EP_SIMPLE) -> None:
        """An endpoint this droplet must know. ``ifindex``: its droplet-side veth when local.
        A local endpoint's stale direct-path entry is dropped so the local path wins."""
        vpc = _net(vpc_cidr)
        e = M.Ep(kind=kind, host_ip=M.ip4(host_ip), ifindex=ifindex, net_id=net_id,
                 vpc_ip=M.ip4(vpc.network_address), vpc_mask=M.ip4(vpc.netmask))
        M.set_mac(e.mac, mac)
        if ifindex:
            self.add_port(ifindex)
        k = M.EpKey(vni=_vni(vni), ip=M.ip4(ip))
        self.endpoints.update(k, e)
        self.hostcache.delete(k)
        self.gone.delete(k)
        self.bump_epoch()

    def delete_endpoint(self, vni: int, ip: str) -> None:
        """Forget an endpoint. If it was local, leave a tombstone for one host-cache lifetime:
        frames that still arrive on a learned direct path are reflected to their sender, whose
        dataplane then forgets that path at once (instead of after its expiry)."""
        k = M.EpKey(vni=_vni(vni), ip=M.ip4(ip))
        old = self.endpoints.lookup(k)
        if old is not None and old.ifindex:
            c = self.get_config()
            ttl = c.hostcache_ttl_ns or M.HOSTCACHE_TTL_DEFAULT_NS
            self.gone.update(k, M.Gone(until_j=self.jiffies() + kclock.ns_to_jiffies(ttl, c.hz or 250)))
        self.endpoints.delete(k)
        self.hostcache.delete(k)
        self.scaled.delete(k)
        self.bump_epoch()

    def put_iface(self, ifindex: int, *, vni: int, ip: str, mac: str | bytes, net_cidr: str,
                  net_id: int = 0) -> None:
        """Bind the agent on veth ``ifindex`` to its endpoint."""
        n = _net(net_cidr)
        i = M.Iface(vni=_vni(vni), ip=M.ip4(ip), net_ip=M.ip4(n.network_address),
                    net_mask=M.ip4(n.netmask), net_id=net_id)
        M.set_mac(i.mac, mac)
        if ifindex < M.IFACE_SLOTS:
            self.ifaces.update(ifindex, i)
        else:
            self.ifaces_x.update(ifindex, i)
        self.bump_epoch()

    def delete_iface(self, ifindex: int) -> None:
        if ifindex < M.IFACE_SLOTS:
            self.ifaces.update(ifindex, M.Iface())  # vni 0: empty slot
        else:
            self.ifaces_x.delete(ifindex)
        self.bump_epoch()

    def local_ifaces(self) -> Iterator[tuple[int, M.Iface]]:
        """Every bound endpoint veth: (ifindex, Iface), from the array and the overflow hash
        (for adoption after a restart: re-attach the agent to each)."""
        for ifindex, i in self.ifaces.items_batch():
            if i.vni:
                yield int(ifindex), i
        for ifindex, i in self.ifaces_x.items():
            yield int(ifindex), i

    def put_scaled(self, vni: int, vip: str, backends: Iterable[str], *, vpc_cidr: str,
                   host_ip: str = "0.0.0.0", net_id: int = 0) -> None:
        """A scaled endpoint: a virtual IP load-balanced over ``backends`` by flow hash."""
        bs = list(backends)
        if len(bs) > M.MAX_BACKENDS:
            raise ValueError(f"at most {M.MAX_BACKENDS} backends, got {len(bs)}")
        s = M.Scaled(nbackends=len(bs))
        for i, b in enumerate(bs):
            s.backends[i] = M.ip4(b)
        k = M.EpKey(vni=_vni(vni), ip=M.ip4(vip))
        self.scaled.update(k, s)  # (put_endpoint below bumps the epoch)
        self.put_endpoint(vni, vip, host_ip=host_ip, vpc_cidr=vpc_cidr, net_id=net_id, kind=M.EP_SCALED)
        self._set_flags(set_bits=M.CFG_F_LB)

    # ---- direct path ------------------------------------------------------------------------
    def learn(self, vni: int, ip: str, host_ip: str, mac: str | bytes, *, ifindex: int = 0,
              ttl_ns: int | None = None) -> None:
        """Pre-warm a direct path (perf setups; the dataplane learns on its own)."""
        c = self.get_config()
        ttl = ttl_ns if ttl_ns is not None else (c.hostcache_ttl_ns or M.HOSTCACHE_TTL_DEFAULT_NS)
        h = M.HostCache(host_ip=M.ip4(host_ip), ifindex=ifindex, gen=c.hostcache_gen,
                        expires_j=self.jiffies() + kclock.ns_to_jiffies(ttl, c.hz or 250))
        M.set_mac(h.mac, mac)
        self.hostcache.update(M.EpKey(vni=_vni(vni), ip=M.ip4(ip)), h)
        self.bump_epoch()

    def direct_path(self, vni: int, ip: str) -> str | None:
        """The host a usable host-cache entry points at, or None."""
        h = self.hostcache.lookup(M.EpKey(vni=_vni(vni), ip=M.ip4(ip)))
        if h is None:
            return None
        c = self.get_config()
        if h.gen != c.hostcache_gen or h.expires_j <= self.jiffies():
            return None
        return M.ip4_str(h.host_ip)

    def jiffies(self) -> int:
        """The dataplane's jiffies now (host-cache expiries are in jiffies)."""
        return kclock.now(self.prog_fds["cl_clock"])[0]

    # ---- stats ------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Every counter summed over CPUs, by name (``rx_decap``, ``drop_unknown_vni``...).
        ``tx_encap`` is the sum of ``direct``, ``via_bouncer`` and ``via_divider`` (the agent
        counts only those: one counter update per frame). Frames sent under a cached decision
        are counted in its decision-cache slot until the slot is rewritten (lib/maps.h
        cl_fc_count): those counts are added here. Slots are read after the counters, so a
        slot flushed between the two reads is missed by this call, never counted twice."""
        totals = [self.counters.sum_percpu(i) for i in range(len(M.COUNTER_NAMES))]
        for name in ("cl_fc_agent", "cl_fc_transit"):
            for _, per_cpu in self.maps[name].items_batch():
                for slot in per_cpu:
                    if slot.packets and slot.event < len(totals):
                        totals[slot.event] += slot.packets
        out = dict(zip(M.COUNTER_NAMES, totals, strict=True))
        out["tx_encap"] = out["direct"] + out["via_bouncer"] + out["via_divider"]
        return out


def _vni(vni: int) -> int:
    if not 0 < vni < (1 << 24):
        raise ValueError(f"VNI must be in 1..2^24-1, got {vni}")
    return vni


def remove_pins(pin_dir: Path) -> None:
    """Remove a droplet's pin directory (idempotent; maps vanish once nothing uses them)."""
    if pin_dir.exists():
        shutil.rmtree(pin_dir, ignore_errors=True)


def typed_map(name: str, pin_dir: Path) -> Map:
    kt, vt = M.MAPS[name]
    return Map.open_pinned(pin_dir / name, kt, vt)


__all__ = ["Overlay", "pin_dir_for", "remove_pins", "typed_map"]


