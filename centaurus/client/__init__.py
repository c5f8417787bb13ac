"""API clients. ``rest`` is the synchronous client tests and the CLI use; components use the
async client in ``aio``. Both speak the Kubernetes wire protocol and know the Arktos
tenant-scoped paths."""
