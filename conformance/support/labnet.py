"""TCP/UDP/ICMP checks between lab hosts, with plain Python inside each host's netns (no iperf).

The lab runs commands inside a host's network namespace on this machine (same filesystem), so the
helpers start this interpreter there with a tiny script. Servers report the peer address they
saw, which lets tests check source addresses (NAT, isolation) and not only reachability.
"""

from __future__ import annotations

import contextlib
import json
import select
import signal
import subprocess
import sys
from typing import Any

PY = sys.executable

_SERVER = r"""
import json, signal, socket, sys
proto, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = {}
def done(*_):
    print(json.dumps(seen), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
if proto == "tcp":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    print("ready", flush=True)
    while True:
        c, (ip, _) = s.accept()
        seen[ip] = seen.get(ip, 0) + 1
        with c:
            c.sendall(f"{token} {ip}\n".encode())
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data, (ip, _) = s.recvfrom(65535)
        seen[ip] = seen.get(ip, 0) + 1
"""

_TCP_CLIENT = r"""
import socket, sys
ip, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    with socket.create_connection((ip, port), timeout=timeout) as c:
        c.settimeout(timeout)
        print(c.makefile().readline().strip())
except OSError as exc:
    print(f"error: {exc}", file=sys.stderr); sys.exit(1)
"""

_UDP_SEND = r"""
import socket, sys, time
ip, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(b"x" * size, (ip, port))
    time.sleep(0.002)
"""


class Server:
    """A TCP or UDP server inside a lab host; ``stop()`` returns ``{peer_ip: count}``."""

    def __init__(self, lab: Any, host: str, port: int, proto: str = "tcp", token: str = "hello") -> None:
        self.lab, self.host, self.port, self.proto, self.token = lab, host, port, proto, token
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: dict[str, int] = {}

    def __enter__(self) -> Server:
        self.proc = self.lab.popen(self.host, [PY, "-c", _SERVER, self.proto, str(self.port), self.token],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 10.0)
        line = self.proc.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            err = b""
            with contextlib.suppress(Exception):
                self.proc.kill()
                _, err = self.proc.communicate(timeout=3)
            raise AssertionError(f"{self.proto} server on {self.host}:{self.port} did not start: "
                                 f"{err.decode(errors='replace')[-300:]}")
        return self

    def stop(self) -> dict[str, int]:
        if self.proc is None:
            return self.seen
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=5)
            self.seen = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            self.proc.kill()
            self.proc.communicate(timeout=3)
        self.proc = None
        return self.seen

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tcp_request(lab: Any, host: str, ip: str, port: int, timeout: float = 3.0) -> str | None:
    """The line the server at ip:port answers (``"<token> <peer ip>"``), or None if unreachable."""
    cp = lab.run(host, [PY, "-c", _TCP_CLIENT, ip, str(port), str(timeout)], timeout=timeout + 10,
                 check=False)
    return cp.stdout.strip() if cp.returncode == 0 else None


def udp_send(lab: Any, host: str, ip: str, port: int, count: int = 20, size: int = 64) -> None:
    lab.run(host, [PY, "-c", _UDP_SEND, ip, str(port), str(count), str(size)], timeout=30)


def ping(lab: Any, host: str, ip: str, count: int = 2, wait: float = 1.0) -> bool:
    cp = lab.run(host, ["ping", "-c", str(count), "-W", f"{wait:g}", "-q", ip],
                 timeout=count * (wait + 1) + 10, check=False)
    return bool(cp.returncode == 0)


_CAPTURE = r"""
import json, subprocess, sys, time
from scapy.all import AsyncSniffer, bytes_hex
flt, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout)
ifaces = [l["ifname"] for l in links if l["ifname"] != "lo" and "UP" in l.get("flags", [])
          and l.get("link_type") == "ether" and not l.get("linkinfo", {}).get("info_kind") == "bridge"]
sn = AsyncSniffer(iface=ifaces, filter=flt, count=count, store=True)
sn.start()
time.sleep(0.5)
print("ready", flush=True)
sn.join(timeout=timeout)
if sn.running:
    sn.stop()
for p in sn.results or []:
    doc = {"iface": getattr(p, "sniffed_on", ""), "hex": bytes_hex(bytes(p)).decode()}
    print(json.dumps(doc), flush=True)
"""


class Capture:
    """Sniff frames matching a BPF filter on every ethernet interface of a lab host (scapy, in
    the host's netns) until ``count`` frames (0: no limit) or ``timeout`` seconds. Use it where
    frames pass through the kernel (e.g. the substrate switch): XDP-redirected frames are invisible
    to packet sockets on the hosts that redirect them. A switch sees a frame once per port it
    crosses, so count distinct frames."""

    def __init__(self, lab: Any, host: str, bpf_filter: str, count: int = 20, timeout: float = 8.0) -> None:
        self.lab, self.host, self.filter, self.count, self.timeout = lab, host, bpf_filter, count, timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.frames: list[bytes] = []

    def __enter__(self) -> Capture:
        argv = [PY, "-c", _CAPTURE, self.filter, str(self.count), str(self.timeout)]
        self.proc = self.lab.popen(self.host, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        if not ready or self.proc.stdout.readline().strip() != b"ready":
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
            why = err.decode(errors="replace")[-300:]
            raise AssertionError(f"capture on {self.host} did not start: {why}")
        return self

    def wait(self) -> list[bytes]:
        assert self.proc is not None
        out, _ = self.proc.communicate(timeout=self.timeout + 15)
        self.frames = [bytes.fromhex(json.loads(line)["hex"]) for line in out.decode().splitlines()
                       if line.startswith("{")]
        self.proc = None
        return self.frames

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.kill()
                self.proc.communicate(timeout=5)


def xdp_attachment(lab: Any, host: str, ifname: str) -> dict[str, Any] | None:
    """``ip -d -j link`` view of the XDP program on ``ifname`` in ``host`` (None when none):
    ``{"mode": 1 (native) | 2 (generic) | 3 (offload) | 4 (multi), "prog": {...}}``."""
    cp = lab.run(host, ["ip", "-d", "-j", "link", "show", "dev", ifname], timeout=15)
    info = json.loads(cp.stdout)[0]
    xdp = info.get("xdp")
    return xdp if isinstance(xdp, dict) else None


def ping_count(lab: Any, host: str, ip: str, count: int, interval: float = 0.02) -> int:
    """Echo replies received for ``count`` requests sent ``interval`` seconds apart."""
    cp = lab.run(host, ["ping", "-n", "-q", "-c", str(count), "-i", f"{interval:g}", "-W", "1", ip],
                 timeout=count * (interval + 0.1) + 15, check=False)
    for part in cp.stdout.replace(",", "\n").splitlines():
        if part.strip().endswith("received"):
            return int(part.split()[0])
    return 0
