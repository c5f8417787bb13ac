"""Unit tests of the pure object layer: patches, protobuf decoding, selectors, quantities,
validation and Table conversion."""

from __future__ import annotations

from typing import Any

import pytest

from centaurus.api.encoding import PROTO_OF
from centaurus.objects import kinds as K
from centaurus.objects import patch, protobuf, table, validation
from centaurus.objects.quantity import parse_quantity
from centaurus.objects.selectors import field_selector, label_selector
from centaurus.objects.status import ApiStatusError


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def vi(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    tm = ld(1, api_version.encode()) + ld(2, kind.encode())
    return protobuf.MAGIC + ld(1, tm) + ld(2, raw) + ld(4, b"application/vnd.kubernetes.protobuf")


def test_protobuf_configmap_and_pod() -> None:
    meta = ld(1, b"cm1") + ld(3, b"ns") + ld(11, ld(1, b"app") + ld(2, b"x")) + ld(8, b"")
    body = envelope(
        "v1",
        "ConfigMap",
        ld(1, meta) + ld(2, ld(1, b"k") + ld(2, b"v")) + ld(3, ld(1, b"b") + ld(2, b"\x00\x01")),
    )
    obj = protobuf.decode_object(body, PROTO_OF)
    assert obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm1", "namespace": "ns", "labels": {"app": "x"}},
        "data": {"k": "v"},
        "binaryData": {"b": "AAE="},
    }
    container = (
        ld(1, b"c")
        + ld(2, b"busybox")
        + ld(3, b"sleep")
        + ld(3, b"10")
        + ld(8, ld(2, ld(1, b"cpu") + ld(2, ld(1, b"100m"))))
    )
    spec = ld(2, container) + ld(3, b"Never") + vi(4, 5) + ld(6, b"")
    pod = protobuf.decode_object(envelope("v1", "Pod", ld(1, ld(1, b"p")) + ld(2, spec)), PROTO_OF)
    assert pod["spec"] == {
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sleep", "10"],
                "resources": {"requests": {"cpu": "100m"}},
            }
        ],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
    }
    dep_spec = vi(1, 3) + ld(4, ld(1, b"RollingUpdate") + ld(2, ld(1, vi(1, 0) + vi(2, 1))))
    dep = protobuf.decode_object(
        envelope("apps/v1", "Deployment", ld(1, ld(1, b"d")) + ld(2, dep_spec)), PROTO_OF
    )
    assert dep["spec"] == {
        "replicas": 3,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
    }


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        protobuf.MAGIC + b"\xff\xff",
        envelope("v1", "Nope", b""),
        envelope("v1", "ConfigMap", vi(99, 1)),
    ],
)
def test_protobuf_garbage_is_an_error(body: bytes) -> None:
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode_object(body, PROTO_OF)


def test_strategic_merge_lists_by_key() -> None:
    cur: dict[str, Any] = {
        "spec": {
            "containers": [
                {"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "2"},
            ]
        },
        "metadata": {"finalizers": ["f1"]},
    }
    p = {
        "spec": {
            "containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "3"},
            ]
        },
        "metadata": {"finalizers": ["f2"]},
    }
    out = patch.strategic_merge(cur, p)
    assert out["spec"]["containers"] == [
        {"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
        {"name": "c", "image": "3"},
    ]
    assert out["metadata"]["finalizers"] == ["f1", "f2"]
    assert patch.strategic_merge({"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "d": 3}}) == {
        "a": {"d": 3}
    }
    assert patch.strategic_merge({"a": 1, "b": 2}, {"b": None}) == {"a": 1}


def test_json_and_merge_patch() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    out = patch.json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "remove", "path": "/c"},
            {"op": "copy", "from": "/a/b", "path": "/d"},
            {"op": "test", "path": "/d/0", "value": 1},
            {"op": "replace", "path": "/a/b/0", "value": 9},
        ],
    )
    assert out == {"a": {"b": [9, 2, 3]}, "d": [1, 2, 3]} and doc == {"a": {"b": [1, 2]}, "c": 1}
    with pytest.raises(ApiStatusError):
        patch.json_patch(doc, [{"op": "test", "path": "/c", "value": 2}])
    assert patch.merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 4}}) == {"a": {"c": 2, "d": 4}}
    with pytest.raises(ApiStatusError) as err:
        patch.apply_patch("strategic", {}, {}, custom=True)
    assert err.value.code == 415


def test_selectors_and_quantities() -> None:
    o = {"metadata": {"name": "x", "labels": {"app": "web", "tier": "fe"}}, "spec": {"nodeName": "n1"}}
    for expr, want in [
        ("app=web", True),
        ("app==web,tier!=be", True),
        ("app in (db,web)", True),
        ("app notin (web)", False),
        ("tier", True),
        ("!tier", False),
        ("", True),
    ]:
        pred = label_selector(expr)
        assert (pred(o) if pred else True) is want, expr
    pred = field_selector("spec.nodeName=n1,metadata.name!=y")
    assert pred is not None and pred(o)
    assert parse_quantity("100m") * 10 == 1 and parse_quantity("1Gi") == 2**30 and parse_quantity("2") == 2
    with pytest.raises(ValueError):
        parse_quantity("1 core")


def test_validation_and_table() -> None:
    pods = K.must("", "v1", "pods")
    good = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    validation.validate(pods, good)
    for bad in (
        {**good, "metadata": {"name": "P_1"}},
        {**good, "spec": {"containers": []}},
        {**good, "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "j"}]}},
    ):
        with pytest.raises(ApiStatusError) as err:
            validation.validate(pods, bad)
        assert err.value.code == 422
    vm = {**good, "spec": {"virtualMachine": {"name": "vm", "image": "cirros"}}}
    validation.validate(pods, vm)  # Arktos VM pods have no containers
    with pytest.raises(ApiStatusError):
        validation.check_type(pods, {"apiVersion": "v1", "kind": "Node"})
    t = table.to_table(pods, [good], {"resourceVersion": "1"})
    assert [c["name"] for c in t["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert t["rows"][0]["cells"][:2] == ["p", "0/1"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
