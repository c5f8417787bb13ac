"""The Mizar management plane: VPC, Subnet (Net), Endpoint, Droplet, Bouncer and Divider objects
served by the API server (group ``mizar.com/v1``), one operator per kind, transitd programming.

Layers, each importing only the ones above it in this list (kopf's split of structs / clients /
reactor / handlers):

* :mod:`.model` -- names, labels, phases and status helpers (pure data);
* :mod:`.crds` -- the CustomResourceDefinitions (Mizar kinds + Arktos ``Network``) and their
  registration at control-plane start;
* :mod:`.ipam`, :mod:`.placement` -- address allocation in a subnet, droplet choice for bouncers
  and dividers (pure logic, unit tested);
* :mod:`.transit` -- asynchronous gRPC access to the droplets' transit daemons (real and hollow),
  with the per-droplet call record the fan-out measurement reads;
* :mod:`.pipeline` -- an object's pipeline Init -> ... -> Provisioned recorded in its status, so a
  restarted operator resumes where the previous one stopped;
* :mod:`.operators` -- one operator per kind on the shared controller runtime
  (:mod:`centaurus.controllers.runtime`), partitioned by a hash ring keyed by VPC;
* :mod:`.manager` / ``python -m centaurus.mizar`` -- one operator instance (a process);
  :mod:`.component` starts N of them with the control plane.
"""
