"""Traffic generators for packet-rate campaigns (``centaurus.trafficgens``)."""
