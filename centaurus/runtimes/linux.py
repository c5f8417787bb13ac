"""Thin ctypes wrappers for the Linux calls Python 3.11 lacks (unshare, setns, mount, prctl) and
an awaitable ``waitpid`` built on pidfds.

Namespaces here are per *thread*: ``unshare(CLONE_NEWNS)`` and ``setns`` change only the calling
thread (its ``fs_struct`` is unshared first), and children spawned from that thread inherit it.
That is what lets :mod:`centaurus.runtimes.spawn` keep one worker thread in a private mount
namespace while the rest of the process stays in the host's.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import threading
from contextlib import suppress

CLONE_FS = 0x00000200
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _b(s: str | None) -> bytes | None:
    return s.encode() if s is not None else None


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def set_child_subreaper(on: bool = True) -> None:
    """Orphaned descendants (container inits once ``crun run -d`` exits) become our children, so
    their exit status is ours to collect with ``waitpid``. Process-wide: in a process that also
    runs unrelated code (a test session), orphans of *that* code become our zombies too -- turn
    it off again (``on=False``) when the runtimes are done there."""
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def is_child_subreaper() -> bool:
    v = ctypes.c_int(0)
    _check(_libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(v), 0, 0, 0), "prctl(GET_CHILD_SUBREAPER)")
    return bool(v.value)


def exit_code_from_status(status: int) -> int:
    """Shell convention, as Kubernetes reports it: 128+signal for a killed process."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0): it is not alive for us
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def proc_start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot (field 22 of /proc/PID/stat): together with the pid it
    names one process, so a recycled pid is never mistaken for a workload after an agent restart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


#: Children this process spawned and waits for itself (see :func:`reap_strays`). Guarded by
#: ``OWN_LOCK``, which spawning holds across ``posix_spawn`` + registration.
OWN_LOCK = threading.Lock()
_own: set[int] = set()


def own(pid: int) -> None:
    """Register a child we will ``waitpid`` ourselves (call with ``OWN_LOCK`` held)."""
    _own.add(pid)


def children() -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with suppress(OSError), open(f"/proc/self/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def reap_strays(comms: tuple[str, ...] = ("crun",), exclude: frozenset[int] = frozenset()) -> int:
    """Reap zombie children nobody waits for: as a child subreaper we inherit every orphan below
    us, e.g. the intermediate process ``crun run -d`` forks and abandons (one per container start),
    which would otherwise pile up as zombies for the agent's lifetime. Only zombies whose command
    is in ``comms`` and that we did not spawn ourselves are touched, so nobody's exit status is
    stolen. Returns how many were reaped."""
    n = 0
    with OWN_LOCK:
        for pid in children():
            if pid in _own or pid in exclude:
                continue
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode(errors="replace")
            if raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] == b"Z" and comm in comms:
                with suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        n += 1
    return n


async def wait_pid(pid: int, pidfd: int | None = None) -> int | None:
    """Wait for ``pid`` to exit without blocking the loop (pidfd readable => exited).

    Returns the raw wait status when ``pid`` is our child (we reap it), ``None`` when it is not
    (another process is its parent, e.g. after an agent restart): then the exit code is lost, only
    the fact of the exit is known."""
    loop = asyncio.get_running_loop()
    own_fd = pidfd is None
    if pidfd is None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return _reap(pid)
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(pidfd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(pidfd)
        if own_fd:
            os.close(pidfd)
    try:
        return _reap(pid)
    finally:
        with OWN_LOCK:
            _own.discard(pid)


def _reap(pid: int) -> int | None:
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:  # not exited yet: pidfd said so only for a non-child zombie race; treat as unknown
        return None
    return status


def kill_quietly(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def errno_is(exc: OSError, *names: str) -> bool:
    return exc.errno in {getattr(errno, n) for n in names}
