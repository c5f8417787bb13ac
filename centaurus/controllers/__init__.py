"""Controllers of the builtin control plane. Each one is a class with ``async run()`` built on
:class:`centaurus.client.aio.AsyncClient`; :data:`REGISTRY` names them for the runner
(``python -m centaurus.controllers``) that the control-plane supervisor starts. Later issues add
their controllers (deployment/replicaset, node lifecycle, network, ...) to the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from centaurus.client.aio import AsyncClient

ControllerFactory = Callable[[AsyncClient], Any]


def registry() -> dict[str, ControllerFactory]:
    from centaurus.controllers.tenant import NamespaceController, TenantController

    return {"tenant": TenantController, "namespace": NamespaceController}
