#!/usr/bin/env bash
# Generate the etcd v3 protobuf messages used by centaurus.store.etcd from the committed
# centaurus/store/etcdpb/rpc.proto (own subset of etcd's API). Idempotent: does nothing when the
# generated module is newer than the .proto.
set -euo pipefail
"$VENV/bin/python" -c 'from centaurus.store.etcdpb import ensure_generated; ensure_generated() and print("bootstrap: generated etcd protobuf messages")'
