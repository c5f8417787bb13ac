"""``ssh`` lab backend: droplets are real hosts reached over ssh (NIC testbeds).

``--lab ssh,inventory=hosts.yaml`` (see :mod:`centaurus.labs.remote` for the inventory and what is
created on each host). ``transport=netns`` runs the same backend against namespaces standing in
for hosts -- how it is tested on one machine; the ssh hop itself is verified only on real hosts.
"""

from __future__ import annotations

from centaurus.labs.remote import RemoteLab


class SshLab(RemoteLab):
    name = "ssh"
    transport_name = "ssh"
