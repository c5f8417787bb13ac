"""Controller runtime (kopf-like layering, see STYLE.md): :mod:`informer` (list/watch caches),
:mod:`workqueue` (rate-limited, one reconcile per key), :mod:`sharding` (active-active
membership by hash ranges), :mod:`controller` (the reconcile loop), :mod:`labels` (selectors).
Each module imports only the ones listed before it; controllers import this package, never
the other way round."""
