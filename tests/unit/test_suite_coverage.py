"""Every catalog requirement has at least one conformance test, and tests name only catalog IDs.

Read from the test modules' source (AST), not by running them: this holds even before any
implementation exists, which is the point of writing the suite spec first.
"""

from __future__ import annotations

import ast
from pathlib import Path

from centaurus.harness import catalog

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"


def marked_ids() -> dict[str, list[str]]:
    """requirement ID -> test functions marked with it."""
    out: dict[str, list[str]] = {}
    for path in sorted(CONFORMANCE.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute)
                        and dec.func.attr == "requirement"):
                    for arg in dec.args:
                        assert isinstance(arg, ast.Constant), f"{path.name}::{node.name}: literal IDs only"
                        out.setdefault(str(arg.value), []).append(f"{path.name}::{node.name}")
    return out


def test_every_requirement_has_a_test_and_no_test_invents_one() -> None:
    ids = marked_ids()
    cat = set(catalog.load())
    assert sorted(cat - ids.keys()) == [], "requirements without a conformance test"
    assert sorted(ids.keys() - cat) == [], "tests naming IDs that are not in the catalog"


def test_every_test_has_a_docstring_saying_what_it_proves() -> None:
    for path in sorted(CONFORMANCE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                doc = ast.get_docstring(node) or ""
                assert len(doc) > 40, f"{path.name}::{node.name} needs a docstring saying what it proves"
