"""Control-plane targets the conformance suite runs against (``centaurus.targets``)."""
