"""Functional traffic between lab hosts: ICMP, TCP (byte-for-byte), UDP, HTTP.

Used by the dataplane tests and the conformance suite alike. Servers are started with
:meth:`Lab.popen` inside the destination host and announce readiness on stdout (see
:mod:`centaurus.labs.probe`); every helper returns the probe's JSON result so a failing test can
show what was seen.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROBE = [sys.executable, "-m", "centaurus.labs.probe"]


class TrafficError(RuntimeError):
    pass


def ping(lab: Any, src: str, dst_ip: str, count: int = 3, timeout: float = 1.0,
         interval: float = 0.05) -> int:
    """Echo replies received from ``dst_ip`` (0 when unreachable)."""
    cp = lab.run(src, ["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", str(timeout), dst_ip],
                 check=False, timeout=count * (timeout + interval) + 5)
    m = re.search(r"(\d+) (?:packets )?received", cp.stdout)
    return int(m.group(1)) if m else 0


def _read_json_line(p: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert p.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        chunk = p.stdout.readline()
        if not chunk:
            break
        buf = chunk
        try:
            doc: dict[str, Any] = json.loads(buf)
            return doc
        except ValueError:
            continue
    err = p.stderr.read().decode(errors="replace")[-300:] if p.stderr and p.poll() is not None else ""
    raise TrafficError(f"probe gave no result within {timeout:.0f} s {err.strip()!r}")


@contextlib.contextmanager
def server(lab: Any, host: str, argv: list[str], timeout: float = 10.0) -> Iterator[subprocess.Popen[bytes]]:
    """Start a probe server on ``host``, wait for its ready line, stop it on exit."""
    p = lab.popen(host, [*PROBE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  stdin=subprocess.DEVNULL)
    try:
        _read_json_line(p, timeout)
        yield p
    finally:
        if p.poll() is None:
            p.terminate()
        with contextlib.suppress(Exception):
            p.wait(timeout=3)
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()


def probe(lab: Any, host: str, argv: list[str], timeout: float = 30.0) -> dict[str, Any]:
    cp = lab.run(host, [*PROBE, *argv], check=False, timeout=timeout)
    for line in reversed(cp.stdout.strip().splitlines()):
        with contextlib.suppress(ValueError):
            doc: dict[str, Any] = json.loads(line)
            return doc
    raise TrafficError(f"probe {argv[0]} on {host} failed (rc {cp.returncode}): {cp.stderr.strip()[-300:]}")


def tcp_transfer(lab: Any, src: str, dst: str, dst_ip: str, nbytes: int = 1 << 20, port: int = 5201,
                 timeout: float = 20.0) -> dict[str, Any]:
    """Send ``nbytes`` random bytes from ``src`` to an echo server on ``dst``; they must come back
    identical (``result["identical"]``)."""
    with server(lab, dst, ["tcp-echo", "--bind", dst_ip, "--port", str(port), "--timeout", str(timeout)]):
        try:
            return probe(lab, src, ["tcp-send", "--to", dst_ip, "--port", str(port), "--bytes", str(nbytes),
                                    "--timeout", str(timeout / 2)], timeout=timeout)
        except TrafficError as exc:
            return {"sent": nbytes, "received": 0, "identical": False, "error": str(exc)}


def udp_exchange(lab: Any, src: str, dst: str, dst_ip: str, count: int = 10, port: int = 5301,
                 name: str = "") -> dict[str, Any]:
    """``count`` datagrams, each from a fresh source port, echoed back by ``dst``."""
    with server(lab, dst, ["udp-echo", "--bind", "0.0.0.0", "--port", str(port), "--name", name or dst,
                           "--idle", "15"]):
        return udp_send(lab, src, dst_ip, count, port)


def udp_send(lab: Any, src: str, dst_ip: str, count: int = 10, port: int = 5301) -> dict[str, Any]:
    """Datagrams to already running echo server(s): which servers answered, from which address."""
    return probe(lab, src, ["udp-send", "--to", dst_ip, "--port", str(port), "--count", str(count),
                            "--timeout", "1"], timeout=count * 1.5 + 10)


@contextlib.contextmanager
def http_server(lab: Any, host: str, body: bytes, port: int = 8080) -> Iterator[Path]:
    """``python -m http.server`` in ``host`` serving ``index.html`` = ``body``."""
    with tempfile.TemporaryDirectory(prefix="cl-http-") as d:
        root = Path(d)
        (root / "index.html").write_bytes(body)
        p = lab.popen(host, [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "--directory", d,
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                      stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cp = lab.run(host, ["ss", "-Hltn", f"sport = :{port}"], check=False)
                if cp.stdout.strip():
                    break
                time.sleep(0.05)
            else:
                raise TrafficError(f"http.server on {host} did not listen on {port}")
            yield root
        finally:
            p.terminate()
            with contextlib.suppress(Exception):
                p.wait(timeout=3)
            if p.poll() is None:
                p.kill()
                p.wait()


def http_get(lab: Any, src: str, url: str, count: int = 1) -> dict[str, Any]:
    return probe(lab, src, ["http-get", "--url", url, "--count", str(count)])
