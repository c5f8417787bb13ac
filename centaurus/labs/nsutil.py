"""Small, fast helpers for network namespaces: batched ``ip``, setns in a thread, pids per netns.

Why not pyroute2 here: importing it costs ~250 ms and each netlink call ~1 ms, while one
``ip -b`` batch creates a whole topology in ~10 ms (NOTES.md). Sysctls and GRO are set from a
short-lived thread that joined the namespace with ``setns(2)`` (a thread may switch netns on
its own), so no process is forked per setting. ``ip netns exec`` is avoided on purpose: it
remounts /sys and hides bpffs (/sys/fs/bpf) from the process it starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from centaurus.labs.base import LabError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_SIOCETHTOOL = 0x8946
_ETHTOOL_SGRO = 0x0000002C
_ETHTOOL_STXCSUM = 0x00000017
_T = TypeVar("_T")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def list_netns(prefix: str = "") -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def ip_batch(lines: Iterable[str], netns: str | None = None, force: bool = False,
             timeout: float = 30.0) -> None:
    """Run ``ip -b -`` (optionally ``-n NETNS``); the first failing line stops it with a one-line error."""
    text = "".join(line.rstrip("\n") + "\n" for line in lines)
    if not text:
        return
    argv = ["ip"]
    if netns:
        argv += ["-n", netns]
    if force:
        argv.append("-force")
    argv += ["-b", "-"]
    cp = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=timeout)
    if cp.returncode != 0 and not force:
        msg = (cp.stderr.strip().splitlines() or ["failed"])
        where = f" in netns {netns}" if netns else ""
        raise LabError(f"ip batch{where}: {' / '.join(msg[:2])}")


def setns(name: str) -> None:
    """Move the CALLING THREAD into netns ``name`` (Python 3.11 has no os.setns)."""
    fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(name: str, fn: Callable[[], _T]) -> _T:
    """Run ``fn`` in a fresh thread that joined netns ``name``; returns its result or re-raises."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            setns(name)
            box["result"] = fn()
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=body, name=f"netns-{name}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def write_sysctls(values: Mapping[str, str | int]) -> None:
    """Write ``net.ipv4.ip_forward``-style keys in the current thread's netns."""
    for key, value in values.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        try:
            path.write_text(f"{value}\n")
        except FileNotFoundError:
            if "bridge" in key:  # bridge netfilter keys appear once br_netfilter is in use
                continue
            raise LabError(f"sysctl {key}: not available on this kernel") from None


def _ethtool_set(cmd: int, what: str, ifnames: Iterable[str], on: bool) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in ifnames:
            val = ctypes.create_string_buffer(struct.pack("II", cmd, 1 if on else 0))
            ifr = struct.pack("16sP", name.encode(), ctypes.addressof(val))
            try:
                fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifr)
            except OSError as exc:
                raise LabError(f"set {what} {'on' if on else 'off'} on {name}: {exc.strerror}") from None


def set_gro(ifnames: Iterable[str], on: bool = True) -> None:
    """ETHTOOL_SGRO on each device of the current thread's netns (GRO on every lab veth, as
    NOTES.md suggests for frames redirected into veths; see :mod:`centaurus.labs.xdppeers`)."""
    _ethtool_set(_ETHTOOL_SGRO, "GRO", ifnames, on)


def set_tx_csum(ifnames: Iterable[str], on: bool) -> None:
    """ETHTOOL_STXCSUM: with it off the endpoint's stack writes full L4 checksums. A partial
    (offloaded) checksum would leave the endpoint inside an XDP frame and arrive wrong: the
    overlay moves frames, it never finishes checksums (Mizar turns it off in pods too)."""
    _ethtool_set(_ETHTOOL_STXCSUM, "tx checksumming", ifnames, on)


def netns_inode(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(netns_path(name))
    except OSError:
        return None
    return st.st_dev, st.st_ino


def netns_pids(name: str) -> list[int]:
    """Pids of processes living in netns ``name`` (like ``ip netns pids``, without a fork)."""
    ident = netns_inode(name)
    if ident is None:
        return []
    out: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ident:
            out.append(int(entry))
    return out


def proc_starttime(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks: with the pid it identifies a process despite pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, starttime: int | None = None) -> bool:
    st = proc_starttime(pid)
    if st is None:
        return False
    if starttime is not None and st != starttime:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def kill_pids(pids: Sequence[tuple[int, int | None]], grace: float = 2.0) -> None:
    """SIGTERM each (pid, starttime) still alive, wait up to ``grace`` s, then SIGKILL the rest."""
    live = [(p, s) for p, s in pids if alive(p, s)]
    for pid, _ in live:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        _reap(pid for pid, _ in live)
        live = [(p, s) for p, s in live if alive(p, s)]
        if live:
            time.sleep(0.02)
    for pid, _ in live:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while live and time.monotonic() < deadline:
        _reap(pid for pid, _ in live)
        live = [(p, s) for p, s in live if alive(p, s)]
        if live:
            time.sleep(0.02)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def _reap(pids: Iterable[int]) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def nsenter_argv(netns: str | None, argv: Sequence[str]) -> list[str]:
    """Command line running ``argv`` in ``netns`` (network namespace only; mounts stay shared)."""
    if not netns:
        return list(argv)
    return ["nsenter", f"--net={netns_path(netns)}", "--", *argv]
