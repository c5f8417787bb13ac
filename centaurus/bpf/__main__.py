"""``python -m centaurus.bpf [--json]``: load every built XDP object and print each program's
verifier figures (instructions processed, size after rewrites, JIT size) -- the complexity
record the report keeps so regressions show."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from centaurus.bpf.obj import verifier_stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m centaurus.bpf", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    stats = verifier_stats()
    if a.json:
        json.dump({k: asdict(v) for k, v in stats.items()}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'program':28s} {'verified insns':>15s} {'xlated insns':>13s} {'jited bytes':>12s}")
    for name, i in stats.items():
        print(f"{name:28s} {i.verified_insns:15d} {i.xlated_insns:13d} {i.jited_bytes:12d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
