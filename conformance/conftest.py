"""The conformance suite runs through the harness plugin (options, fixtures, results.json)."""

pytest_plugins = ["centaurus.harness.plugin"]
