"""Lab spec validation: good specs load, every bad field is ONE line naming file and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from centaurus.labs.spec import SpecError, load_spec, parse_endpoint, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _default() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "labs" / "default.yaml").read_text())
    return doc


@pytest.mark.parametrize("name", ["default.yaml", "perf-p2p.yaml"])
def test_shipped_specs_load(name: str) -> None:
    spec = load_spec(ROOT / "labs" / name)
    assert spec.droplets and spec.networks
    assert spec.substrate.mtu >= 1550


def test_default_spec_matches_contract() -> None:
    spec = load_spec(ROOT / "labs" / "default.yaml")
    assert [d.name for d in spec.droplets] == ["d1", "d2", "d3"]
    a1, b1 = spec.endpoint("a1"), spec.endpoint("b1")
    assert a1.ip == b1.ip == "10.10.1.10"
    assert spec.vpc_of(a1.network).tenant != spec.vpc_of(b1.network).tenant
    lb = spec.endpoint("lb1")
    assert lb.kind == "scaled" and lb.backends == ("a2", "a4") and not lb.host
    assert spec.network("net-a1").gateway == "10.10.1.1"
    assert spec.network("net-a1").bouncers == ("d1", "d2")


def test_roundtrip_through_state_dict() -> None:
    spec = load_spec(ROOT / "labs" / "default.yaml")
    again = parse_spec(spec.to_dict())
    assert again.endpoints == spec.endpoints and again.networks == spec.networks


def _mutate(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_default())
    cur: Any = doc
    keys = path.split(".")
    for k in keys[:-1]:
        cur = cur[int(k)] if k.isdigit() else cur[k]
    last = keys[-1]
    if value is _DELETE:
        del cur[int(last) if last.isdigit() else last]
    elif last.isdigit():
        cur[int(last)] = value
    else:
        cur[last] = value
    return doc


_DELETE = object()

BAD = [
    ("substrate.mtu", 1500, "substrate.mtu: 1500 is below 1550"),
    ("substrate.cidr", "10.199.0.0/33", "substrate.cidr"),
    ("substrate.mode", "ring", "substrate.mode"),
    ("droplets.1.ip", "10.200.0.1", "droplets[1].ip: 10.200.0.1 is not in substrate cidr"),
    ("droplets.1.ip", "10.199.0.11", "droplets[1].ip: 10.199.0.11 is used by another droplet"),
    ("droplets.1.name", "d1", "droplets[1].name: droplet 'd1' defined twice"),
    ("droplets.1.name", "Bad_Name", "droplets[1].name: 'Bad_Name' is not a valid name"),
    ("droplets.1.name", "sw", "droplets[1].name: 'sw' is reserved"),
    ("vpcs.1.vni", 1001, "vpcs[1].vni: VNI 1001 is used by another vpc"),
    ("vpcs.1.vni", 1 << 24, "vpcs[1].vni: 16777216 is out of range"),
    ("vpcs.0.dividers", ["d9"], "vpcs[0].dividers: unknown droplet 'd9'"),
    ("networks.0.cidr", "10.11.1.0/24", "networks[0].cidr: 10.11.1.0/24 is not inside vpc vpc-a"),
    ("networks.1.cidr", "10.10.1.128/25", "networks[1].cidr: 10.10.1.128/25 overlaps network net-a1"),
    ("networks.0.bouncers", [], "networks[0].bouncers: a network needs at least one bouncer"),
    ("networks.0.vpc", "vpc-z", "networks[0].vpc: unknown vpc 'vpc-z'"),
    ("endpoints.0.ip", "10.10.3.4", "endpoints[0].ip: 10.10.3.4 is not in network net-a1"),
    ("endpoints.0.ip", "10.10.1.1", "endpoints[0].ip: 10.10.1.1 is the gateway of network net-a1"),
    ("endpoints.0.ip", "10.10.1.255", "endpoints[0].ip: 10.10.1.255 is the network or broadcast"),
    ("endpoints.1.ip", "10.10.1.10", "endpoints[1].ip: 10.10.1.10 is already used by endpoint a1"),
    ("endpoints.0.host", "d9", "endpoints[0].host: unknown droplet 'd9'"),
    ("endpoints.0.name", "d1", "endpoints[0].name: 'd1' is also a droplet name"),
    ("endpoints.4.backends", ["b1"], "endpoints[4].backends: b1 is not a simple endpoint of network net-a1"),
    ("endpoints.4.backends", [], "endpoints[4].backends: a scaled endpoint needs at least one backend"),
    ("endpoints.0.kind", "fancy", "endpoints[0].kind"),
    ("endpoints.0.colour", "red", "endpoints[0]: unknown key 'colour'"),
    ("dataplane", "ovs", "dataplane: 'ovs' is not one of"),
    ("droplets", [], "droplets: a lab needs at least one droplet"),
    ("substrate", _DELETE, "missing required key 'substrate'"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[b[2][:40] for b in BAD])
def test_bad_field_is_one_line(path: str, value: Any, message: str) -> None:
    with pytest.raises(SpecError) as ei:
        parse_spec(_mutate(path, value), source="x.yaml")
    text = str(ei.value)
    assert "\n" not in text
    assert text.startswith("x.yaml: ")
    assert message in text, text


def test_p2p_needs_two_droplets() -> None:
    doc = _mutate("substrate.mode", "p2p")
    with pytest.raises(SpecError, match="p2p joins exactly 2 droplets, got 3"):
        parse_spec(doc)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad.yaml: not valid YAML \(line"):
        load_spec(bad)
    bad.write_text("- a list\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec(bad)


def test_parse_endpoint_against_running_spec() -> None:
    spec = load_spec(ROOT / "labs" / "default.yaml")
    ep = parse_endpoint(spec, {"name": "a9", "network": "net-a2", "ip": "10.10.2.99", "host": "d1"})
    assert ep.host == "d1"
    with pytest.raises(SpecError, match="already used by endpoint a1"):
        parse_endpoint(spec, {"name": "a9", "network": "net-a1", "ip": "10.10.1.10", "host": "d1"})
    # the same IP in the other tenant's VPC is fine
    assert parse_endpoint(spec, {"name": "b9", "network": "net-b1", "ip": "10.10.1.11", "host": "d1"})
    with pytest.raises(SpecError, match="endpoint 'a1' defined twice"):
        parse_endpoint(spec, {"name": "a1", "network": "net-a1", "ip": "10.10.1.50", "host": "d1"})
