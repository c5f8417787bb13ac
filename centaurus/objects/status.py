"""Kubernetes ``Status`` objects: the only error shape kubectl and client libraries decode.

Reasons and codes follow ``k8s.io/apimachinery/pkg/apis/meta/v1`` (StatusReason*).
"""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiStatusError(Exception):
    """Raised anywhere below the HTTP layer; rendered as a Status with ``code``."""

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        return status_failure(self.code, self.message, self.reason, self.details)


def status_failure(
    code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        out["details"] = details
    return out


def status_success(details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        out["details"] = details
    return out


def not_found(resource: str, name: str, group: str = "") -> ApiStatusError:
    qual = f"{resource}.{group}" if group else resource
    return ApiStatusError(
        404, f'{qual} "{name}" not found', "NotFound", {"name": name, "group": group, "kind": resource}
    )


def already_exists(resource: str, name: str, group: str = "") -> ApiStatusError:
    qual = f"{resource}.{group}" if group else resource
    return ApiStatusError(
        409,
        f'{qual} "{name}" already exists',
        "AlreadyExists",
        {"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, name: str, group: str = "") -> ApiStatusError:
    qual = f"{resource}.{group}" if group else resource
    return ApiStatusError(
        409,
        f'Operation cannot be fulfilled on {qual} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "Conflict",
        {"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> ApiStatusError:
    """422 Invalid with one cause per (field, message)."""
    msg = "; ".join(f"{f}: {m}" for f, m in causes)
    qual = f"{kind}.{group}" if group else kind
    return ApiStatusError(
        422,
        f'{qual} "{name}" is invalid: {msg}',
        "Invalid",
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
        },
    )


def forbidden(
    user: str, verb: str, resource: str, group: str, namespace: str | None, why: str = ""
) -> ApiStatusError:
    qual = f"{resource}.{group}" if group else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    msg = (
        f'{qual} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}"{where}'
    )
    if why:
        msg += f": {why}"
    return ApiStatusError(403, msg, "Forbidden", {"group": group, "kind": resource})
