"""Python binding to libbpf (ctypes over libbpf.so.1) and the overlay's map layout.

- :mod:`.obj` open/load objects, find programs and maps, verifier instruction counts
- :mod:`.mapio` typed map update/lookup/delete/iterate, pinned maps, per-CPU values
- :mod:`.maps` the ctypes mirror of ``xdp/lib/maps.h`` (the only one)
- :mod:`.xdp` attach/detach/query by ifindex, in any named netns (:mod:`.netns`)
- :mod:`.testrun` BPF_PROG_RUN, also live frames
- :mod:`.overlay` one droplet's overlay: load/pin/adopt, typed map programming, stats
- :mod:`.pps` packet-rate measurement with live frames in throwaway namespaces
"""

from centaurus.bpf._libbpf import BpfError
from centaurus.bpf.mapio import Map
from centaurus.bpf.netns import in_netns
from centaurus.bpf.obj import BpfObject, ProgInfo, object_path, prog_info, verifier_stats
from centaurus.bpf.testrun import TestRunResult, prog_test_run

__all__ = [
    "BpfError", "BpfObject", "Map", "ProgInfo", "TestRunResult", "in_netns", "object_path",
    "prog_info", "prog_test_run", "verifier_stats",
]
