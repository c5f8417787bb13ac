"""The conformance suite runs through the harness plugin (options, fixtures, results.json); the
suite's own helper fixtures live in ``support/fixtures.py``."""

pytest_plugins = ["centaurus.harness.plugin", "support.fixtures"]
