"""``python -m centaurus.transitd.protos``: (re)generate the protobuf modules when stale."""

from centaurus.transitd.protos import ensure

ensure()
