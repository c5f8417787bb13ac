"""The netns planner (pure): names carry the lab id, interface names fit, links are created inside
their namespaces (never in the root namespace), p2p joins exactly two droplets."""

from __future__ import annotations

import re
from pathlib import Path

from centaurus.labs import topology
from centaurus.labs.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_default_plan() -> None:
    spec = load_spec(ROOT / "labs" / "default.yaml")
    plan = topology.plan_lab(spec, "ab12")
    assert set(plan.netns) == {"sw", "d1", "d2", "d3", "a1", "a2", "a3", "a4", "b1"}  # lb1 is virtual
    assert all(n.startswith("cl-ab12-") for n in plan.netns.values())
    for line in plan.root:
        if line.startswith("link add"):
            # both ends are placed in a namespace by name: nothing lands in the root namespace
            assert len(re.findall(r" netns cl-ab12-", line)) == 2, line
    names = [m.group(1) for ln in plan.root for m in re.finditer(r"name (\S+)", ln)]
    assert names and all(len(n) <= 15 for n in names)
    assert any("mtu 1600" in ln for ln in plan.root)
    assert "route add default via 10.10.1.1 dev eth0" in plan.per_netns["cl-ab12-a1"]
    assert "link set ve-a1 up" in plan.per_netns["cl-ab12-d2"]
    assert set(plan.gro["cl-ab12-sw"]) == {"p-d1", "p-d2", "p-d3"}


def test_p2p_plan_and_names() -> None:
    spec = load_spec(ROOT / "labs" / "perf-p2p.yaml")
    plan = topology.plan_lab(spec, "cd34")
    assert "sw" not in plan.netns
    pair = [ln for ln in plan.root if "type veth" in ln and "cl-cd34-d1" in ln and "cl-cd34-d2" in ln]
    assert len(pair) == 1
    assert topology.mac_for("x", "endpoint", "a") == topology.mac_for("x", "endpoint", "a")
    assert topology.mac_for("x", "endpoint", "a") != topology.mac_for("y", "endpoint", "a")
    assert int(topology.mac_for("x", "endpoint", "a")[:2], 16) & 0x3 == 0x2  # local, unicast
    long = topology.veth_name("a-rather-long-endpoint-name")
    assert len(long) <= 15 and long.startswith("ve-")
