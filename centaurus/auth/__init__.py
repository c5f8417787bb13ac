"""Authentication and authorization: the CA and certificates, the token file, the tenant-aware
identity and RBAC. Server-independent so the CLI can mint credentials without a running server."""
