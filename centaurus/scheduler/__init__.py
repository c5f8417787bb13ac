"""The scheduler of the builtin control plane (``python -m centaurus.scheduler``):
:mod:`podinfo` (requests, signatures), :mod:`filters` (static filters, messages), :mod:`nodetable`
(the cluster as arrays: fit and score vectors), :mod:`spread` (topology spread), :mod:`queue`
(active/backoff/unschedulable), :mod:`scheduler` (informers, decisions, batched binding)."""
