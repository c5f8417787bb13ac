"""Run real kubectl binaries against the target: the compatibility requirements are about them.

Two generations are checked (NOTES.md): the machine's kubectl 1.33 (what users run today; speaks
protobuf for built-in kinds, fetches /openapi/v3) and Debian's kubectl 1.20 (JSON without a
Content-Type on create, /openapi/v2 protobuf for apply). Each runner has its own ``--cache-dir``
and ``HOME`` so discovery caches of different servers and runs never mix, and nothing touches the
user's ``~/.kube``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BINARIES: dict[str, Path] = {
    "1.33": Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33"),
    "1.20": ROOT / ".tools" / "kubectl-1.20" / "usr" / "bin" / "kubectl",
}
VERSIONS = tuple(BINARIES)


class KubectlError(AssertionError):
    """kubectl exited non-zero; the message has the command line, exit code and stderr."""


def binary(version: str) -> Path:
    path = BINARIES[version]
    if not path.exists() and version == "1.33" and shutil.which("kubectl"):
        return Path(str(shutil.which("kubectl")))
    if not path.exists():
        raise FileNotFoundError(f"kubectl {version} not found at {path} (run ci/bootstrap)")
    return path


class Kubectl:
    """``Kubectl(version, kubeconfig, workdir)``; ``run``/``json``/``apply`` with hard timeouts."""

    def __init__(self, version: str, kubeconfig: Path, workdir: Path) -> None:
        self.version = version
        self.binary = binary(version)
        self.kubeconfig = Path(kubeconfig)
        self.workdir = Path(workdir)
        self.cache_dir = self.workdir / "cache"
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir),
                "LANG": "C.UTF-8"}

    def run(self, *args: str, input: str | None = None, timeout: float = 60.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}",
                "--request-timeout=30s", *args]
        try:
            cp = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                                env=self._env(), cwd=self.workdir,
                                stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise KubectlError(f"kubectl {self.version} {' '.join(args)}: no answer within "
                               f"{timeout:g} s") from exc
        if check and cp.returncode != 0:
            raise KubectlError(f"kubectl {self.version} {' '.join(args)} exited {cp.returncode}: "
                               f"{cp.stderr.strip()[-800:]}")
        return cp

    def json(self, *args: str, timeout: float = 60.0) -> Any:
        return json.loads(self.run(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, manifests: dict[str, Any] | Sequence[dict[str, Any]], *extra: str,
              timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        docs = [manifests] if isinstance(manifests, dict) else list(manifests)
        return self.run("apply", "-f", "-", *extra, input=yaml.safe_dump_all(docs), timeout=timeout)

    def create(self, manifest: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-f", "-", *extra, input=yaml.safe_dump(manifest))
