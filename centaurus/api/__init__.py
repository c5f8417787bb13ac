"""The Kubernetes-wire-compatible, tenant-aware API server (aiohttp): routing, verbs, watch
cache, authentication, RBAC, admission, discovery and metrics, in one module each."""
