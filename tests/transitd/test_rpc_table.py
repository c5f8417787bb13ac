"""The service table comes from the .proto: every RPC the Dataplane issue names exists."""

from __future__ import annotations

from centaurus.transitd.rpc import METHODS, SERVICE


def test_brief_rpcs_exist() -> None:
    for obj in ("Vpc", "Net", "Ep", "Bouncer", "Divider"):
        assert f"Update{obj}" in METHODS and f"Delete{obj}" in METHODS
    for get in ("GetVpc", "GetNet", "GetEp", "GetBouncers", "GetDividers", "Stats", "Status", "Shutdown"):
        assert get in METHODS
    assert SERVICE == "centaurus.transit.v1.Transit"


def test_messages_roundtrip() -> None:
    req_cls, _ = METHODS["UpdateEp"]
    msg = req_cls(vni=1001, ip="10.10.1.10", kind="scaled", backends=["10.10.1.11", "10.10.1.12"])
    again = req_cls.FromString(msg.SerializeToString())
    assert again.vni == 1001 and list(again.backends) == ["10.10.1.11", "10.10.1.12"]
