"""Against a real TRex server (NIC testbed): runs only when one is configured
(``CENTAURUS_TREX_SERVER`` or a config file, see centaurus/trafficgen/trex.py); otherwise the
test reports itself not-verified -- never faked."""

from __future__ import annotations

import pytest

from centaurus.trafficgen.base import GeneratorUnavailable, Trial
from centaurus.trafficgen.trex import TrexGenerator, load_config


@pytest.mark.integration
def test_trex_server_forwards_a_trial_and_counts_at_the_receiving_port() -> None:
    if not load_config().get("server"):
        pytest.skip("not-verified: no TRex server configured (CENTAURUS_TREX_SERVER)")
    g = TrexGenerator({})
    try:
        try:
            g.check()
        except GeneratorUnavailable as exc:
            pytest.fail(f"a TRex server is configured but unusable: {exc}")
        r = g.run_trial({"kind": "ports"}, Trial(64, 100_000, 2.0, 4))
        assert r.tx_packets > 0
        assert r.rx_packets > 0, "the configured port pair received nothing (cabling / DUT?)"
        assert "latency_us" in r.extra
    finally:
        g.close()
