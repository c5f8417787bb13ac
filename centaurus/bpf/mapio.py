"""Typed access to one BPF map by file descriptor: update, lookup, delete, iterate.

Keys and values are ctypes objects (the mirrors in :mod:`centaurus.bpf.maps`) or plain ints
for ``__u32``/``__u64`` maps. Every operation is one bpf(2) call through libbpf -- no
subprocess per update. Per-CPU maps return one value per possible CPU.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from centaurus.bpf import _libbpf as L

CData = Any  # a ctypes instance (Structure, c_uint32, ...)


def _round8(n: int) -> int:
    return (n + 7) & ~7


class Map:
    """A BPF map. Owns its fd when opened from a pin; borrows it from a loaded object."""

    def __init__(self, fd: int, key_type: Any = None, value_type: Any = None, *,
                 owned: bool = False, name: str = "") -> None:
        info = L.BpfMapInfo()
        n = ctypes.c_uint32(ctypes.sizeof(info))
        L.check(L.lib.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(n)), "map info")
        self.fd = fd
        self.owned = owned
        self.name = name or info.name.decode()
        self.id = int(info.id)
        self.type = int(info.type)
        self.key_size = int(info.key_size)
        self.value_size = int(info.value_size)
        self.max_entries = int(info.max_entries)
        self.percpu = self.type in L.PERCPU_MAP_TYPES
        self.ncpus = L.num_possible_cpus() if self.percpu else 1
        self.key_type = key_type or self._int_type(self.key_size)
        self.value_type = value_type or self._int_type(self.value_size)
        for what, t, size in (("key", self.key_type, self.key_size),
                              ("value", self.value_type, self.value_size)):
            if ctypes.sizeof(t) != size:
                raise ValueError(f"map {self.name}: {what} type {t.__name__} is {ctypes.sizeof(t)} "
                                 f"bytes, the map's {what} is {size}: layouts drifted")

    @staticmethod
    def _int_type(size: int) -> Any:
        return {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}.get(
            size, ctypes.c_uint8 * size)

    # ---- construction from bpffs ------------------------------------------------------
    @classmethod
    def open_pinned(cls, path: str | Path, key_type: Any = None, value_type: Any = None) -> Map:
        fd = L.check(L.lib.bpf_obj_get(str(path).encode()), f"bpf_obj_get {path}")
        try:
            return cls(fd, key_type, value_type, owned=True)
        except BaseException:
            os.close(fd)
            raise

    def pin(self, path: str | Path) -> None:
        L.check(L.lib.bpf_obj_pin(self.fd, str(path).encode()), f"pin {self.name} at {path}")

    def close(self) -> None:
        if self.owned and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Map:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- element operations -----------------------------------------------------------
    def _key(self, key: Any) -> CData:
        return key if isinstance(key, ctypes._SimpleCData | ctypes.Structure | ctypes.Array) \
            else self.key_type(key)

    def _value_buf(self) -> Any:
        if self.percpu:
            return (ctypes.c_uint8 * (_round8(self.value_size) * self.ncpus))()
        return self.value_type()

    def update(self, key: Any, value: Any, flags: int = L.BPF_ANY) -> None:
        k = self._key(key)
        if self.percpu:
            buf = self._value_buf()
            stride = _round8(self.value_size)
            vals = value if isinstance(value, list | tuple) else [value] * self.ncpus
            for cpu, v in enumerate(vals):
                cv = v if not isinstance(v, int) else self.value_type(v)
                ctypes.memmove(ctypes.addressof(buf) + cpu * stride, ctypes.addressof(cv), self.value_size)
            v_ptr = ctypes.byref(buf)
        else:
            v = value if not isinstance(value, int) else self.value_type(value)
            v_ptr = ctypes.byref(v)
        L.check(L.lib.bpf_map_update_elem(self.fd, ctypes.byref(k), v_ptr, flags),
                f"update {self.name}")

    def lookup(self, key: Any) -> Any:
        """The value (ctypes object, or int for integer values), or ``None`` when absent.
        Per-CPU maps: a list with one value per CPU."""
        k = self._key(key)
        buf = self._value_buf()
        ret = L.lib.bpf_map_lookup_elem(self.fd, ctypes.byref(k), ctypes.byref(buf))
        if ret < 0:
            if -ret == 2 or ctypes.get_errno() == 2:  # ENOENT
                return None
            L.check(ret, f"lookup {self.name}")
        if self.percpu:
            stride = _round8(self.value_size)
            out = []
            for cpu in range(self.ncpus):
                v = self.value_type.from_buffer_copy(buf, cpu * stride)
                out.append(v.value if hasattr(v, "value") else v)
            return out
        return buf.value if hasattr(buf, "value") and not isinstance(buf, ctypes.Array) else buf

    def delete(self, key: Any, missing_ok: bool = True) -> bool:
        ret = L.lib.bpf_map_delete_elem(self.fd, ctypes.byref(self._key(key)))
        if ret < 0:
            if -ret == 2 and missing_ok:
                return False
            L.check(ret, f"delete {self.name}")
        return True

    def keys(self) -> Iterator[Any]:
        prev: Any = None
        while True:
            nxt = self.key_type()
            ret = L.lib.bpf_map_get_next_key(self.fd, None if prev is None else ctypes.byref(prev),
                                             ctypes.byref(nxt))
            if ret < 0:
                if -ret == 2:
                    return
                L.check(ret, f"iterate {self.name}")
            yield nxt.value if hasattr(nxt, "value") and not isinstance(nxt, ctypes.Array) else nxt
            prev = nxt

    def items(self) -> Iterator[tuple[Any, Any]]:
        for k in list(self.keys()):
            v = self.lookup(k)
            if v is not None:
                yield k, v

    def items_batch(self, chunk: int = 1024) -> Iterator[tuple[Any, Any]]:
        """All entries with BPF_MAP_LOOKUP_BATCH: one syscall per ``chunk`` entries (a 16k-slot
        array is 16 calls instead of 32k). Per-CPU maps: the value is a list, one per CPU."""
        keys = (self.key_type * chunk)()
        if self.percpu:
            yield from self._items_batch_percpu(chunk, keys)
            return
        vals = (self.value_type * chunk)()
        for n in self._batches(keys, vals, chunk):
            for i in range(n):
                k, v = keys[i], vals[i]  # structures view the buffer: copy before the next batch
                yield (k if isinstance(k, int) else type(k).from_buffer_copy(k),
                       v if isinstance(v, int) else type(v).from_buffer_copy(v))

    def _items_batch_percpu(self, chunk: int, keys: Any) -> Iterator[tuple[Any, Any]]:
        stride = _round8(self.value_size)
        per_elem = stride * self.ncpus
        vals = (ctypes.c_uint8 * (per_elem * chunk))()
        for n in self._batches(keys, vals, chunk):
            for i in range(n):
                k = keys[i]
                out = []
                for cpu in range(self.ncpus):
                    v = self.value_type.from_buffer_copy(vals, i * per_elem + cpu * stride)
                    out.append(v.value if hasattr(v, "value") else v)
                yield (k if isinstance(k, int) else type(k).from_buffer_copy(k)), out

    def _batches(self, keys: Any, vals: Any, chunk: int) -> Iterator[int]:
        """BPF_MAP_LOOKUP_BATCH over the whole map into ``keys``/``vals``: yields each batch's
        entry count; the entries stay in the buffers only until the next batch is read."""
        token_in = (ctypes.c_uint8 * max(self.key_size, 8))()
        token_out = (ctypes.c_uint8 * max(self.key_size, 8))()
        first = True
        while True:
            count = ctypes.c_uint32(chunk)
            ret = L.lib.bpf_map_lookup_batch(self.fd, None if first else ctypes.byref(token_in),
                                             ctypes.byref(token_out), ctypes.byref(keys),
                                             ctypes.byref(vals), ctypes.byref(count), None)
            if ret < 0 and -ret != 2:  # ENOENT: this was the last batch
                L.check(ret, f"lookup batch {self.name}")
            yield count.value
            if ret < 0:
                return
            ctypes.memmove(token_in, token_out, len(token_in))
            first = False

    def clear(self) -> int:
        n = 0
        for k in list(self.keys()):
            n += self.delete(k)
        return n

    def sum_percpu(self, key: Any) -> int:
        """Sum over CPUs of an integer per-CPU value (counters)."""
        vals = self.lookup(key)
        return 0 if vals is None else int(sum(vals))

    def __repr__(self) -> str:
        return f"Map({self.name!r}, id={self.id}, type={L.MAP_TYPES.get(self.type, self.type)})"
