"""Pure parts of the agent: status rules, address pools, SPDY framing, stream status, config."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from centaurus.agent.config import AgentConfig
from centaurus.agent.podstatus import Backoff, PodView, build_status, parse_ts, ts
from centaurus.agent.streams import spdy
from centaurus.agent.streams.remotecommand import status_bytes
from centaurus.netplug.base import NetworkError, PodNetResult
from centaurus.netplug.ipam import Pool, node_cidr
from centaurus.runtimes.base import ContainerStatus

NOW = 1_700_000_000.0


def mkpod(restart: str = "Always", inits: int = 0, vm: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": restart, "nodeName": "n1"}
    if vm:
        spec["virtualMachine"] = {"name": "vm", "image": "cirros"}
    else:
        spec["containers"] = [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]
        spec["initContainers"] = [{"name": f"i{k}", "image": "busybox"} for k in range(inits)]
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}


def run(name: str, ready: bool = True, **kw: Any) -> ContainerStatus:
    return ContainerStatus(name, "running", started_at=NOW, ready=ready, container_id=f"crun://{name}", **kw)


def term(name: str, code: int, **kw: Any) -> ContainerStatus:
    return ContainerStatus(
        name,
        "terminated",
        exit_code=code,
        reason="Completed" if code == 0 else "Error",
        started_at=NOW,
        finished_at=NOW + 1,
        **kw,
    )


def status(pod: dict[str, Any], statuses: list[ContainerStatus], **kw: Any) -> dict[str, Any]:
    kw.setdefault("net", PodNetResult("/run/netns/x", "10.1.0.5"))
    view = PodView(pod=pod, host_ip="10.0.0.1", start_time=NOW, statuses=statuses, **kw)
    return build_status(view, NOW + 2)


# ---- phases (kubelet's getPhase) ------------------------------------------------------------------
def test_no_sandbox_yet_is_pending_container_creating() -> None:
    st = status(mkpod(), [], net=None)
    assert st["phase"] == "Pending"
    assert all(c["state"] == {"waiting": {"reason": "ContainerCreating"}} for c in st["containerStatuses"])
    assert "podIP" not in st


def test_all_running_is_running_and_ready() -> None:
    st = status(mkpod(), [run("a"), run("b")], ready_at=NOW + 1)
    assert st["phase"] == "Running" and st["podIP"] == "10.1.0.5"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["lastTransitionTime"] == ts(NOW + 1)
    assert parse_ts(conds["Ready"]["lastTransitionTime"]) == pytest.approx(NOW + 1)


def test_one_not_ready_container_keeps_the_pod_unready() -> None:
    st = status(mkpod(), [run("a"), run("b", ready=False)])
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert st["phase"] == "Running" and conds["Ready"] == "False" and conds["ContainersReady"] == "False"


@pytest.mark.parametrize(
    ("restart", "codes", "phase"),
    [
        ("Never", (0, 0), "Succeeded"),
        ("Never", (0, 1), "Failed"),
        ("OnFailure", (0, 0), "Succeeded"),
        ("OnFailure", (0, 1), "Running"),
        ("Always", (0, 0), "Running"),
    ],
)
def test_terminated_containers_by_restart_policy(restart: str, codes: tuple[int, int], phase: str) -> None:
    st = status(mkpod(restart), [term("a", codes[0]), term("b", codes[1])])
    assert st["phase"] == phase
    if phase in ("Succeeded", "Failed"):
        ready = next(c for c in st["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "PodCompleted"


def test_crash_loop_shows_waiting_with_last_state() -> None:
    st = status(mkpod(), [run("a"), term("b", 2, restart_count=3)], backoff={"b": Backoff(NOW + 20, 20.0)})
    b = st["containerStatuses"][1]
    assert (
        b["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        and "back-off 20s" in b["state"]["waiting"]["message"]
    )
    assert b["lastState"]["terminated"]["exitCode"] == 2 and b["restartCount"] == 3
    assert st["phase"] == "Running"


def test_init_containers_gate_the_pod() -> None:
    st = status(mkpod("Always", inits=2), [term("i0", 0, init=True), run("i1", init=True)])
    assert st["phase"] == "Pending"
    assert {c["type"]: c["status"] for c in st["conditions"]}["Initialized"] == "False"
    st = status(mkpod("Never", inits=1), [term("i0", 4, init=True)])
    assert st["phase"] == "Failed"


def test_start_error_and_failure_are_reported() -> None:
    st = status(mkpod(), [], start_error=("CreateContainerError", "boom"))
    assert st["phase"] == "Pending" and st["message"] == "boom"
    assert st["containerStatuses"][0]["state"]["waiting"] == {
        "reason": "CreateContainerError",
        "message": "boom",
    }
    st = status(mkpod(), [], failed=("ErrImagePull", "no such image x"), start_error=("ErrImagePull", "no x"))
    assert st["phase"] == "Failed" and st["reason"] == "ErrImagePull"


def test_vm_status_and_user_stop() -> None:
    info = {"powerState": "running", "powerSpec": "Running", "startMode": "restore"}
    st = status(mkpod(vm=True), [run("vm")], vm_info=info)
    vms = st["virtualMachineStatus"]
    assert vms["powerState"] == "Running" and vms["state"] == "Active" and vms["startMode"] == "restore"
    stopped = ContainerStatus("vm", "terminated", exit_code=0, reason="VmShutdown", container_id="qemu://u1")
    st = status(mkpod(vm=True), [stopped], vm_info={"powerState": "shutdown", "powerSpec": "Shutdown"})
    assert st["phase"] == "Running" and st["virtualMachineStatus"]["powerState"] == "Shutdown"


def test_transition_times_are_kept_while_unchanged() -> None:
    pod = mkpod()
    first = status(pod, [run("a"), run("b")], ready_at=NOW + 1)
    pod["status"] = first
    again = build_status(
        PodView(
            pod=pod,
            host_ip="10.0.0.1",
            start_time=NOW,
            net=PodNetResult(None, "10.1.0.5"),
            statuses=[run("a"), run("b")],
            ready_at=NOW + 50,
        ),
        NOW + 60,
    )
    assert again == first


# ---- addresses ------------------------------------------------------------------------------------
def test_pool_round_robin_and_exhaustion() -> None:
    p = Pool("10.9.0.0/29")  # .1 gateway, .2-.6 for pods
    got = [p.allocate() for _ in range(5)]
    assert got == [f"10.9.0.{i}" for i in range(2, 7)] and p.gateway == "10.9.0.1"
    with pytest.raises(NetworkError):
        p.allocate()
    p.release("10.9.0.3")
    assert p.allocate() == "10.9.0.3"
    q = Pool("10.9.0.0/29", used=["10.9.0.2"], cursor=int.from_bytes(bytes([10, 9, 0, 4]), "big"))
    assert q.allocate() == "10.9.0.5"  # never straight back to a just-freed address


def test_node_cidrs() -> None:
    assert node_cidr("10.244.0.0/16", 0) == "10.244.1.0/24"
    assert node_cidr("100.64.0.0/10", 9999) == "100.103.16.0/24"
    with pytest.raises(NetworkError):
        node_cidr("10.244.0.0/16", 255)


# ---- SPDY ---------------------------------------------------------------------------------------
def test_spdy_dictionary_is_the_spec_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options") and spdy.DICTIONARY.endswith(b"enq=0.")


class FakeConn:
    """The client side of a SPDY connection, in memory."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.out = bytearray()
        self.deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)

    async def read(self) -> bytes:
        return await self.inbox.get()

    async def write(self, data: bytes) -> None:
        self.out += data

    async def close(self) -> None:
        self.inbox.put_nowait(b"")

    def syn(self, sid: int, headers: dict[str, str], fin: bool = False) -> None:
        block = self.deflate.compress(spdy.encode_headers(headers)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        body = struct.pack(">IIBB", sid, 0, 0, 0) + block
        self.inbox.put_nowait(
            struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, (int(fin) << 24) | len(body)) + body
        )

    def data(self, sid: int, payload: bytes, fin: bool = False) -> None:
        self.inbox.put_nowait(struct.pack(">II", sid, (int(fin) << 24) | len(payload)) + payload)

    def ping(self, pid: int) -> None:
        self.inbox.put_nowait(struct.pack(">HHII", 0x8003, spdy.PING, 4, pid))

    def frames(self) -> list[tuple[bool, int, int, bytes]]:
        out, buf = [], bytes(self.out)
        while len(buf) >= 8:
            w0, w1 = struct.unpack_from(">II", buf)
            n = w1 & 0xFFFFFF
            body = buf[8 : 8 + n]
            ctl = bool(w0 & 0x80000000)
            out.append((ctl, (w0 & 0xFFFF) if ctl else w0 & 0x7FFFFFFF, w1 >> 24, body))
            buf = buf[8 + n :]
        return out


@pytest.mark.anyio
async def test_spdy_session_streams_replies_data_and_ping() -> None:
    conn = FakeConn()
    got: list[spdy.Stream] = []
    session = spdy.Session(conn, got.append)
    serving = asyncio.ensure_future(session.serve())
    conn.syn(1, {"streamType": "stdin"})
    conn.syn(3, {"streamtype": "stdout"})
    conn.data(1, b"hello", fin=True)
    conn.ping(7)
    await asyncio.sleep(0.05)
    assert [s.type for s in got] == ["stdin", "stdout"]
    assert await got[0].read() == b"hello" and await got[0].read() == b""
    await got[1].write(b"out!")
    await got[1].close()
    await session.close()
    await serving
    frames = conn.frames()
    replies = [f for f in frames if f[0] and f[1] == spdy.SYN_REPLY]
    assert {struct.unpack_from(">I", r[3])[0] for r in replies} == {1, 3}
    hdrs = conn.inflate.decompress(replies[0][3][4:])
    assert spdy.decode_headers(hdrs) == {}
    assert (True, spdy.PING, 0, struct.pack(">I", 7)) in frames
    data = [f for f in frames if not f[0] and f[1] == 3]
    assert data[0][3] == b"out!" and data[-1][2] & spdy.FLAG_FIN
    assert any(f[0] and f[1] == spdy.GOAWAY for f in frames)


@pytest.mark.anyio
async def test_spdy_rejects_garbage() -> None:
    conn = FakeConn()
    session = spdy.Session(conn, lambda s: None)
    conn.inbox.put_nowait(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"xxxx")  # SPDY/2
    await asyncio.wait_for(session.serve(), 2)
    assert session.closed


# ---- exec status and config ---------------------------------------------------------------------
def test_exec_status_channel_payloads() -> None:
    assert json.loads(status_bytes(0, None, "v5.channel.k8s.io")) == {"metadata": {}, "status": "Success"}
    st = json.loads(status_bytes(3, None, "v4.channel.k8s.io"))
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"] == [
        {"reason": "ExitCode", "message": "3"}
    ]
    assert status_bytes(0, None, "channel.k8s.io") == b""
    assert b"exit code: 2" in status_bytes(2, None, "v2.channel.k8s.io")


def test_agent_config_rejects_unknown_fields(tmp_path: Path) -> None:
    cfg = AgentConfig(node_name="n", kubeconfig="k", state_dir=str(tmp_path))
    cfg.dump(tmp_path / "c.json")
    assert AgentConfig.load(tmp_path / "c.json") == cfg
    doc = json.loads((tmp_path / "c.json").read_text())
    doc["nodeNmae"] = "typo"
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="nodeNmae"):
        AgentConfig.load(tmp_path / "c.json")


def test_ts_roundtrip() -> None:
    t = time.time()
    assert parse_ts(ts(t)) == pytest.approx(t, abs=1e-6)
