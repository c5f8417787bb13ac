"""Helpers of the conformance suite: kubectl runner, waiting on watches, pod factory, network probes.

They talk only to the public interfaces (the REST client, kubectl, the lab handle of CONTRACTS.md),
never to an implementation's internals, so the same tests run against any target.
"""
