"""Workload runtimes the node agent drives (``centaurus.runtimes``)."""
