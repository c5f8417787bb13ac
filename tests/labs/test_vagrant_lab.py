"""The vagrant backend as far as this machine allows (no vagrant, no KVM here): inventory from
``vagrant ssh-config``, a clear error without vagrant, and the Vagrantfile's inputs. Booting VMs
is NOT verified here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from centaurus.labs.base import LabError
from centaurus.labs.spec import load_spec
from centaurus.labs.vagrant import VAGRANTFILE, VagrantLab, inventory_from_ssh_config, parse_ssh_config

ROOT = Path(__file__).resolve().parents[2]
SSH_CONFIG = """Host d1
  HostName 192.168.121.17
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  IdentityFile "/st/.vagrant/machines/d1/libvirt/private_key"

Host d2
  HostName 127.0.0.1
  User vagrant
  Port 2200
  IdentityFile /st/.vagrant/machines/d2/virtualbox/private_key
"""


def test_inventory_from_ssh_config(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "labs" / "perf-p2p.yaml")
    assert parse_ssh_config(SSH_CONFIG)["d2"]["port"] == "2200"
    inv = inventory_from_ssh_config(SSH_CONFIG, tmp_path / "ssh_config", spec, {"iface": "ens6"})
    d1, d2 = inv["d1"], inv["d2"]
    assert (d1.address, d1.iface, d1.user, d1.ssh_host) == ("10.198.0.1", "ens6", "vagrant", "d1")
    assert d1.key == "/st/.vagrant/machines/d1/libvirt/private_key" and d2.port == 2200
    assert d1.python == "/opt/centaurus/.venv/bin/python"
    with pytest.raises(LabError, match="no entry for droplet"):
        inventory_from_ssh_config("Host d1\n  User vagrant\n", tmp_path / "c", spec, {})


@pytest.mark.skipif(shutil.which("vagrant") is not None, reason="vagrant is installed: the real path runs")
def test_without_vagrant_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    lab = VagrantLab(tmp_path / "lab", {})
    with pytest.raises(LabError, match="vagrant is not installed here") as ei:
        lab.up(load_spec(ROOT / "labs" / "default.yaml"))
    assert "not verified" in str(ei.value)
    written = yaml.safe_load((tmp_path / "lab" / "spec.yaml").read_text())
    assert [d["ip"] for d in written["droplets"]] == ["10.199.0.11", "10.199.0.12", "10.199.0.13"]
    assert not (tmp_path / "lab" / "lab.json").exists()
    lab.down()  # nothing to do, no error


def test_vagrantfile_reads_the_spec_fields_it_needs() -> None:
    text = VAGRANTFILE.read_text()
    for needle in ('ENV.fetch("CENTAURUS_SPEC"', 'fetch("droplets")', '"private_network", ip: d.fetch("ip")',
                   'provision "shell", path: "vagrant/provision.sh"', 'fetch("mtu", 1600)'):
        assert needle in text, needle
    assert (ROOT / "vagrant" / "provision.sh").stat().st_mode & 0o111
