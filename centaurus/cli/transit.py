"""``centaurus transit ...``: talk to one droplet's transitd (Mizar's transit CLI).

Address the daemon with ``--droplet NAME`` (its socket is looked up in the lab state under
``--lab-state D``, default ``~/.centaurus``) or directly with ``--socket PATH`` / ``--address
HOST:PORT``. Replies print as JSON; errors are one line with the gRPC status code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from centaurus.cli.common import fail

app = typer.Typer(help="Talk to a droplet's transitd.", no_args_is_help=True)

Droplet = typer.Option("", "--droplet", "-d", help="droplet name in the lab")
LabState = typer.Option(Path("~/.centaurus"), "--lab-state", help="lab state dir (D or D/lab)")
Socket = typer.Option("", "--socket", help="transitd unix socket path")
Address = typer.Option("", "--address", help="transitd HOST:PORT (real hosts)")
Vni = typer.Option(..., "--vni", help="VPC id (VNI)")


def resolve_address(droplet: str, lab_state: Path, socket: str, address: str) -> tuple[str, str]:
    if socket:
        return f"unix:{Path(socket).absolute()}", socket
    if address:
        return address, address
    if not droplet:
        fail("give --droplet NAME (with --lab-state), --socket PATH or --address HOST:PORT")
    from centaurus.labs.base import LabError
    from centaurus.labs.state import LabState as State
    from centaurus.labs.state import resolve_state_dir

    d = resolve_state_dir(lab_state.expanduser())
    try:
        st = State.load(d)
    except LabError as exc:
        fail(str(exc))
    if st is None:
        fail(f"no lab state in {d}")
    if droplet not in st.sockets:
        known = ", ".join(sorted(st.sockets)) or "none (this lab's dataplane runs no transitd)"
        fail(f"lab {st.id} has no transitd for droplet {droplet!r} (known: {known})")
    return st.sockets[droplet], droplet


def _call(target: tuple[str, str], method: str, **fields: Any) -> None:
    from google.protobuf.json_format import MessageToDict

    from centaurus.transitd.rpc import METHODS, TransitClient, TransitError

    req_cls = METHODS[method][0]
    try:
        req = req_cls(**{k: v for k, v in fields.items() if v not in (None, "", [], ())})
    except (TypeError, ValueError) as exc:
        fail(f"{method}: {exc}")
    with TransitClient(target[0], name=target[1]) as c:
        try:
            reply = c.call(method, req)
        except TransitError as exc:
            fail(str(exc))
    print(json.dumps(MessageToDict(reply, always_print_fields_with_no_presence=True), indent=1,
                     sort_keys=True))


# ---- droplet ------------------------------------------------------------------------------------
@app.command("status")
def status(droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
           address: str = Address) -> None:
    """Daemon status: programs, where they are attached, pin dir, adopted or fresh."""
    _call(resolve_address(droplet, lab_state, socket, address), "Status")


@app.command("stats")
def stats(droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
          address: str = Address,
          nonzero: bool = typer.Option(False, "--nonzero", help="only counters that are not 0")) -> None:
    """Per-reason counters (summed over CPUs) and map entry counts."""
    from centaurus.transitd.rpc import TransitClient, TransitError, pb

    addr, name = resolve_address(droplet, lab_state, socket, address)
    with TransitClient(addr, name=name) as c:
        try:
            r = c.typed("Stats", pb.StatsRequest(), pb.StatsReply)
        except TransitError as exc:
            fail(str(exc))
    counters = {k: int(v) for k, v in sorted(r.counters.items()) if v or not nonzero}
    print(json.dumps({"counters": counters, "maps": dict(sorted(r.maps.items()))}, indent=1))


@app.command("dump")
def dump(droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
         address: str = Address) -> None:
    """Every VPC, network, endpoint and peer droplet programmed on this droplet."""
    _call(resolve_address(droplet, lab_state, socket, address), "Dump")


@app.command("flush-hostcache")
def flush_hostcache(droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
                    address: str = Address) -> None:
    """Forget every learned direct path."""
    _call(resolve_address(droplet, lab_state, socket, address), "FlushHostCache")


@app.command("update-droplet")
def update_droplet(ip: str = typer.Option(..., "--ip"), mac: str = typer.Option(..., "--mac"),
                   ifname: str = typer.Option("", "--ifname"), droplet: str = Droplet,
                   lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    """A peer droplet's substrate MAC (outer destination of frames to it)."""
    _call(resolve_address(droplet, lab_state, socket, address), "UpdateDroplet", ip=ip, mac=mac,
          ifname=ifname)


@app.command("delete-droplet")
def delete_droplet(ip: str = typer.Option(..., "--ip"), droplet: str = Droplet, lab_state: Path = LabState,
                   socket: str = Socket, address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "DeleteDroplet", ip=ip)


# ---- VPCs and dividers --------------------------------------------------------------------------
@app.command("update-vpc")
def update_vpc(vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
               divider: list[str] = typer.Option([], "--divider", help="divider substrate IP (repeat)"),
               droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
               address: str = Address) -> None:
    """Create or replace a VPC (VNI, CIDR, dividers)."""
    _call(resolve_address(droplet, lab_state, socket, address), "UpdateVpc", vni=vni, cidr=cidr,
          dividers=divider)


@app.command("update-divider")
def update_divider(vni: int = Vni, ip: str = typer.Option(..., "--ip", help="divider substrate IP"),
                   droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
                   address: str = Address) -> None:
    """Add one divider to a VPC."""
    _call(resolve_address(droplet, lab_state, socket, address), "UpdateDivider", vni=vni, ip=ip)


@app.command("delete-divider")
def delete_divider(vni: int = Vni, ip: str = typer.Option(..., "--ip"), droplet: str = Droplet,
                   lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "DeleteDivider", vni=vni, ip=ip)


@app.command("delete-vpc")
def delete_vpc(vni: int = Vni, droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
               address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "DeleteVpc", vni=vni)


@app.command("get-vpc")
def get_vpc(vni: int = Vni, droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
            address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "GetVpc", vni=vni)


@app.command("get-dividers")
def get_dividers(vni: int = Vni, droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
                 address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "GetDividers", vni=vni)


# ---- networks and bouncers ---------------------------------------------------------------------
@app.command("update-net")
def update_net(vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
               bouncer: list[str] = typer.Option([], "--bouncer", help="bouncer substrate IP (repeat)"),
               net_id: int = typer.Option(0, "--net-id"), droplet: str = Droplet,
               lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    """Create or replace a network of a VPC (CIDR, bouncers)."""
    _call(resolve_address(droplet, lab_state, socket, address), "UpdateNet", vni=vni, cidr=cidr,
          bouncers=bouncer, net_id=net_id)


@app.command("update-bouncer")
def update_bouncer(vni: int = Vni, cidr: str = typer.Option(..., "--cidr", help="the network"),
                   ip: str = typer.Option(..., "--ip", help="bouncer substrate IP"), droplet: str = Droplet,
                   lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    """Add one bouncer to a network."""
    _call(resolve_address(droplet, lab_state, socket, address), "UpdateBouncer", vni=vni, cidr=cidr, ip=ip)


@app.command("delete-bouncer")
def delete_bouncer(vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
                   ip: str = typer.Option(..., "--ip"), droplet: str = Droplet, lab_state: Path = LabState,
                   socket: str = Socket, address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "DeleteBouncer", vni=vni, cidr=cidr, ip=ip)


@app.command("delete-net")
def delete_net(vni: int = Vni, cidr: str = typer.Option(..., "--cidr"), droplet: str = Droplet,
               lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "DeleteNet", vni=vni, cidr=cidr)


@app.command("get-net")
def get_net(vni: int = Vni, cidr: str = typer.Option(..., "--cidr", help="CIDR or an address in it"),
            droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
            address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "GetNet", vni=vni, cidr=cidr)


@app.command("get-bouncers")
def get_bouncers(vni: int = Vni, cidr: str = typer.Option(..., "--cidr"), droplet: str = Droplet,
                 lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "GetBouncers", vni=vni, cidr=cidr)


# ---- endpoints ------------------------------------------------------------------------------------
@app.command("update-ep")
def update_ep(vni: int = Vni, ip: str = typer.Option(..., "--ip"), mac: str = typer.Option("", "--mac"),
              host_ip: str = typer.Option("", "--host-ip", help="substrate IP of its droplet"),
              veth: str = typer.Option("", "--veth", help="droplet-side veth when hosted here"),
              kind: str = typer.Option("simple", "--kind", help="simple | scaled"),
              backend: list[str] = typer.Option([], "--backend", help="scaled: backend IP (repeat)"),
              droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
              address: str = Address) -> None:
    """Create or replace an endpoint (simple: where it lives; scaled: its backends)."""
    _call(resolve_address(droplet, lab_state, socket, address), "UpdateEp", vni=vni, ip=ip, mac=mac,
          host_ip=host_ip, veth=veth, kind=kind, backends=backend)


@app.command("delete-ep")
def delete_ep(vni: int = Vni, ip: str = typer.Option(..., "--ip"), droplet: str = Droplet,
              lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "DeleteEp", vni=vni, ip=ip)


@app.command("get-ep")
def get_ep(vni: int = Vni, ip: str = typer.Option(..., "--ip"), droplet: str = Droplet,
           lab_state: Path = LabState, socket: str = Socket, address: str = Address) -> None:
    _call(resolve_address(droplet, lab_state, socket, address), "GetEp", vni=vni, ip=ip)
