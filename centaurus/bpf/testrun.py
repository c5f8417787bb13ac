"""BPF_PROG_RUN (``bpf_prog_test_run_opts``) for XDP programs.

Two modes: a normal run returns the verdict and the output frame (what the program made of
the input: encapsulated, rewritten, replied); ``live=True`` (BPF_F_TEST_XDP_LIVE_FRAMES)
really transmits the frames the program redirects or bounces, ``repeat`` times -- the packet
generator of the packet-rate measurements.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from centaurus.bpf import _libbpf as L


@dataclass(frozen=True)
class TestRunResult:
    __test__ = False
    retval: int
    data_out: bytes
    duration_ns: int  # kernel's mean per repetition (normal mode)

    @property
    def action(self) -> str:
        return L.XDP_ACTIONS.get(self.retval, str(self.retval))


def prog_test_run(prog_fd: int, data: bytes, *, repeat: int = 1, flags: int = 0,
                  ctx: L.XdpMd | None = None, ingress_ifindex: int = 0, live: bool = False,
                  batch_size: int = 0, out_room: int = 512) -> TestRunResult:
    """Run ``prog_fd`` on ``data``. ``ingress_ifindex`` (resolved in the calling thread's
    netns) builds an ``xdp_md`` context when ``ctx`` is not given."""
    buf_in = ctypes.create_string_buffer(data, len(data))
    opts = L.TestRunOpts()
    opts.sz = ctypes.sizeof(opts)
    opts.data_in = ctypes.cast(buf_in, ctypes.c_void_p)
    opts.data_size_in = len(data)
    opts.repeat = repeat
    opts.flags = flags | (L.BPF_F_TEST_XDP_LIVE_FRAMES if live else 0)
    opts.batch_size = batch_size
    if ctx is None and ingress_ifindex:
        ctx = L.XdpMd(data=0, data_end=len(data), ingress_ifindex=ingress_ifindex)
    if ctx is not None:
        opts.ctx_in = ctypes.cast(ctypes.pointer(ctx), ctypes.c_void_p)
        opts.ctx_size_in = ctypes.sizeof(ctx)
    buf_out = None
    if not live:
        buf_out = ctypes.create_string_buffer(len(data) + out_room)
        opts.data_out = ctypes.cast(buf_out, ctypes.c_void_p)
        opts.data_size_out = len(buf_out)
    L.check(L.lib.bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), "bpf_prog_test_run")
    out = b"" if buf_out is None else buf_out.raw[: opts.data_size_out]
    return TestRunResult(int(opts.retval), out, int(opts.duration))
