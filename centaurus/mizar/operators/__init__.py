"""One operator per management-plane kind (:mod:`.droplet`, :mod:`.vpc`, :mod:`.subnet`,
:mod:`.bouncer`, :mod:`.divider`, :mod:`.endpoint`) on the shared base (:mod:`.base`)."""

from __future__ import annotations

from typing import Any


def operator_classes() -> list[Any]:
    from centaurus.mizar.operators.bouncer import BouncerOperator
    from centaurus.mizar.operators.divider import DividerOperator
    from centaurus.mizar.operators.droplet import DropletOperator
    from centaurus.mizar.operators.endpoint import EndpointOperator
    from centaurus.mizar.operators.subnet import SubnetOperator
    from centaurus.mizar.operators.vpc import VpcOperator

    return [DropletOperator, VpcOperator, SubnetOperator, DividerOperator, BouncerOperator, EndpointOperator]
