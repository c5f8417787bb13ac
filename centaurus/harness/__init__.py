"""The conformance harness: requirement catalog, pytest plugin, results model, ratchet."""
