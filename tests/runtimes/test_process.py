"""The ``process`` runtime with real crun containers in a real pod network namespace."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from centaurus.runtimes import cgroups, linux
from centaurus.runtimes.base import ContainerSpec, RuntimeError_
from centaurus.runtimes.spawn import PrivateMountWorker
from tests.runtimes.conftest import collect, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def terminated(rt: Any, sb: Any, name: str, timeout: float = 10.0) -> Any:
    async def done() -> Any:
        st = {s.name: s for s in await rt.status(sb)}[name]
        return st if st.state == "terminated" else None

    return await wait_for(done, timeout)


async def test_command_args_env_workdir_exit_code_and_logs(process_rt: Any, pod_spec: Any) -> None:
    spec = pod_spec(
        ContainerSpec(
            name="c",
            image="busybox:1.35",
            command=[
                "sh",
                "-c",
                'echo "FOO=$FOO ARG=$0 DERIVED=$D"; pwd; hostname; ip -o link | wc -l; exit 3',
            ],
            args=["$(FOO)-x"],
            env={"FOO": "bar", "D": "$(FOO)/y"},
            working_dir="/tmp",
        ),
        name="web-1",
    )
    sb = await process_rt.start(spec)
    st = await terminated(process_rt, sb, "c")
    assert (st.exit_code, st.reason) == (3, "Error")
    assert st.image == "docker.io/library/busybox:1.35" and st.image_id.startswith(
        "docker.io/library/busybox@sha256:"
    )
    out = (await collect(process_rt.logs(sb, "c"))).decode()
    assert "FOO=bar ARG=bar-x DERIVED=bar/y" in out
    lines = out.splitlines()
    assert lines[1:4] == ["/tmp", "web-1", "1"], out  # cwd, pod hostname, only lo in the pod netns
    assert (await collect(process_rt.logs(sb, "c", tail_lines=1))).decode() == "1\n"


async def test_image_default_command_nginx_serves_and_port_forward(process_rt: Any, pod_spec: Any) -> None:
    sb = await process_rt.start(pod_spec(ContainerSpec(name="web", image="nginx:1.25")))
    assert (await process_rt.status(sb))[0].state == "running"

    async def get() -> bytes:
        try:
            r, w = await process_rt.port_forward(sb, 80)
        except RuntimeError_:
            return b""
        w.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        await w.drain()
        data = await r.read()
        w.close()
        return data

    body = await wait_for(get, timeout=10)
    assert b"200 OK" in body and b"Welcome to nginx!" in body
    with pytest.raises(RuntimeError_) as ei:
        await process_rt.port_forward(sb, 81)
    assert ei.value.reason == "PortForwardError"


async def test_exec_pipes_stdin_and_exit_code(process_rt: Any, pod_spec: Any) -> None:
    sb = await process_rt.start(pod_spec(ContainerSpec(name="c", image="busybox", command=["sleep", "60"])))
    ex = await process_rt.exec(sb, "c", ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert await ex.stdout.read() == b"out\n" and await ex.stderr.read() == b"err\n"
    assert await ex.wait() == 7
    ex = await process_rt.exec(sb, "c", ["sh", "-c", "tr a-z A-Z; echo done"])
    ex.stdin.write(b"hello\n")
    await ex.close_stdin()
    assert await ex.stdout.read() == b"HELLO\ndone\n" and await ex.wait() == 0
    ex = await process_rt.exec(sb, "c", ["/no/such/binary"])
    assert await ex.wait() != 0
    with pytest.raises(RuntimeError_):
        await process_rt.exec(sb, "nope", ["true"])


async def test_exec_tty_merges_streams_and_resizes(process_rt: Any, pod_spec: Any) -> None:
    sb = await process_rt.start(pod_spec(ContainerSpec(name="c", image="busybox", command=["sleep", "60"])))
    ex = await process_rt.exec(
        sb, "c", ["sh", "-c", "read x; echo got $x; stty size; tty; echo err >&2; exit 5"], tty=True
    )
    assert ex.tty and ex.stderr is None
    await ex.resize(100, 40)
    ex.stdin.write(b"hi\n")
    await ex.stdin.drain()
    with anyio.fail_after(10):
        out = await ex.stdout.read()
    assert b"got hi" in out and b"40 100" in out and b"/dev/pts/" in out and b"err" in out, out
    assert await ex.wait() == 5


async def test_memory_limit_oom_killed(process_rt: Any, pod_spec: Any) -> None:
    spec = pod_spec(
        ContainerSpec(
            name="hog",
            image="busybox",
            memory_limit=24 * 2**20,
            command=["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"],
        )
    )
    sb = await process_rt.start(spec)
    st = await terminated(process_rt, sb, "hog")
    assert (st.reason, st.exit_code) == ("OOMKilled", 137), st
    # A child killed by the OOM killer while PID 1 carries on is not an OOMKilled container.
    sb2 = await process_rt.start(
        pod_spec(
            ContainerSpec(
                name="parent",
                image="busybox",
                memory_limit=24 * 2**20,
                command=["sh", "-c", "dd if=/dev/zero of=/dev/null bs=96M count=1; echo survived"],
            )
        )
    )
    st2 = await terminated(process_rt, sb2, "parent")
    assert (st2.reason, st2.exit_code) == ("Completed", 0)
    assert b"survived" in await collect(process_rt.logs(sb2, "parent"))


async def test_cgroup_limits_applied(process_rt: Any, pod_spec: Any) -> None:
    spec = pod_spec(
        ContainerSpec(
            name="c",
            image="busybox",
            command=["sleep", "60"],
            memory_limit=64 * 2**20,
            cpu_limit_millis=500,
            cpu_request_millis=250,
            pids_limit=32,
        )
    )
    sb = await process_rt.start(spec)
    cg = f"{process_rt.cgroup_root}/{sb.uid}/c".strip("/")
    if cgroups.mode() == "v2":
        root = Path("/sys/fs/cgroup") / cg
        assert (root / "memory.max").read_text().strip() == str(64 * 2**20)
        assert (root / "pids.max").read_text().strip() == "32"
        assert (root / "cpu.max").read_text().split()[0] == "50000"
    else:
        assert int(Path(f"/sys/fs/cgroup/memory/{cg}/memory.limit_in_bytes").read_text()) == 64 * 2**20
        assert Path(f"/sys/fs/cgroup/pids/{cg}/pids.max").read_text().strip() == "32"
        assert Path(f"/sys/fs/cgroup/cpu/{cg}/cpu.cfs_quota_us").read_text().strip() == "50000"
        assert Path(f"/sys/fs/cgroup/cpu/{cg}/cpu.shares").read_text().strip() == "256"
    stats = await process_rt.stats(sb)
    assert stats["c"]["memory_bytes"] > 0


async def test_restart_terminated_container_and_previous_logs(process_rt: Any, pod_spec: Any) -> None:
    seen: list[tuple[str, str]] = []
    process_rt.add_listener(lambda uid, name: seen.append((uid, name)))
    sb = await process_rt.start(
        pod_spec(ContainerSpec(name="c", image="busybox", command=["sh", "-c", "echo run-$RANDOM; exit 1"]))
    )
    first = await terminated(process_rt, sb, "c")
    assert first.exit_code == 1 and first.restart_count == 0
    await process_rt.restart_container(sb, "c")
    second = await terminated(process_rt, sb, "c")
    assert second.restart_count == 1 and second.started_at > first.started_at
    prev = await collect(process_rt.logs(sb, "c", previous=True))
    cur = await collect(process_rt.logs(sb, "c"))
    assert prev.startswith(b"run-") and cur.startswith(b"run-")
    # running, terminated, running, terminated (the last one may trail the status by a moment)
    await wait_for(lambda: seen.count((sb.uid, "c")) >= 4, timeout=5)


async def test_stop_term_then_kill_and_follow_logs(process_rt: Any, pod_spec: Any) -> None:
    # busybox sleep as PID 1 ignores SIGTERM: stop() must KILL after the grace period.
    sb = await process_rt.start(
        pod_spec(
            ContainerSpec(name="stubborn", image="busybox", command=["sh", "-c", "echo up; exec sleep 1000"]),
            ContainerSpec(name="polite", image="pause"),
        )
    )
    await anyio.sleep(0.3)  # let pause install its TERM trap (before that, PID 1 ignores TERM too)
    chunks: list[bytes] = []

    async def follow() -> None:
        async for c in process_rt.logs(sb, "stubborn", follow=True):
            chunks.append(c)

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        t0 = time.monotonic()
        await process_rt.stop(sb, grace_seconds=0.5)
        took = time.monotonic() - t0
    st = {s.name: s for s in await process_rt.status(sb)}
    assert st["stubborn"].exit_code == 137 and st["stubborn"].signal == 9
    assert st["polite"].exit_code == 0  # pause traps TERM and exits cleanly
    assert 0.4 < took < 5
    assert b"".join(chunks) == b"up\n"  # follow ended by itself when the container died


async def test_init_containers_run_in_order_before_app(process_rt: Any, pod_spec: Any) -> None:
    spec = pod_spec(
        ContainerSpec(name="app", image="busybox", command=["sh", "-c", "date +%s.%N; sleep 30"]),
        init_containers=[
            ContainerSpec(name="i1", image="busybox", command=["sh", "-c", "sleep 0.3; date +%s.%N"]),
            ContainerSpec(name="i2", image="busybox", command=["sh", "-c", "date +%s.%N"]),
        ],
    )
    sb = await process_rt.start(spec)

    async def app_running() -> bool:
        return {s.name: s for s in await process_rt.status(sb)}["app"].state == "running"

    await wait_for(app_running, timeout=15)
    st = {s.name: s for s in await process_rt.status(sb)}
    assert st["i1"].init and st["i1"].reason == "Completed" and st["i2"].reason == "Completed"
    assert st["i1"].finished_at <= st["i2"].started_at and st["i2"].finished_at <= st["app"].started_at
    assert [s.name for s in await process_rt.status(sb)] == ["i1", "i2", "app"]


async def test_failed_init_container_blocks_app(process_rt: Any, pod_spec: Any) -> None:
    spec = pod_spec(
        ContainerSpec(name="app", image="busybox", command=["true"]),
        init_containers=[ContainerSpec(name="i1", image="busybox", command=["false"])],
    )
    sb = await process_rt.start(spec)
    await terminated(process_rt, sb, "i1")
    await anyio.sleep(0.3)
    st = {s.name: s for s in await process_rt.status(sb)}
    assert st["i1"].exit_code == 1 and st["app"].state == "waiting" and st["app"].started_at is None


async def test_unknown_image_and_bad_command_fail_clearly(process_rt: Any, pod_spec: Any) -> None:
    with pytest.raises(RuntimeError_) as ei:
        await process_rt.start(pod_spec(ContainerSpec(name="c", image="quay.io/nobody/nothing:v9")))
    assert ei.value.reason == "ErrImagePull" and "quay.io/nobody/nothing:v9" in ei.value.message
    with pytest.raises(RuntimeError_) as ei:
        await process_rt.start(pod_spec(ContainerSpec(name="c", image="busybox", command=["/no/such/exe"])))
    assert ei.value.reason == "CreateContainerError" and "/no/such/exe" in ei.value.message
    assert await process_rt.sandboxes() == []  # nothing left behind by either failure
    assert not any(process_rt.pods_dir.iterdir())
    assert not any(p for p in process_rt.crun_root.iterdir())


async def test_rediscovery_after_agent_restart(tmp_path: Path, pod_spec: Any) -> None:
    from centaurus.runtimes.process import ProcessRuntime

    state = tmp_path / "node"
    rt1 = ProcessRuntime(state)
    await rt1.prepare()
    long = await rt1.start(pod_spec(ContainerSpec(name="c", image="busybox", command=["sleep", "60"])))
    short = await rt1.start(
        pod_spec(ContainerSpec(name="c", image="busybox", command=["sh", "-c", "sleep 0.5; exit 4"]))
    )
    pid = (await rt1.status(long))[0].pid
    await rt1.close()  # agent goes away; containers keep running
    await anyio.sleep(1.0)  # the short one exits while nobody watches
    rt2 = ProcessRuntime(state)
    await rt2.prepare()
    try:
        found = {sb.uid: sb for sb in await rt2.sandboxes()}
        assert set(found) == {long.uid, short.uid}
        st = (await rt2.status(found[long.uid]))[0]
        assert st.state == "running" and st.pid == pid
        gone = await terminated(rt2, found[short.uid], "c")
        assert gone.exit_code == 4  # still our zombie child: the code is not lost
        ex = await rt2.exec(found[long.uid], "c", ["echo", "still here"])
        assert await ex.stdout.read() == b"still here\n"
        await rt2.stop(found[long.uid], grace_seconds=0.2)
        assert (await rt2.status(found[long.uid]))[0].state == "terminated"
    finally:
        for sb in await rt2.sandboxes():
            await rt2.remove(sb)
        await rt2.close()


async def test_remove_leaves_no_process_cgroup_bundle_or_mount(process_rt: Any, pod_spec: Any) -> None:
    sb = await process_rt.start(
        pod_spec(
            ContainerSpec(name="a", image="busybox", command=["sleep", "60"]),
            ContainerSpec(name="b", image="nginx"),
        )
    )
    pids = [s.pid for s in await process_rt.status(sb)]
    worker_tid = PrivateMountWorker.get().tid
    assert worker_tid and os.path.exists(f"/proc/self/task/{worker_tid}")
    mounts = Path(f"/proc/self/task/{worker_tid}/mountinfo").read_text()
    assert str(process_rt.pods_dir / sb.uid) in mounts  # overlay rootfs, visible to crun only
    assert str(process_rt.pods_dir / sb.uid) not in Path("/proc/self/mountinfo").read_text()
    await process_rt.remove(sb)
    await process_rt.remove(sb)  # idempotent
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not (process_rt.pods_dir / sb.uid).exists()
    assert not list(process_rt.crun_root.iterdir())
    assert not [h for h in cgroups.hierarchies() if (h / process_rt.cgroup_root.strip("/")).exists()]
    assert (
        str(process_rt.pods_dir / sb.uid) not in Path(f"/proc/self/task/{worker_tid}/mountinfo").read_text()
    )
    assert await process_rt.sandboxes() == []
    # crun run -d abandons an intermediate process per start; as subreaper we must reap it
    zombies = [
        p for p in linux.children() if Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0] == "Z"
    ]
    assert not [p for p in zombies if "(crun)" in Path(f"/proc/{p}/stat").read_text()]


async def test_hybrid_cgroup_fix_stays_private(process_rt: Any) -> None:
    """The fix crun needs on hybrid hosts is invisible to the host and to the rest of this process."""
    ctl = Path(cgroups.UNIFIED_CONTROLLERS)
    if cgroups.mode() != "hybrid":
        pytest.skip("not-applicable: not a hybrid cgroup host (no fix applied)")
    host_view = subprocess.run(["cat", str(ctl)], capture_output=True, text=True).stdout
    assert host_view == ctl.read_text()
    assert cgroups.needs_hybrid_fix() == bool(host_view.split())


async def test_containers_of_a_pod_share_its_network(process_rt: Any, pod_spec: Any) -> None:
    """What conformance pods do: an `nc -ll` server, a client on 127.0.0.1, ping (needs NET_RAW)."""
    sb = await process_rt.start(
        pod_spec(
            ContainerSpec(
                name="server",
                image="busybox:1.36",
                command=["nc", "-ll", "-p", "7000", "-e", "echo", "TOKEN"],
            ),
            ContainerSpec(
                name="client",
                image="busybox:1.36",
                command=[
                    "sh",
                    "-c",
                    "sleep 0.3; nc -w 2 127.0.0.1 7000; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo PING-OK",
                ],
            ),
        )
    )
    st = await terminated(process_rt, sb, "client")
    out = await collect(process_rt.logs(sb, "client"))
    assert st.exit_code == 0 and b"TOKEN" in out and b"PING-OK" in out, out


async def test_exec_kill_reaches_the_process_in_the_container(process_rt: Any, pod_spec: Any) -> None:
    sb = await process_rt.start(pod_spec(ContainerSpec(name="c", image="busybox", command=["sleep", "60"])))
    for tty in (False, True):
        ex = await process_rt.exec(sb, "c", ["sleep", "100"], tty=tty)
        await anyio.sleep(0.2)
        await ex.kill()
        with anyio.fail_after(5):
            assert await ex.wait() != 0
        ps = await process_rt.exec(sb, "c", ["ps"])
        assert b"sleep 100" not in await ps.stdout.read()


async def read_until(stream: Any, needle: bytes, timeout: float = 10.0) -> bytes:
    buf = b""
    with anyio.fail_after(timeout):
        while needle not in buf:
            chunk = await stream.read(4096)
            if not chunk:
                break
            buf += chunk
    return buf


async def test_attach_stdin_survives_detach(process_rt: Any, pod_spec: Any) -> None:
    sb = await process_rt.start(
        pod_spec(
            ContainerSpec(
                name="c",
                image="busybox",
                stdin=True,
                command=["sh", "-c", "while read l; do echo got:$l; done; echo EOF"],
            )
        )
    )
    for word in (b"hello", b"again"):  # two attaches: detaching must not close the container's stdin
        at = await process_rt.attach(sb, "c")
        at.stdin.write(word + b"\n")
        await at.stdin.drain()
        assert b"got:" + word in await read_until(at.stdout, b"got:" + word)
        await at.kill()  # detach
    st = (await process_rt.status(sb))[0]
    assert st.state == "running"
    assert b"EOF" not in await collect(process_rt.logs(sb, "c"))


async def test_attach_tty_container(process_rt: Any, pod_spec: Any) -> None:
    sb = await process_rt.start(
        pod_spec(
            ContainerSpec(
                name="c",
                image="busybox",
                stdin=True,
                tty=True,
                command=["sh", "-c", "read x; stty size; echo in:$x; read y; exit 3"],
            )
        )
    )
    at = await process_rt.attach(sb, "c")
    assert at.tty and at.stderr is None
    await at.resize(120, 33)
    at.stdin.write(b"first\n")
    await at.stdin.drain()
    out = await read_until(at.stdout, b"in:first")
    assert b"33 120" in out
    at.stdin.write(b"bye\n")
    await at.stdin.drain()
    with anyio.fail_after(10):
        assert await at.wait() == 3
    assert b"in:first" in await collect(process_rt.logs(sb, "c"))  # the terminal output is the log
    with pytest.raises(RuntimeError_):
        await process_rt.attach(sb, "c")  # not running any more
