"""Compliance reports of a conformance run: ``render`` (report.html with plots), ``terminal``
(``centaurus report --mode summary|detailed``). Input is always a parsed ``results.json``."""
