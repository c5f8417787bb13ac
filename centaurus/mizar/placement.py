"""Which droplets host a subnet's bouncers and a VPC's dividers (pure logic).

Rules, in order: keep what is placed and still usable (moving a bouncer costs re-programming
every endpoint of its net on the new host); never two of the same object set on one droplet;
prefer droplets in zones the set does not use yet (an AZ failure takes one bouncer, not all);
then the least loaded (bouncers + dividers already hosted); ties broken by rendezvous hashing of
(object, droplet), so independent operator instances choose alike and a new droplet steals only
its share. Hollow droplets serve only hollow VPCs (scale runs) and real ones only real VPCs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    name: str
    zone: str = ""
    load: int = 0


def _score(key: str, droplet: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|{droplet}".encode(), digest_size=8).digest(), "big")


def place(key: str, count: int, candidates: Sequence[Candidate], current: Sequence[str] = ()) -> list[str]:
    """``count`` droplets for the object set ``key`` (e.g. a subnet's bouncers); ``current``
    lists the droplets it holds now. Fewer than ``count`` when there are not enough droplets."""
    by_name: Mapping[str, Candidate] = {c.name: c for c in candidates}
    keep = [n for n in dict.fromkeys(current) if n in by_name]
    if len(keep) > count:  # scale down: drop the most loaded, then the worst-scored
        keep.sort(key=lambda n: (by_name[n].load, -_score(key, n)))
        keep = keep[:count]
        return sorted(keep, key=lambda n: list(current).index(n))
    chosen = list(keep)
    zones = {by_name[n].zone for n in chosen}
    pool = [c for c in candidates if c.name not in chosen]
    while len(chosen) < count and pool:
        pool.sort(key=lambda c: (c.zone in zones and bool(c.zone), c.load, -_score(key, c.name)))
        pick = pool.pop(0)
        chosen.append(pick.name)
        zones.add(pick.zone)
    return chosen
