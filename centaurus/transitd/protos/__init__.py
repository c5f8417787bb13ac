"""Protocol buffers of transitd (``transit.proto``) and their generated Python modules.

The ``*_pb2.py`` files are generated, not committed: protobuf's generated code checks the
runtime version it was made for, so it is produced by the installed ``grpcio-tools`` -- by the
bootstrap step ``ci/bootstrap.d/21-transitd-protos.sh`` (``python -m centaurus.transitd.protos``),
or by :func:`load` on first use when missing or older than the ``.proto``. No ``_pb2_grpc``
module is generated: :mod:`centaurus.transitd.rpc` builds the service table from the
descriptor itself. The module is imported dynamically and typed ``Any`` (protobuf ships no type
information mypy could check it against), as the etcd store does.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # the directory holding the `centaurus` package
PROTOS = ("transit",)


def _stamp(name: str) -> str:
    return hashlib.sha256((HERE / f"{name}.proto").read_bytes()).hexdigest()[:16]


def stale(name: str) -> bool:
    stamp = HERE / f".{name}.stamp"
    gen = HERE / f"{name}_pb2.py"
    try:
        return not gen.exists() or stamp.read_text().strip() != _stamp(name)
    except OSError:
        return True


def generate(name: str) -> None:
    """Run protoc (grpcio-tools) into a temp dir and move the results in atomically."""
    rel = (HERE / f"{name}.proto").relative_to(ROOT)
    with tempfile.TemporaryDirectory(dir=HERE, prefix=".gen-") as tmp:
        cp = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}", f"--python_out={tmp}", str(rel)],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )
        if cp.returncode != 0:
            raise RuntimeError(f"protoc {rel}: {cp.stderr.strip()}")
        out = Path(tmp) / rel.parent
        os.replace(out / f"{name}_pb2.py", HERE / f"{name}_pb2.py")
    stamp = HERE / f".{name}.stamp"
    tmp_stamp = stamp.with_suffix(f".{os.getpid()}")
    tmp_stamp.write_text(_stamp(name) + "\n")
    os.replace(tmp_stamp, stamp)


def ensure() -> None:
    for name in PROTOS:
        if stale(name):
            generate(name)


def load(name: str = "transit") -> Any:
    """The generated ``<name>_pb2`` module (generated first when needed)."""
    if stale(name):
        generate(name)
    return importlib.import_module(f"centaurus.transitd.protos.{name}_pb2")


if __name__ == "__main__":
    ensure()
