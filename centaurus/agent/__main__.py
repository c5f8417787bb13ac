"""``python -m centaurus.agent --config agent.json [--cleanup]``: one node agent process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from centaurus.agent.agent import run
from centaurus.agent.config import AgentConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="centaurus-agent")
    ap.add_argument("--config", required=True, help="agent config JSON (see centaurus/agent/config.py)")
    ap.add_argument("--cleanup", action="store_true", help="remove what the agent left behind, then exit")
    args = ap.parse_args(argv)
    try:
        cfg = AgentConfig.load(Path(args.config))
    except (OSError, ValueError, TypeError) as exc:
        print(f"centaurus-agent: bad config: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(run(cfg, cleanup=args.cleanup))


if __name__ == "__main__":
    sys.exit(main())
