"""``vagrant`` lab backend: one VM per droplet from the repository's ``Vagrantfile``, then the same
steps as on real hosts (:mod:`centaurus.labs.remote`) over ``vagrant ssh-config``.

``up`` writes the spec to ``<state>/spec.yaml`` and runs ``vagrant up`` with ``CENTAURUS_SPEC``
pointing at it and ``VAGRANT_DOTFILE_PATH`` under the state dir (so labs do not share VMs);
``down`` cleans the VMs like any remote lab, then ``vagrant destroy -f``. Options: ``box``,
``iface`` (substrate interface in the VMs, default ``eth1``), ``python``.

Not verified on the development machine (no vagrant, no KVM): the Vagrantfile and
``vagrant/provision.sh`` have never booted a VM here. What is tested: the inventory built from
``vagrant ssh-config`` output, and the clear error when vagrant is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from centaurus.labs.base import LabError
from centaurus.labs.remote import RemoteHost, RemoteLab
from centaurus.labs.spec import LabSpec

ROOT = Path(__file__).resolve().parents[2]
VAGRANTFILE = ROOT / "Vagrantfile"
VM_PYTHON = "/opt/centaurus/.venv/bin/python"


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """``vagrant ssh-config`` output -> {host alias: {option (lower case): value}}."""
    out: dict[str, dict[str, str]] = {}
    cur: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key.lower() == "host":
            cur = out.setdefault(value.strip(), {})
        elif cur is not None:
            cur[key.lower()] = value.strip().strip('"')
    return out


def inventory_from_ssh_config(text: str, config_path: Path, spec: LabSpec,
                              options: dict[str, str]) -> dict[str, RemoteHost]:
    """Each droplet is reached over ssh through its alias in ``config_path``; transitd's gRPC on
    the droplet's private-network (substrate) address, which the host can reach."""
    hosts = parse_ssh_config(text)
    missing = [d.name for d in spec.droplets if d.name not in hosts]
    if missing:
        raise LabError(f"vagrant ssh-config has no entry for droplet(s) {', '.join(missing)}")
    out: dict[str, RemoteHost] = {}
    for d in spec.droplets:
        h = hosts[d.name]
        out[d.name] = RemoteHost(name=d.name, address=d.ip, iface=options.get("iface", "eth1"),
                                 user=h.get("user", "vagrant"), port=int(h.get("port", "22")),
                                 key=h.get("identityfile", ""), ssh_config=str(config_path), ssh_host=d.name,
                                 python=options.get("python", VM_PYTHON))
    return out


class VagrantLab(RemoteLab):
    name = "vagrant"
    transport_name = "ssh"

    def _vagrant(self, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        if shutil.which("vagrant") is None:
            raise LabError(f"vagrant is not installed here (not on PATH); the VMs would come from "
                           f"{VAGRANTFILE} with the spec in {self.state_dir / 'spec.yaml'} -- this backend "
                           "is not verified on this machine")
        env = {**os.environ, "VAGRANT_VAGRANTFILE": str(VAGRANTFILE),
               "VAGRANT_DOTFILE_PATH": str(self.state_dir / ".vagrant"),
               "CENTAURUS_SPEC": str(self.state_dir / "spec.yaml")}
        if "box" in self.options:
            env["CENTAURUS_BOX"] = self.options["box"]
        cp = subprocess.run(["vagrant", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
        if cp.returncode != 0:
            lines = (cp.stderr or cp.stdout).strip().splitlines() or [f"exit {cp.returncode}"]
            raise LabError(f"vagrant {args[0]}: {lines[-1]}")
        return cp

    def up(self, spec: LabSpec) -> None:
        self._pending = spec
        super().up(spec)

    def load_inventory(self) -> dict[str, RemoteHost]:
        spec: LabSpec = self._pending
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "spec.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
        try:
            self._vagrant("up")
            text = self._vagrant("ssh-config").stdout
        except LabError:
            if (self.state_dir / ".vagrant").exists():  # half-made VMs: no lab state covers them yet
                with contextlib.suppress(LabError):
                    self._vagrant("destroy", "-f")
            raise
        cfg = self.state_dir / "ssh_config"
        cfg.write_text(text)
        return inventory_from_ssh_config(text, cfg, spec, self.options)

    def down(self) -> None:
        try:
            super().down()
        finally:
            if (self.state_dir / ".vagrant").exists():
                with contextlib.suppress(LabError):
                    self._vagrant("destroy", "-f")

    def status(self) -> dict[str, Any]:
        st = super().status()
        st["vagrantfile"] = str(VAGRANTFILE)
        return st
