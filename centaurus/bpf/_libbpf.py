"""ctypes declarations for the parts of libbpf.so.1 (libbpf >= 1.0) this project uses.

One process-wide handle; every call returns ``-errno`` (ints) or NULL with ``errno`` set
(pointers), which :func:`check` and :func:`check_ptr` turn into :class:`BpfError`. Struct
layouts here are the kernel/libbpf ABI (``linux/bpf.h``, ``bpf/libbpf.h``), not our maps.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import logging
import os
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_int,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any

log = logging.getLogger("centaurus.bpf")

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

BPF_F_TEST_RUN_ON_CPU = 1 << 0
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4

# enum xdp_action
XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
XDP_ACTIONS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}

# enum bpf_map_type (subset)
MAP_TYPES = {
    1: "hash", 2: "array", 5: "percpu_hash", 6: "percpu_array", 9: "lru_hash",
    10: "lru_percpu_hash", 11: "lpm_trie", 14: "devmap", 25: "devmap_hash",
}
PERCPU_MAP_TYPES = {5, 6, 10}

CLONE_NEWNET = 0x40000000


class BpfError(OSError):
    """A libbpf or bpf(2) failure, with the verifier log when there is one."""

    def __init__(self, errno_: int, what: str, log_text: str = "") -> None:
        super().__init__(errno_, f"{what}: {os.strerror(errno_)}" + (f"\n{log_text}" if log_text else ""))
        self.log = log_text


class ObjectOpenOpts(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_uint32),
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_void_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
    ]


class TestRunOpts(Structure):
    __test__ = False  # not a pytest class
    _fields_ = [
        ("sz", c_size_t),
        ("data_in", c_void_p),
        ("data_out", c_void_p),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("ctx_in", c_void_p),
        ("ctx_out", c_void_p),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("retval", c_uint32),
        ("repeat", c_int),
        ("duration", c_uint32),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
    ]


class XdpMd(Structure):
    """``struct xdp_md`` as a BPF_PROG_RUN context."""

    _fields_ = [
        ("data", c_uint32),
        ("data_end", c_uint32),
        ("data_meta", c_uint32),
        ("ingress_ifindex", c_uint32),
        ("rx_queue_index", c_uint32),
        ("egress_ifindex", c_uint32),
    ]


class XdpAttachOpts(Structure):
    _fields_ = [("sz", c_size_t), ("old_prog_fd", c_int)]


class XdpQueryOpts(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("prog_id", c_uint32),
        ("drv_prog_id", c_uint32),
        ("hw_prog_id", c_uint32),
        ("skb_prog_id", c_uint32),
        ("attach_mode", c_uint8),
    ]


class BpfProgInfo(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("tag", c_uint8 * 8),
        ("jited_prog_len", c_uint32),
        ("xlated_prog_len", c_uint32),
        ("jited_prog_insns", c_uint64),
        ("xlated_prog_insns", c_uint64),
        ("load_time", c_uint64),
        ("created_by_uid", c_uint32),
        ("nr_map_ids", c_uint32),
        ("map_ids", c_uint64),
        ("name", c_char * 16),
        ("ifindex", c_uint32),
        ("gpl_compatible", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("nr_jited_ksyms", c_uint32),
        ("nr_jited_func_lens", c_uint32),
        ("jited_ksyms", c_uint64),
        ("jited_func_lens", c_uint64),
        ("btf_id", c_uint32),
        ("func_info_rec_size", c_uint32),
        ("func_info", c_uint64),
        ("nr_func_info", c_uint32),
        ("nr_line_info", c_uint32),
        ("line_info", c_uint64),
        ("jited_line_info", c_uint64),
        ("nr_jited_line_info", c_uint32),
        ("line_info_rec_size", c_uint32),
        ("jited_line_info_rec_size", c_uint32),
        ("nr_prog_tags", c_uint32),
        ("prog_tags", c_uint64),
        ("run_time_ns", c_uint64),
        ("run_cnt", c_uint64),
        ("recursion_misses", c_uint64),
        ("verified_insns", c_uint32),
        ("attach_btf_obj_id", c_uint32),
        ("attach_btf_id", c_uint32),
        ("_pad", c_uint32),
    ]


class BpfMapInfo(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("name", c_char * 16),
        ("ifindex", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("btf_id", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("_pad", c_uint32),
        ("map_extra", c_uint64),
    ]


PrintFn = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "bpf_object__open_file": (c_void_p, [c_char_p, POINTER(ObjectOpenOpts)]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__next_program": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_program__name": (c_char_p, [c_void_p]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__pin_path": (c_char_p, [c_void_p]),
    "bpf_map__unpin": (c_int, [c_void_p, c_char_p]),
    "bpf_map__pin": (c_int, [c_void_p, c_char_p]),
    "bpf_map__reuse_fd": (c_int, [c_void_p, c_int]),
    "bpf_map__set_pin_path": (c_int, [c_void_p, c_char_p]),
    "bpf_object__find_map_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_obj_get": (c_int, [c_char_p]),
    "bpf_obj_pin": (c_int, [c_int, c_char_p]),
    "bpf_obj_get_info_by_fd": (c_int, [c_int, c_void_p, POINTER(c_uint32)]),
    "bpf_prog_get_fd_by_id": (c_int, [c_uint32]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_lookup_batch": (c_int, [c_int, c_void_p, c_void_p, c_void_p, c_void_p, POINTER(c_uint32),
                                     c_void_p]),
    "bpf_prog_test_run_opts": (c_int, [c_int, POINTER(TestRunOpts)]),
    "bpf_xdp_attach": (c_int, [c_int, c_int, c_uint32, POINTER(XdpAttachOpts)]),
    "bpf_xdp_detach": (c_int, [c_int, c_uint32, POINTER(XdpAttachOpts)]),
    "bpf_xdp_query": (c_int, [c_int, c_int, POINTER(XdpQueryOpts)]),
    "libbpf_num_possible_cpus": (c_int, []),
    "libbpf_set_print": (c_void_p, [PrintFn]),
}


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError:
        lib = ctypes.CDLL(name, use_errno=True)
    for fn, (restype, argtypes) in _SIGNATURES.items():
        f = getattr(lib, fn)
        f.restype = restype
        f.argtypes = argtypes
    return lib


lib = _load()
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
_libc.vsnprintf.restype = c_int
_libc.setns.argtypes = [c_int, c_int]
_libc.setns.restype = c_int


#: the last libbpf messages, attached to load errors (why a pinned map was not reused...)
recent_messages: collections.deque[str] = collections.deque(maxlen=40)


def _print_impl(level: int, fmt: bytes | None, args: int | None) -> int:
    """libbpf's messages go to our logger (debug), not to stderr."""
    buf = ctypes.create_string_buffer(1024)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    msg = buf.value.decode(errors="replace").rstrip()
    if level < 2:  # warnings and info; debug-level chatter is too much to keep
        recent_messages.append(msg)
    log.debug("libbpf: %s", msg)
    return 0


_print = PrintFn(_print_impl)  # module-level: the callback must outlive every libbpf call
lib.libbpf_set_print(_print)


def check(ret: int, what: str) -> int:
    """Raise on a negative libbpf return (which is -errno)."""
    if ret < 0:
        err = -ret if ret != -1 else (ctypes.get_errno() or 1)
        raise BpfError(err, what)
    return ret


def check_ptr(ptr: int | None, what: str) -> int:
    if not ptr:
        raise BpfError(ctypes.get_errno() or 22, what)
    return ptr


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2) for the calling thread (Python 3.11 has no os.setns)."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def num_possible_cpus() -> int:
    return check(lib.libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")
