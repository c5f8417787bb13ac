"""The Python mirror of xdp/lib/maps.h cannot drift: struct sizes, member names and offsets
and the counter enum are compared with the BTF clang wrote into the compiled objects; the
maps the kernel created have the mirror's key/value sizes; every program passes the verifier
and reports its complexity."""

from __future__ import annotations

import ctypes
import json
import subprocess
from typing import Any

import pytest

from centaurus.bpf import maps as M
from centaurus.bpf import verifier_stats
from centaurus.bpf.obj import BpfObject, object_path


def btf_types(obj: str) -> dict[str, dict[str, Any]]:
    out = subprocess.run(["bpftool", "-j", "btf", "dump", "file", str(object_path(obj))],
                         capture_output=True, text=True, check=True).stdout
    return {t["name"]: t for t in json.loads(out)["types"]
            if t.get("kind") in ("STRUCT", "ENUM") and t.get("name")}


@pytest.mark.parametrize("obj", ["transit", "agent"])
def test_structs_match_btf(obj: str) -> None:
    types = btf_types(obj)
    for cname, py in M.STRUCTS.items():
        t = types.get(cname)
        assert t is not None, f"{cname} missing from {obj}.o BTF"
        assert t["size"] == ctypes.sizeof(py), f"{cname}: C {t['size']} B, Python {ctypes.sizeof(py)} B"
        c_members = [(m["name"], m["bits_offset"] // 8) for m in t["members"]]
        py_members = [(name, getattr(py, name).offset) for name, *_ in py._fields_]
        assert c_members == py_members, f"{cname} layout drifted"


@pytest.mark.parametrize("obj", ["transit", "agent"])
def test_counter_enum_matches_btf(obj: str) -> None:
    values = btf_types(obj)["cl_counter"]["values"]
    c = {v["name"].removeprefix("CL_CNT_").lower(): v["val"] for v in values}
    assert c.pop("max") == len(M.COUNTER_NAMES)
    assert c == M.COUNTER, "enum cl_counter and COUNTER_NAMES drifted"


def test_kernel_maps_have_the_mirrors_sizes(tmp_path_factory: pytest.TempPathFactory) -> None:
    for obj in ("transit", "agent"):
        with BpfObject(object_path(obj)) as o:
            for name, (kt, vt) in M.MAPS.items():
                m = o.maps[name]
                assert (m.key_size, m.value_size) == (ctypes.sizeof(kt), ctypes.sizeof(vt)), name
            assert o.maps["cl_counters"].max_entries == len(M.COUNTER_NAMES)


def test_every_program_verifies_and_reports_its_complexity() -> None:
    stats = verifier_stats()
    assert set(stats) >= {"transit:cl_transit", "agent:cl_agent", "trafficgen:tg_gen",
                          "trafficgen:tg_forward", "trafficgen:tg_sink", "trafficgen:tg_pass"}
    for name, info in stats.items():
        assert 0 < info.verified_insns < 1_000_000, name
        assert info.xlated_insns > 0 and info.jited_bytes > 0, name
    print({k: v.verified_insns for k, v in stats.items()})


def test_local_ifaces_lists_only_bound_veths_from_array_and_overflow(d1) -> None:  # type: ignore[no-untyped-def]
    from xdputil import A

    d1.ov.put_iface(20000, vni=A[0], ip=A[1], mac=A[2], net_cidr="10.10.1.0/24")
    got = {i: M.ip4_str(v.ip) for i, v in d1.ov.local_ifaces()}
    assert got == {d1.ifx["vea"]: A[1], d1.ifx["veb"]: "10.10.1.11", 20000: A[1]}
    d1.ov.delete_iface(d1.ifx["veb"])
    d1.ov.delete_iface(20000)
    assert {i for i, _ in d1.ov.local_ifaces()} == {d1.ifx["vea"]}


def test_object_without_pin_root_pins_nothing() -> None:
    from pathlib import Path

    before = set(Path("/sys/fs/bpf").iterdir())
    with BpfObject(object_path("transit")):
        assert set(Path("/sys/fs/bpf").iterdir()) == before


def test_overlay_load_replaces_pins_of_an_incompatible_build(netns) -> None:  # type: ignore[no-untyped-def]
    from centaurus.bpf.mapio import Map
    from centaurus.bpf.overlay import Overlay, pin_dir_for, remove_pins

    pin_dir = pin_dir_for(netns.name, "old")
    pin_dir.mkdir(parents=True, exist_ok=True)
    try:
        # an "old build" left a cl_config of another size
        with BpfObject(object_path("trafficgen")) as o:
            Map(o.maps["tg_rx"].fd).pin(pin_dir / "cl_config")
        ov = Overlay.load(pin_dir, netns=netns.name)
        assert ov.config.value_size == ctypes.sizeof(M.Config)
        ov.destroy()
    finally:
        remove_pins(pin_dir)
