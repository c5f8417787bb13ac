"""Open and load a BPF object file through libbpf; find its programs and maps.

Maps declared with ``LIBBPF_PIN_BY_NAME`` are pinned under ``pin_root`` on load -- or, when a
compatible pin already exists there, reused. That is how two objects of one droplet
(``transit.o`` and ``agent.o``) share their maps, and how a restarted daemon adopts them.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from centaurus.bpf import _libbpf as L
from centaurus.bpf.mapio import Map

LOG_SIZE = 4 << 20

#: Where ``make -C xdp`` puts the objects (override: CENTAURUS_XDP_BUILD).
XDP_BUILD = Path(os.environ.get("CENTAURUS_XDP_BUILD", Path(__file__).resolve().parents[2] / "xdp" / "build"))


def object_path(name: str) -> Path:
    """Path of a built XDP object (``transit``, ``agent``, ``trafficgen``)."""
    p = XDP_BUILD / f"{name}.o"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run `make -C xdp` (ci/bootstrap does)")
    return p


@dataclass(frozen=True)
class ProgInfo:
    id: int
    name: str
    type: int
    verified_insns: int  # instructions the verifier processed (complexity; Cilium tracks it)
    xlated_insns: int    # program size after verifier rewrites, in 8-byte instructions
    jited_bytes: int
    run_cnt: int
    run_time_ns: int


def prog_info(fd: int) -> ProgInfo:
    info = L.BpfProgInfo()
    n = ctypes.c_uint32(ctypes.sizeof(info))
    L.check(L.lib.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(n)), "prog info")
    return ProgInfo(
        id=int(info.id), name=info.name.decode(), type=int(info.type),
        verified_insns=int(info.verified_insns), xlated_insns=int(info.xlated_prog_len) // 8,
        jited_bytes=int(info.jited_prog_len), run_cnt=int(info.run_cnt),
        run_time_ns=int(info.run_time_ns),
    )


class Program:
    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fd = fd

    def info(self) -> ProgInfo:
        return prog_info(self.fd)

    def __repr__(self) -> str:
        return f"Program({self.name!r}, fd={self.fd})"


class BpfObject:
    """A loaded object. Close it (or use ``with``) to release programs and unpinned maps;
    pinned maps and attached programs stay alive in the kernel. Without ``pin_root`` nothing
    is pinned: every map is private to this object."""

    def __init__(self, path: str | Path, pin_root: str | Path | None = None,
                 share_maps: tuple[str, ...] = ()) -> None:
        """``share_maps``: maps without a ``pinning`` attribute to pin under ``pin_root`` (or
        reuse from there) by hand -- for map types libbpf 1.1 cannot reuse (devmaps)."""
        self.path = Path(path)
        self.pin_root = Path(pin_root) if pin_root else None
        self._obj: int | None = None
        self._log = ctypes.create_string_buffer(LOG_SIZE)
        if self.pin_root:
            self.pin_root.mkdir(parents=True, exist_ok=True)
        opts = L.ObjectOpenOpts()
        opts.sz = ctypes.sizeof(opts)
        opts.pin_root_path = str(self.pin_root).encode() if self.pin_root else None
        opts.kernel_log_buf = ctypes.cast(self._log, ctypes.c_void_p)
        opts.kernel_log_size = LOG_SIZE
        self._obj = L.check_ptr(L.lib.bpf_object__open_file(str(self.path).encode(), ctypes.byref(opts)),
                                f"open {self.path}")
        if share_maps and not self.pin_root:
            raise ValueError("share_maps needs a pin_root")
        if not self.pin_root:
            # no pin root: nothing is pinned (libbpf would otherwise pin LIBBPF_PIN_BY_NAME maps
            # straight under /sys/fs/bpf, or reuse whatever another run left there)
            m = L.lib.bpf_object__next_map(self._obj, None)
            while m:
                L.check(L.lib.bpf_map__set_pin_path(m, None), "unpin map definition")
                m = L.lib.bpf_object__next_map(self._obj, m)
        for name in share_maps:
            assert self.pin_root is not None
            pin = self.pin_root / name
            if pin.exists():
                m = L.check_ptr(L.lib.bpf_object__find_map_by_name(self._obj, name.encode()), f"map {name}")
                fd = L.check(L.lib.bpf_obj_get(str(pin).encode()), f"bpf_obj_get {pin}")
                try:
                    L.check(L.lib.bpf_map__reuse_fd(m, fd), f"reuse {pin}")
                finally:
                    os.close(fd)  # reuse_fd dups it
        L.recent_messages.clear()
        ret = L.lib.bpf_object__load(self._obj)
        if ret < 0:
            text = self._log.value.decode(errors="replace") or "\n".join(L.recent_messages)
            self.close()
            raise L.BpfError(-ret, f"load {self.path.name}", text[-6000:])
        for name in share_maps:
            assert self.pin_root is not None
            pin = self.pin_root / name
            if not pin.exists():
                m = L.check_ptr(L.lib.bpf_object__find_map_by_name(self._obj, name.encode()), f"map {name}")
                L.check(L.lib.bpf_map__pin(m, str(pin).encode()), f"pin {name}")
        self._log = ctypes.create_string_buffer(1)  # free the 4 MiB log once loaded
        self.programs: dict[str, Program] = {}
        self.maps: dict[str, Map] = {}
        p = L.lib.bpf_object__next_program(self._obj, None)
        while p:
            name = L.lib.bpf_program__name(p).decode()
            self.programs[name] = Program(name, L.lib.bpf_program__fd(p))
            p = L.lib.bpf_object__next_program(self._obj, p)
        m = L.lib.bpf_object__next_map(self._obj, None)
        while m:
            name = L.lib.bpf_map__name(m).decode()
            self.maps[name] = Map(L.lib.bpf_map__fd(m), name=name)
            m = L.lib.bpf_object__next_map(self._obj, m)

    def program(self, name: str) -> Program:
        try:
            return self.programs[name]
        except KeyError:
            have = sorted(self.programs)
            raise KeyError(f"{self.path.name} has no program {name!r} (has {have})") from None

    def map(self, name: str, key_type: Any = None, value_type: Any = None) -> Map:
        """The map ``name``, typed with the given ctypes key/value types."""
        m = self.maps[name]
        if key_type is None and value_type is None:
            return m
        return Map(m.fd, key_type, value_type, name=name)

    def close(self) -> None:
        if self._obj:
            L.lib.bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def verifier_stats(objects: tuple[str, ...] = ("transit", "agent", "trafficgen")) -> dict[str, ProgInfo]:
    """Load each built object (no pins) and report every program's verifier figures -- the
    complexity record the report shows (Cilium's complexity tests track the same)."""
    out: dict[str, ProgInfo] = {}
    for name in objects:
        with BpfObject(object_path(name)) as o:
            for pname, prog in o.programs.items():
                out[f"{name}:{pname}"] = prog.info()
    return out
