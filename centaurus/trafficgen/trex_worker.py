"""TRex STL worker process: ``python -m centaurus.trafficgen.trex_worker '{"server": ...}'``.

Runs in its own process because ``lbr_trex_client`` replaces scapy with the copy it bundles.
Reads one JSON request per line on stdin (``info``, ``trial``, ``close``) and answers one JSON
line each on stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``). Connects on
the first request, disconnects (releasing the ports, stopping traffic) on ``close`` or EOF.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from centaurus.trafficgen.trex import TrexSession


def handle(session: TrexSession, req: dict[str, Any]) -> dict[str, Any]:
    """One request against a connected session (pure: tests call it with a fake session)."""
    op = req.get("op")
    if op == "info":
        return {"ok": True, **session.info()}
    if op == "trial":
        out = session.trial(
            tx=int(req["tx"]),
            rx=int(req["rx"]),
            frame=bytes.fromhex(req["frame_hex"]),
            rate_pps=float(req.get("rate_pps", 0.0)),
            duration_s=float(req["duration_s"]),
            flows=int(req.get("flows", 1)),
            latency_pps=float(req.get("latency_pps", 0.0)),
        )
        return {"ok": True, **out}
    return {"ok": False, "error": f"unknown op {op!r}"}


def _connect(args: dict[str, Any]) -> tuple[Any, TrexSession]:
    import lbr_trex_client  # noqa: F401  (puts trex.* on sys.path)
    from trex.stl import api

    client = api.STLClient(
        server=args.get("server", "localhost"),
        sync_port=int(args.get("sync_port", 4501)),
        async_port=int(args.get("async_port", 4500)),
    )
    client.connect()
    return client, TrexSession(client, api)


def main() -> int:
    args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    client: Any = None
    session: TrexSession | None = None
    out = sys.stdout
    try:
        for line in sys.stdin:
            req = json.loads(line)
            if req.get("op") == "close":
                break
            try:
                if session is None:
                    client, session = _connect(args)
                resp = handle(session, req)
            except Exception as exc:  # STLError and friends: report, keep serving
                resp = {
                    "ok": False,
                    "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
                    if str(exc).strip()
                    else type(exc).__name__,
                }
            out.write(json.dumps(resp, default=str) + "\n")
            out.flush()
    finally:
        if client is not None:
            try:
                client.disconnect()
            except Exception:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
