"""Performance campaigns: a campaign is a YAML file composing measurements (clusterloader2
style) that ``centaurus perf run`` executes, writing PerfData JSON and raw samples to
``reports/out/`` next to a same-run reference for every figure.

Layout: ``campaign`` (YAML model + runner), ``measurements/`` (one module per measurement,
registered by name), ``ndr`` (NDR/PDR binary search over a traffic generator), ``usage``-like
resource sampling, ``environment`` (what the run ran on). Shared modules other helpers own live
here too: ``measurements/pod_startup.py`` (H7), ``density.py`` (H8).
"""
