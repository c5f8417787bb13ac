"""Controllers of the builtin control plane, built on :mod:`centaurus.controllers.runtime`
(shared informers, work queues, active-active membership). :func:`registry` names them for the
runner (``python -m centaurus.controllers``) that the control-plane supervisor starts N times
(instances split the work by hash ranges; see :mod:`centaurus.controllers.runtime.sharding`).
Later issues add their controllers (network, mission, ...) to the registry."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

ControllerFactory = Callable[[Any], Any]


def registry() -> dict[str, ControllerFactory]:
    from centaurus.controllers.deployment import DeploymentController
    from centaurus.controllers.gc import GarbageCollector
    from centaurus.controllers.nodelifecycle import NodeLifecycleController
    from centaurus.controllers.replicaset import ReplicaSetController
    from centaurus.controllers.tenant import NamespaceController, TenantController

    out: dict[str, ControllerFactory] = {
        "tenant": TenantController,
        "namespace": NamespaceController,
        "deployment": DeploymentController,
        "replicaset": ReplicaSetController,
        "garbagecollector": GarbageCollector,
        "nodelifecycle": NodeLifecycleController,
    }
    # controllers of other issues, registered once their module exists (import errors surface)
    for name, module, cls in OPTIONAL:
        if importlib.util.find_spec(module) is not None:
            out[name] = getattr(importlib.import_module(module), cls)
    return out


#: (registry name, module, class) of controllers that live in other issues' modules
OPTIONAL: list[tuple[str, str, str]] = [
    ("network", "centaurus.controllers.network", "NetworkController"),
]
