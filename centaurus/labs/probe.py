"""Traffic probes run inside lab hosts: ``python -m centaurus.labs.probe <cmd>``.

Servers print one JSON line ``{"ready": true, ...}`` once bound, so a caller can wait for them
without sleeping; every command ends with one JSON line of results. Only the standard library
is used: a probe starts in ~40 ms inside any namespace.

  tcp-echo  --bind IP --port P [--conns N]     echo every byte back, N connections, then exit
  tcp-send  --to IP --port P --bytes N         send N random bytes, read them back, compare
  udp-echo  --bind IP --port P [--idle S]      echo datagrams (with the server's --name; --silent: count)
  udp-send  --to IP --port P --count N         N datagrams from N source ports, count echoes
  udp-blast --to IP --port P --count N         one-way datagrams from N source ports
  http-get  --url URL --count N                N fresh connections; sha256 and bodies seen
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from typing import Any


def _out(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def tcp_echo(a: argparse.Namespace) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.bind, a.port))
    srv.listen(16)
    srv.settimeout(a.timeout)
    _out({"ready": True, "port": srv.getsockname()[1]})
    total = 0
    for _ in range(a.conns):
        conn, _peer = srv.accept()
        conn.settimeout(a.timeout)
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
                total += len(data)
    _out({"echoed": total})


def tcp_send(a: argparse.Namespace) -> None:
    payload = os.urandom(a.bytes)
    t0 = time.monotonic()
    back = bytearray()
    with socket.create_connection((a.to, a.port), timeout=a.timeout) as s:
        s.settimeout(a.timeout)

        def send() -> None:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        try:
            while chunk := s.recv(262144):
                back += chunk
        except TimeoutError:
            pass
        t.join(a.timeout)
    dt = time.monotonic() - t0
    _out({"sent": len(payload), "received": len(back), "identical": bytes(back) == payload,
          "sha256": hashlib.sha256(payload).hexdigest(), "seconds": round(dt, 4)})


def udp_echo(a: argparse.Namespace) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    s.settimeout(a.idle)
    _out({"ready": True, "port": s.getsockname()[1]})
    seen: Counter[str] = Counter()
    while True:
        try:
            data, peer = s.recvfrom(65535)
        except TimeoutError:
            break
        seen[peer[0]] += 1
        if not a.silent:
            s.sendto((a.name + "|").encode() + data, peer)
    _out({"received": sum(seen.values()), "peers": dict(seen)})


def udp_send(a: argparse.Namespace) -> None:
    names: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    ok = 0
    for i in range(a.count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # fresh source port per flow
            s.settimeout(a.timeout)
            msg = f"probe-{i}-".encode() + os.urandom(16).hex().encode()
            s.sendto(msg, (a.to, a.port))
            try:
                data, src = s.recvfrom(65535)
            except TimeoutError:
                continue
            sources[src[0]] += 1
            name, _, body = data.partition(b"|")
            if body == msg:
                ok += 1
                names[name.decode()] += 1
    _out({"sent": a.count, "echoed": ok, "servers": dict(names), "sources": dict(sources)})


def udp_blast(a: argparse.Namespace) -> None:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(a.count)]
    try:
        for i, s in enumerate(socks):
            s.sendto(f"blast-{i}".encode(), (a.to, a.port))
    finally:
        for s in socks:
            s.close()
    _out({"sent": a.count})


def http_get(a: argparse.Namespace) -> None:
    bodies: Counter[str] = Counter()
    digests: set[str] = set()
    failures = 0
    for _ in range(a.count):
        try:
            with urllib.request.urlopen(a.url, timeout=a.timeout) as r:  # new connection each time
                body = r.read()
        except OSError:
            failures += 1
            continue
        digests.add(hashlib.sha256(body).hexdigest())
        bodies[body[:64].decode(errors="replace").strip()] += 1
    _out({"requests": a.count, "failures": failures, "sha256": sorted(digests), "bodies": dict(bodies)})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="centaurus.labs.probe")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("tcp-echo")
    c.add_argument("--bind", default="0.0.0.0")
    c.add_argument("--port", type=int, default=0)
    c.add_argument("--conns", type=int, default=1)
    c.add_argument("--timeout", type=float, default=30.0)
    c.set_defaults(fn=tcp_echo)
    c = sub.add_parser("tcp-send")
    c.add_argument("--to", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--bytes", type=int, default=1 << 20)
    c.add_argument("--timeout", type=float, default=10.0)
    c.set_defaults(fn=tcp_send)
    c = sub.add_parser("udp-echo")
    c.add_argument("--bind", default="0.0.0.0")
    c.add_argument("--port", type=int, default=0)
    c.add_argument("--idle", type=float, default=10.0)
    c.add_argument("--name", default=socket.gethostname())
    c.add_argument("--silent", action="store_true", help="count only, never reply")
    c.set_defaults(fn=udp_echo)
    c = sub.add_parser("udp-send")
    c.add_argument("--to", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--count", type=int, default=10)
    c.add_argument("--timeout", type=float, default=2.0)
    c.set_defaults(fn=udp_send)
    c = sub.add_parser("udp-blast")
    c.add_argument("--to", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--count", type=int, default=64)
    c.set_defaults(fn=udp_blast)
    c = sub.add_parser("http-get")
    c.add_argument("--url", required=True)
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--timeout", type=float, default=5.0)
    c.set_defaults(fn=http_get)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
