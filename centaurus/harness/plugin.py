"""pytest plugin of the conformance suite.

Options: ``--target``, ``--lab``, ``--lab-spec``, ``--profile smoke|full``, ``--report-dir``,
``--catalog``, ``--ratchet``, ``--state-dir``. Tests declare what they prove with
``@pytest.mark.requirement("ID", ...)`` and record figures with the ``record_measurement``
fixture; at the end of the session the plugin judges every catalog requirement
(:mod:`centaurus.harness.results`), writes ``results.json`` (+ ``junit.xml`` through pytest) and
renders ``report.html``. With ``--ratchet`` the exit status is decided by the ratchet alone:
every listed ID must be ``met``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from centaurus.harness import catalog as catalog_mod
from centaurus.harness import environment, results
from centaurus.harness.selection import Choice, make_lab, make_target, parse_choice
from centaurus.plugins import PluginError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / "labs" / "default.yaml"
_REQS = pytest.StashKey[list[str]]()
MAX_SAMPLES = 10_000


class Profile:
    """``smoke`` keeps the run short enough for CI; ``full`` uses campaign-sized figures."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def full(self) -> bool:
        return self.name == "full"

    def pick(self, smoke: Any, full: Any) -> Any:
        return full if self.full else smoke


class RatchetError(ValueError):
    pass


def load_ratchet(path: Path, catalog: dict[str, catalog_mod.Requirement]) -> list[str]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise RatchetError(f"cannot read ratchet {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RatchetError(f"{path}: not valid YAML: {exc}") from None
    ids = doc.get("met") if isinstance(doc, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise RatchetError(f"{path}: expected a mapping with a 'met' list of requirement IDs")
    unknown = [i for i in ids if i not in catalog]
    if unknown:
        raise RatchetError(f"{path}: unknown requirement IDs {', '.join(unknown)}")
    return ids


class ConformanceSession:
    """State of one run: what ran, what was measured, what is up."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        opt = config.getoption
        self.catalog = catalog_mod.load(opt("catalog"))
        self.profile = Profile(opt("profile"))
        self.report_dir = Path(opt("report_dir")).resolve()
        self.target_choice = parse_choice(opt("target"), "target")
        lab_text = opt("lab")
        self.lab_choice: Choice | None = None if lab_text == "none" else parse_choice(lab_text, "lab")
        self.lab_spec = Path(opt("lab_spec")).resolve()
        ratchet = opt("ratchet")
        self.ratchet = load_ratchet(Path(ratchet), self.catalog) if ratchet else None
        given_state = opt("state_dir")
        self._own_state = given_state is None
        self.state_dir = Path(given_state or tempfile.mkdtemp(prefix="centaurus-conformance-"))
        self.tests: dict[str, results.TestRecord] = {}
        self.measurements: list[results.Measurement] = []
        self.perf: list[dict[str, Any]] = []
        self.target: Any = None
        self.lab: Any = None
        self.started = datetime.now(UTC)
        self.t0 = time.monotonic()
        self.doc: dict[str, Any] | None = None
        self.target_info: dict[str, Any] = {}
        self.render_error: str | None = None

    # ---- measurements ----------------------------------------------------------------------
    def record(self, nodeid: str, req_id: str, value: float, unit: str,
               labels: dict[str, str] | None) -> results.Measurement:
        if req_id not in self.catalog:
            raise KeyError(f"record_measurement: unknown requirement ID {req_id!r}")
        thr = self.catalog[req_id].threshold_for(labels)
        try:
            met = thr.met_by(value, unit) if thr else None
        except ValueError as exc:
            raise ValueError(f"record_measurement({req_id!r}): {exc} (threshold {thr})") from None
        m = results.Measurement(req_id, float(value), unit, dict(labels or {}), nodeid, met)
        self.measurements.append(m)
        return m

    # ---- outcomes (this object is registered as a pytest plugin) ----------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rec = self.tests.get(report.nodeid)
        if rec is None:
            reqs = list(getattr(report, "centaurus_reqs", []))
            rec = self.tests[report.nodeid] = results.TestRecord(report.nodeid, "passed", 0.0, reqs)
        rec.duration = round(rec.duration + report.duration, 3)
        if report.skipped:
            rec.outcome, rec.message = "skipped", _skip_reason(report)
        elif report.failed:
            rec.outcome = "failed" if report.when == "call" else "error"
            rec.message = _failure_line(report)

    # ---- end of run ------------------------------------------------------------------------
    def capture_target(self) -> None:
        """Describe the target while it is still up (``describe`` after ``down`` knows less)."""
        self.target_info = {"name": self.target_choice.name, "arg": self.target_choice.arg}
        if self.target is not None:
            with contextlib.suppress(Exception):
                self.target_info.update(self.target.describe())

    def finish(self) -> dict[str, Any]:
        if not self.target_info:
            self.capture_target()
        target_info = self.target_info
        run = {
            "started": self.started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.t0, 1),
            "profile": self.profile.name,
            "lab": None if self.lab_choice is None else {
                "backend": self.lab_choice.name, "spec": str(self.lab_spec)},
            "ratchet": self.ratchet,
        }
        self.doc = results.build(
            self.catalog, list(self.tests.values()), self.measurements,
            target=target_info, environment=environment.collect(), perf=self.perf, run=run,
        )
        results.write_json(self.report_dir / "results.json", self.doc)
        return self.doc

    def ratchet_failures(self) -> list[str]:
        if not self.ratchet or self.doc is None:
            return []
        status = {r["id"]: r["status"] for r in self.doc["requirements"]}
        return [f"{i} is {status[i]}" for i in self.ratchet if status[i] != "met"]

    def teardown(self) -> None:
        for thing in (self.target, self.lab):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.down()
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)


_SESSION = pytest.StashKey[ConformanceSession]()


def _session(config: pytest.Config) -> ConformanceSession:
    return config.stash[_SESSION]


# ---- hooks -------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("centaurus", "Centaurus conformance")
    g.addoption("--target", default="builtin",
                help="control plane under test: builtin | kubeconfig=PATH (default builtin)")
    g.addoption("--lab", default="netns", help="lab backend: netns | vagrant | ssh | none")
    g.addoption("--lab-spec", default=str(DEFAULT_SPEC), help="lab topology spec (YAML)")
    g.addoption("--profile", default="smoke", choices=("smoke", "full"), help="run size")
    g.addoption("--report-dir", default=str(ROOT / "reports" / "out"), help="where reports go")
    g.addoption("--catalog", default=None, help="requirement catalog (default conformance/requirements.yaml)")
    g.addoption("--ratchet", default=None, help="YAML listing IDs that must be met; decides exit status")
    g.addoption("--state-dir", default=None, help="state dir for target and lab (default: a temp dir)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(*ids): requirement IDs this test proves")
    try:
        sess = ConformanceSession(config)
    except (catalog_mod.CatalogError, PluginError, RatchetError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SESSION] = sess
    config.pluginmanager.register(sess, "centaurus-conformance-session")
    if not getattr(config.option, "xmlpath", None):
        sess.report_dir.mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(sess.report_dir / "junit.xml")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    sess = _session(config)
    for item in items:
        ids: list[str] = []
        for mark in item.iter_markers("requirement"):
            ids.extend(mark.args)
        bad = [i for i in ids if i not in sess.catalog]
        if bad:
            raise pytest.UsageError(f"{item.nodeid}: unknown requirement ID(s) {', '.join(bad)}")
        item.stash[_REQS] = ids


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    rep = outcome.get_result()
    rep.centaurus_reqs = item.stash.get(_REQS, [])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    sess = _session(session.config)
    sess.capture_target()
    sess.teardown()
    if session.config.option.collectonly:
        return  # nothing ran: a collection must not overwrite the last run's report
    doc = sess.finish()
    # results.json is written; a broken renderer must not turn the run into an INTERNALERROR.
    try:
        from centaurus.reports.render import render_html

        render_html(sess.report_dir, doc)
    except Exception as exc:
        sess.render_error = f"report.html not written: {type(exc).__name__}: {exc}"
    if sess.ratchet is not None and exitstatus in (0, 1):
        session.exitstatus = 1 if sess.ratchet_failures() else 0


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    sess = _session(config)
    if sess.doc is None:
        return
    tr = terminalreporter
    counts = sess.doc["summary"]
    tr.section("centaurus conformance")
    tr.write_line("requirements: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for r in sess.doc["requirements"]:
        if r["measured"] is not None:
            thr = "" if r["threshold"] is None else f" (threshold {r['op']} {r['threshold']:g} {r['unit']})"
            tr.write_line(f"  {r['id']:<12} {r['status']:<14} measured {r['measured']:g} {r['unit']}{thr}")
    tr.write_line(f"report: {sess.report_dir}/results.json, report.html, junit.xml")
    if sess.render_error:
        tr.write_line(sess.render_error, red=True)
    if sess.ratchet is not None:
        fails = sess.ratchet_failures()
        if fails:
            tr.write_line("RATCHET FAILED: " + "; ".join(fails), red=True)
        else:
            tr.write_line(f"ratchet held: {len(sess.ratchet)} requirement(s) met", green=True)


def cap_samples(values: list[float], cap: int = MAX_SAMPLES) -> list[float]:
    """At most ``cap`` raw samples per PerfData item, chosen evenly from the sorted values, so a
    CDF drawn from them keeps its shape (min and max included) while results.json stays small."""
    if len(values) <= cap:
        return values
    ordered = sorted(values)
    step = (len(ordered) - 1) / (cap - 1)
    return [ordered[round(i * step)] for i in range(cap)]


def _skip_reason(report: pytest.TestReport) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ")
    return str(lr)


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0][:300] if crash.message else "failed"
    return str(report.longrepr).strip().splitlines()[-1][:300] if report.longrepr else "failed"


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def conformance(pytestconfig: pytest.Config) -> ConformanceSession:
    return _session(pytestconfig)


@pytest.fixture(scope="session")
def catalog(conformance: ConformanceSession) -> dict[str, catalog_mod.Requirement]:
    return conformance.catalog


@pytest.fixture(scope="session")
def profile(conformance: ConformanceSession) -> Profile:
    return conformance.profile


@pytest.fixture(scope="session")
def lab(conformance: ConformanceSession) -> Any:
    """The lab handle, brought up once per run; ``None`` with ``--lab none``."""
    if conformance.lab_choice is None:
        return None
    if conformance.lab is None:
        from centaurus.labs.spec import load_spec

        lab = make_lab(conformance.lab_choice, conformance.state_dir / "lab")
        conformance.lab = lab
        lab.up(load_spec(conformance.lab_spec))
    return conformance.lab


@pytest.fixture(scope="session")
def target(conformance: ConformanceSession, request: pytest.FixtureRequest) -> Any:
    """The control plane under test, up for the whole run."""
    if conformance.target is None:
        from centaurus.targets.base import TargetContext

        lab = request.getfixturevalue("lab") if conformance.lab_choice is not None else None
        tgt = make_target(conformance.target_choice)
        ctx = TargetContext(state_dir=conformance.state_dir / "target", lab=lab,
                            profile=conformance.profile.name)
        conformance.target = tgt
        tgt.up(ctx)
    return conformance.target


@pytest.fixture(scope="session")
def api(target: Any) -> Any:
    """REST client of the system tenant's admin."""
    return target.client()


def require(target: Any, *caps: str) -> None:
    """Check that ``target`` provides ``caps`` before a test uses them.

    A capability the target does not *promise* (``target.promised_capabilities``, absent for a
    foreign cluster reached by kubeconfig) makes the test ``not-applicable``: plain Kubernetes has
    no tenants, and that is not a defect of it. A capability the target promises but does not
    provide yet (the builtin implementation promises the whole whitepaper) fails the test: that
    requirement is simply not met yet.
    """
    have = target.capabilities()
    missing = [c for c in caps if c not in have]
    if not missing:
        return
    promised = frozenset(getattr(target, "promised_capabilities", frozenset()))
    owed = [c for c in missing if c in promised]
    if owed:
        pytest.fail(f"target {target.name!r} does not provide {', '.join(owed)} yet", pytrace=False)
    pytest.skip(f"{results.NA_PREFIX} target {target.name!r} lacks {', '.join(missing)}")


@pytest.fixture
def requires(target: Any) -> Callable[..., None]:
    """``requires("tenants", "vm-pods")``: see :func:`require`."""

    def check(*caps: str) -> None:
        require(target, *caps)

    return check


@pytest.fixture
def record_measurement(request: pytest.FixtureRequest,
                       conformance: ConformanceSession) -> Callable[..., results.Measurement]:
    """``record_measurement(id, value, unit, labels=None, check=True)``.

    Records a figure against a requirement; with ``check`` the test fails when the figure misses
    the catalog threshold, with both numbers in the message.
    """

    def rec(req_id: str, value: float, unit: str, labels: dict[str, str] | None = None,
            check: bool = True) -> results.Measurement:
        m = conformance.record(request.node.nodeid, req_id, value, unit, labels)
        thr = conformance.catalog[req_id].threshold_for(labels)
        if check and m.met is False:
            pytest.fail(f"{req_id}: measured {value:g} {unit}, threshold {thr}")
        return m

    return rec


@pytest.fixture
def record_perfdata(conformance: ConformanceSession) -> Callable[[dict[str, Any]], None]:
    """Add a clusterloader2 PerfData item (``{"data": {...}, "unit", "labels"}``) to the report."""

    def rec(item: dict[str, Any]) -> None:
        if not isinstance(item.get("data"), dict) or "unit" not in item:
            raise ValueError("PerfData item needs 'data' (mapping) and 'unit'")
        item.setdefault("labels", {})
        samples = item.get("samples")
        if samples is not None:
            item["samples"] = cap_samples([float(x) for x in samples])
        conformance.perf.append(item)

    return rec
