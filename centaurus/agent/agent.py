"""The node agent process: runtimes + network hook + pod manager + node heartbeat + endpoint.

Start order matters for what others observe: runtimes and the network hook are ready before the
Node says Ready, the endpoint listens before the Node advertises it, and pods are watched last.
Stopping (SIGTERM) detaches: workloads keep running and a restarted agent adopts them, as with
kubelet. ``teardown`` (SIGUSR2, or ``--cleanup`` offline) removes every pod, the node's network
setup and the Node object -- what the lab's ``down`` needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from centaurus import plugins
from centaurus.agent.actions import ActionRunner
from centaurus.agent.config import AgentConfig
from centaurus.agent.node import NodeRegistration
from centaurus.agent.pods import PodManager
from centaurus.agent.server import AgentServer
from centaurus.netplug.base import NetworkHook, NodeNet, load_hook
from centaurus.netplug.nsops import netns_path
from centaurus.runtimes.base import Runtime

log = logging.getLogger("centaurus.agent")
STATE_FILE = "agent.json"


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.dir = cfg.state_path
        self.client: Any = None
        self.runtimes: dict[str, Runtime] = {}
        self.hook: NetworkHook | None = None
        self.mgr: PodManager | None = None
        self.server: AgentServer | None = None
        self.node: NodeRegistration | None = None
        self.actions: ActionRunner | None = None

    # ---- pieces --------------------------------------------------------------------------------
    async def _runtimes(self, *, build_templates: bool = True) -> dict[str, Runtime]:
        out: dict[str, Runtime] = {}
        for name in dict.fromkeys([self.cfg.container_runtime, self.cfg.vm_runtime]):
            opts = dict(self.cfg.runtime_options.get(name, {}))
            if not build_templates:
                opts["build_template"] = False
            rt: Runtime = plugins.load("runtime", name)(self.dir / "runtime" / name, opts)
            await rt.prepare()
            out[name] = rt
        return out

    def _node_net(self) -> NodeNet:
        return NodeNet(
            node_name=self.cfg.node_name,
            host_ip=self.cfg.host_ip,
            state_dir=self.dir / "net",
            netns=self.cfg.netns,
            pod_cidr=self.cfg.pod_cidr,
            cluster_cidr=self.cfg.cluster_cidr,
            mtu=self.cfg.mtu,
            client=self.client,
            options=self.cfg.network_options,
        )

    # ---- run -----------------------------------------------------------------------------------
    async def start(self) -> None:
        from centaurus.client.aio import AsyncClient

        cfg = self.cfg
        t0 = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient.from_kubeconfig(cfg.kubeconfig, pool=max(32, cfg.status_concurrency * 2))
        self.runtimes = await self._runtimes()
        self.hook = load_hook(cfg.network, cfg.network_options)
        fields = await self.hook.start(self._node_net())
        host_netns = str(netns_path(cfg.netns)) if cfg.netns else None
        self.mgr = PodManager(cfg, self.client, self.runtimes, self.hook, self.dir / "logs", host_netns)
        self.server = AgentServer(self.mgr, cfg.allowed_clients)
        port = await self.server.start(
            cfg.listen_host, cfg.listen_port, cfg.tls_cert, cfg.tls_key, cfg.client_ca
        )
        self.node = NodeRegistration(self.client, cfg)
        self.node.endpoint = f"https://{cfg.listen_host}:{port}"
        self.node.port = port
        self.node.pod_cidr = fields.get("podCIDR")
        self.node.runtime_version = "crun+qemu" if cfg.vm_runtime == "vm" else cfg.container_runtime
        self.node.ready = True
        await self.node.register()
        self.node.start()
        self.mgr.start()
        self.actions = ActionRunner(self.mgr)
        self.actions.start()
        state = {
            "pid": os.getpid(),
            "port": port,
            "endpoint": self.node.endpoint,
            "node": cfg.node_name,
            "podCIDR": self.node.pod_cidr,
            "startSeconds": round(time.monotonic() - t0, 3),
        }
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.dir / STATE_FILE)
        log.info("node %s ready in %.2f s at %s", cfg.node_name, time.monotonic() - t0, self.node.endpoint)

    async def stop(self, teardown: bool = False) -> None:
        if self.actions is not None:
            await self.actions.close()
        if self.mgr is not None:
            await self.mgr.close()
            if teardown:
                n = await self.mgr.purge()
                log.info("node %s: removed %d pod sandboxes", self.cfg.node_name, n)
        if self.server is not None:
            await self.server.close()
        if self.node is not None:
            await self.node.close()
            if teardown:
                await self.node.unregister()
        if self.hook is not None:
            if teardown:
                destroy = getattr(self.hook, "destroy", None)
                if destroy is not None:
                    await destroy()
            await self.hook.close()
        for rt in self.runtimes.values():
            await rt.close()
        if self.client is not None:
            await self.client.close()
        with contextlib.suppress(FileNotFoundError):
            (self.dir / STATE_FILE).unlink()

    async def cleanup_offline(self) -> int:
        """Remove whatever an agent (maybe crashed) left under its state dir, without the API."""
        self.runtimes = await self._runtimes(build_templates=False)
        n = 0
        for rt in self.runtimes.values():
            for sb in await rt.sandboxes():
                with contextlib.suppress(Exception):
                    await rt.stop(sb, 0)
                await rt.remove(sb)
                n += 1
            await rt.close()
        purge = getattr(plugins_hook_class(self.cfg.network), "purge_offline", None)
        if purge is not None:
            await purge(self._node_net())
        with contextlib.suppress(FileNotFoundError):
            (self.dir / STATE_FILE).unlink()
        return n


def plugins_hook_class(name: str) -> Any:
    from importlib.metadata import entry_points

    from centaurus.netplug.base import GROUP

    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    return eps[name].load() if name in eps else None


async def run(cfg: AgentConfig, *, cleanup: bool = False) -> int:
    import signal

    agent = Agent(cfg)
    if cleanup:
        n = await agent.cleanup_offline()
        print(json.dumps({"node": cfg.node_name, "removed": n}))
        return 0
    stop = asyncio.Event()
    mode = {"teardown": False}
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def teardown() -> None:
        mode["teardown"] = True
        stop.set()

    loop.add_signal_handler(signal.SIGUSR2, teardown)
    # the owner may die, or a signal arrive, while the node is still starting (a VM template
    # build can take a minute): both end the start instead of waiting for it
    watchdog = asyncio.ensure_future(_watch_owner(cfg.owner_pid, teardown)) if cfg.owner_pid else None
    starting = asyncio.ensure_future(agent.start())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        log.warning("node %s stopped while starting", cfg.node_name)
        if watchdog is not None:
            watchdog.cancel()
        await agent.stop(teardown=mode["teardown"])
        return 1
    if starting.exception() is not None:
        log.error("node %s did not start", cfg.node_name, exc_info=starting.exception())
        stopped.cancel()
        if watchdog is not None:
            watchdog.cancel()
        await agent.stop(teardown=False)
        return 1
    await stopped
    if watchdog is not None:
        watchdog.cancel()
    await agent.stop(teardown=mode["teardown"])
    return 0


async def _watch_owner(pid: int, teardown: Callable[[], None]) -> None:
    start = _starttime(pid)
    while True:
        await asyncio.sleep(2.0)
        if start is None or _starttime(pid) != start:
            log.warning("owner process %d is gone: tearing the node down", pid)
            teardown()
            return


def _starttime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
