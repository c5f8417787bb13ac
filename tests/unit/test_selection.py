"""Choosing plug-ins by name: typos are usage errors, planned-but-unbuilt names are 'not built'."""

from __future__ import annotations

import pytest

from centaurus.harness import selection
from centaurus.plugins import PluginError


def test_parse_name_arg_and_options() -> None:
    c = selection.parse_choice("kubeconfig=/tmp/kc,context=prod", "target")
    assert (c.name, c.arg, c.options, c.axis) == ("kubeconfig", "/tmp/kc", {"context": "prod"}, "target")
    c = selection.parse_choice("netns,dataplane=bridge-vxlan", "lab")
    assert (c.name, c.arg, c.options) == ("netns", None, {"dataplane": "bridge-vxlan"})


@pytest.mark.parametrize(("text", "axis", "msg"), [
    ("", "target", "empty --target"),
    ("  ", "lab", "empty --lab"),
    ("nosuch", "target", "unknown target 'nosuch' (available: builtin, kubeconfig"),
    ("netsn", "lab", "unknown lab 'netsn' (available: netns, ssh, vagrant"),
    ("builtin,store", "target", "option 'store' is not key=value"),
    ("builtin,=x", "target", "option '=x' is not key=value"),
])
def test_bad_choices(text: str, axis: str, msg: str) -> None:
    with pytest.raises(PluginError) as exc:
        selection.parse_choice(text, axis)
    assert msg in str(exc.value) and "\n" not in str(exc.value)


def test_planned_but_unregistered_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(selection.PLANNED, "lab", selection.PLANNED["lab"] | {"cl-future"})
    choice = selection.parse_choice("cl-future", "lab")
    with pytest.raises(selection.NotBuilt, match="lab 'cl-future' is not built yet"):
        selection.make_lab(choice, state_dir=__import__("pathlib").Path("/nonexistent"))


def test_every_axis_has_a_plan() -> None:
    from centaurus.plugins import AXES

    assert set(selection.PLANNED) == set(AXES)
    assert "builtin" in selection.known("target") and "netns" in selection.known("lab")
