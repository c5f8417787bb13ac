"""Wait for an object to reach a state by watching it, the way a client would (no sleep loops).

``wait_for`` reads the object, and if the predicate does not hold yet, watches it from the read's
resourceVersion (so no event in between is missed), re-watching when the server closes the stream,
until the predicate holds or the deadline passes. A timeout raises ``AssertionError`` carrying the
last state seen, so a failing conformance test says what it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from centaurus.client.rest import ApiClient, ApiError

Obj = dict[str, Any]


def _rv(obj: Obj) -> str | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv else None


def wait_for(api: ApiClient, resource: str, name: str, predicate: Callable[[Obj], bool], *,
             namespace: str | None = None, tenant: str | None = None, group_version: str | None = None,
             timeout: float = 60.0, what: str = "") -> Obj:
    """Return the object once ``predicate(obj)`` holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Obj | None = None
    error: str = ""
    while True:
        try:
            last = api.get(resource, name, namespace=namespace, tenant=tenant, group_version=group_version)
            if predicate(last):
                return last
            rv = _rv(last)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for ev in api.watch(resource, namespace=namespace, tenant=tenant, group_version=group_version,
                                resource_version=rv, timeout_seconds=max(1, min(int(remaining), 30)),
                                fieldSelector=f"metadata.name={name}"):
                if ev.get("type") == "ERROR":
                    break  # e.g. 410 Gone: re-read and watch again
                obj = ev.get("object") or {}
                if (obj.get("metadata") or {}).get("name") != name:
                    continue
                if ev.get("type") == "DELETED":
                    last = obj
                    break
                last = obj
                if predicate(obj):
                    return obj
                if time.monotonic() >= deadline:
                    break
        except ApiError as exc:
            error = str(exc)
            if exc.code != 404:
                raise
            time.sleep(0.2)
        if time.monotonic() >= deadline:
            break
    state = _describe(last) if last else f"never readable ({error})"
    raise AssertionError(f"{resource}/{name}{' ' + what if what else ''}: not reached within "
                         f"{timeout:g} s; last state: {state}")


def wait_gone(api: ApiClient, resource: str, name: str, *, namespace: str | None = None,
              tenant: str | None = None, group_version: str | None = None, timeout: float = 60.0) -> None:
    """Wait until GET answers 404."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get(resource, name, namespace=namespace, tenant=tenant, group_version=group_version)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        time.sleep(0.25)
    raise AssertionError(f"{resource}/{name} still exists {timeout:g} s after deletion")


def eventually(check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.25,
               what: str = "condition") -> Any:
    """Poll ``check`` (for things no watch can show, e.g. a packet arriving) until it returns a
    truthy value or stops raising AssertionError; re-raise the last failure after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: AssertionError | None = None
    while True:
        try:
            value = check()
            if value:
                return value
            last_exc = None
        except AssertionError as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            if last_exc is not None:
                raise last_exc
            raise AssertionError(f"{what} not true within {timeout:g} s")
        time.sleep(interval)


def _describe(obj: Obj) -> str:
    status = obj.get("status")
    if isinstance(status, dict):
        keep = {k: status[k] for k in ("phase", "conditions", "podIP", "reason", "message",
                                       "virtualMachineStatus", "containerStatuses") if k in status}
        return str(keep)[:600]
    return str(status)[:600]


def is_running(pod: Obj) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and bool(st.get("podIP"))


def is_finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
