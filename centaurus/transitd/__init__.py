"""transitd: the per-droplet daemon that programs the XDP overlay (gRPC API + CLI).

- :mod:`.daemon` process life cycle: netns, adopt-or-load, attach, serve, clean up
- :mod:`.service` RPC handlers over :class:`centaurus.bpf.overlay.Overlay`
- :mod:`.rpc` service table from ``protos/transit.proto`` and the typed client
"""
