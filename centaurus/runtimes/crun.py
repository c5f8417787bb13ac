"""crun invocations. Every crun process is spawned from the private-mount-namespace worker
(:mod:`centaurus.runtimes.spawn`) with its output redirected to files -- never to pipes: a
detached container inherits crun's stdio and would hold a pipe open forever (the ``run -d`` hang
NOTES.md describes)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from centaurus.runtimes import linux, spawn
from centaurus.runtimes.spawn import PrivateMountWorker

CRUN = shutil.which("crun") or "/usr/bin/crun"


@dataclass
class CrunResult:
    code: int
    error: str  # last error line crun logged ("" when none)


def base_argv(root: Path, log: Path | None = None) -> list[str]:
    argv = [CRUN, "--root", str(root)]
    if log is not None:
        argv += [f"--log=file:{log}", "--log-format=json"]
    return argv


def last_error(log: Path) -> str:
    """The last ``error`` message of a crun JSON log (crun's own words for why it failed)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("level") in ("error", "fatal"):
            return str(doc.get("msg", ""))
    return lines[-1].strip() if lines else ""


async def run_quiet(worker: PrivateMountWorker, argv: list[str], log: Path) -> CrunResult:
    """Run a short crun command (delete, kill, ...) with output to ``log``; wait for it."""

    def start() -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return spawn.spawn(argv, stdin=null, stdout=fd, stderr=fd)
        finally:
            os.close(fd)
            os.close(null)

    pid = await worker.call(start)
    status = await linux.wait_pid(pid)
    code = linux.exit_code_from_status(status) if status is not None else 255
    return CrunResult(code, "" if code == 0 else last_error(log))


def state(root: Path, cid: str) -> dict[str, object] | None:
    """crun's state file, read directly (no process): ``<root>/<id>/status`` is crun's JSON record."""
    try:
        return dict(json.loads((root / cid / "status").read_text()))
    except (OSError, ValueError):
        return None
