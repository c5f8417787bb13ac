"""``centaurus transit ...``: talk to one droplet's transitd (Mizar's transit CLI).

Address the daemon with ``--droplet NAME`` (its socket is looked up in the lab state under
``--lab-state D``, default ``~/.centaurus``) or directly with ``--socket PATH`` / ``--address
ADDRESS`` (``unix:/path`` or ``HOST:PORT``), before or after the verb. Replies print as JSON
(field names as in ``transit.proto``; ``-o yaml`` for YAML); errors are one line with the gRPC
status code. ``update-ep --json`` takes an endpoint as ``dump`` prints it.
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
Address = typer.Option("", "--address", help="transitd address: unix:/path or HOST:PORT")
Output = typer.Option("", "--output", "-o", help="json (default) | yaml")
Vni = typer.Option(..., "--vni", help="VPC id (VNI)")


class _Where:
    """Where the daemon is and how to print, from ``transit [OPTIONS] VERB [OPTIONS]``: options
    given after the verb win over the ones before it."""

    def __init__(self, droplet: str = "", lab_state: Path = Path("~/.centaurus"), socket: str = "",
                 address: str = "", output: str = "") -> None:
        self.droplet, self.lab_state, self.socket, self.address = droplet, lab_state, socket, address
        self.output = output


@app.callback()
def _common(ctx: typer.Context, droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
            address: str = Address, output: str = Output) -> None:
    """Address the daemon with --droplet (+ --lab-state), --socket or --address, before or after
    the verb; replies print as JSON (``-o yaml`` for YAML)."""
    ctx.obj = _Where(droplet, lab_state, socket, address, output)


def _where(ctx: typer.Context, droplet: str, lab_state: Path, socket: str, address: str,
           output: str) -> tuple[tuple[str, str], str]:
    base: _Where = ctx.obj if isinstance(ctx.obj, _Where) else _Where()
    if socket or address or droplet:
        target = resolve_address(droplet, lab_state if droplet else base.lab_state, socket, address)
    else:
        target = resolve_address(base.droplet, base.lab_state, base.socket, base.address)
    fmt = output or base.output or "json"
    if fmt not in ("json", "yaml"):
        fail(f"--output {fmt!r}: use json or yaml")
    return target, fmt


def resolve_address(droplet: str, lab_state: Path, socket: str, address: str) -> tuple[str, str]:
    if socket:
        return f"unix:{Path(socket).absolute()}", socket
    if address:
        return address, address
    if not droplet:
        fail("give --droplet NAME (with --lab-state), --socket PATH or --address ADDRESS")
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


def _print(doc: Any, fmt: str) -> None:
    if fmt == "yaml":
        import yaml

        print(yaml.safe_dump(doc, sort_keys=True), end="")
    else:
        print(json.dumps(doc, indent=1, sort_keys=True))


def _send(target: tuple[str, str], method: str, req: Any) -> Any:
    from centaurus.transitd.rpc import TransitClient, TransitError

    with TransitClient(target[0], name=target[1]) as c:
        try:
            return c.call(method, req)
        except TransitError as exc:
            fail(str(exc))


def _to_dict(msg: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    doc: dict[str, Any] = MessageToDict(msg, always_print_fields_with_no_presence=True,
                                        preserving_proto_field_name=True)
    return doc


def _call(where: tuple[tuple[str, str], str], method: str, **fields: Any) -> None:
    from centaurus.transitd.rpc import METHODS

    req_cls = METHODS[method][0]
    try:
        req = req_cls(**{k: v for k, v in fields.items() if v not in (None, "", [], ())})
    except (TypeError, ValueError) as exc:
        fail(f"{method}: {exc}")
    _print(_to_dict(_send(where[0], method, req)), where[1])


# Every verb also accepts the addressing options after it (they win over those before the verb).
def _opts(ctx: typer.Context, droplet: str, lab_state: Path, socket: str, address: str,
          output: str) -> tuple[tuple[str, str], str]:
    return _where(ctx, droplet, lab_state, socket, address, output)


# ---- droplet ------------------------------------------------------------------------------------
@app.command("status")
def status(ctx: typer.Context, droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
           address: str = Address, output: str = Output) -> None:
    """Daemon status: programs, where they are attached, pin dir, adopted or fresh."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "Status")


@app.command("stats")
def stats(ctx: typer.Context, droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
          address: str = Address, output: str = Output,
          nonzero: bool = typer.Option(False, "--nonzero", help="only counters that are not 0")) -> None:
    """Per-reason counters (summed over CPUs) and map entry counts."""
    from centaurus.transitd.rpc import pb

    target, fmt = _opts(ctx, droplet, lab_state, socket, address, output)
    r = _send(target, "Stats", pb.StatsRequest())
    counters = {k: int(v) for k, v in sorted(r.counters.items()) if v or not nonzero}
    _print({"counters": counters, "maps": {k: int(v) for k, v in sorted(r.maps.items())}}, fmt)


@app.command("dump")
def dump(ctx: typer.Context, droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
         address: str = Address, output: str = Output) -> None:
    """Every VPC, network, endpoint and peer droplet programmed on this droplet."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "Dump")


@app.command("flush-hostcache")
def flush_hostcache(ctx: typer.Context, droplet: str = Droplet, lab_state: Path = LabState,
                    socket: str = Socket, address: str = Address, output: str = Output) -> None:
    """Forget every learned direct path."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "FlushHostCache")


@app.command("update-droplet")
def update_droplet(ctx: typer.Context, ip: str = typer.Option(..., "--ip"),
                   mac: str = typer.Option(..., "--mac"), ifname: str = typer.Option("", "--ifname"),
                   droplet: str = Droplet,
                   lab_state: Path = LabState, socket: str = Socket, address: str = Address,
                   output: str = Output) -> None:
    """A peer droplet's substrate MAC (outer destination of frames to it)."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "UpdateDroplet", ip=ip, mac=mac,
          ifname=ifname)


@app.command("delete-droplet")
def delete_droplet(ctx: typer.Context, ip: str = typer.Option(..., "--ip"), droplet: str = Droplet,
                   lab_state: Path = LabState, socket: str = Socket, address: str = Address,
                   output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "DeleteDroplet", ip=ip)


# ---- VPCs and dividers --------------------------------------------------------------------------
@app.command("update-vpc")
def update_vpc(ctx: typer.Context, vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
               divider: list[str] = typer.Option([], "--divider", help="divider substrate IP (repeat)"),
               droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
               address: str = Address, output: str = Output) -> None:
    """Create or replace a VPC (VNI, CIDR, dividers)."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "UpdateVpc", vni=vni, cidr=cidr,
          dividers=divider)


@app.command("update-divider")
def update_divider(ctx: typer.Context, vni: int = Vni, ip: str = typer.Option(..., "--ip"),
                   droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
                   address: str = Address, output: str = Output) -> None:
    """Add one divider (substrate IP) to a VPC."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "UpdateDivider", vni=vni, ip=ip)


@app.command("delete-divider")
def delete_divider(ctx: typer.Context, vni: int = Vni, ip: str = typer.Option(..., "--ip"),
                   droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
                   address: str = Address, output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "DeleteDivider", vni=vni, ip=ip)


@app.command("delete-vpc")
def delete_vpc(ctx: typer.Context, vni: int = Vni, droplet: str = Droplet, lab_state: Path = LabState,
               socket: str = Socket, address: str = Address, output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "DeleteVpc", vni=vni)


@app.command("get-vpc")
def get_vpc(ctx: typer.Context, vni: int = Vni, droplet: str = Droplet, lab_state: Path = LabState,
            socket: str = Socket, address: str = Address, output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "GetVpc", vni=vni)


@app.command("get-dividers")
def get_dividers(ctx: typer.Context, vni: int = Vni, droplet: str = Droplet, lab_state: Path = LabState,
                 socket: str = Socket, address: str = Address, output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "GetDividers", vni=vni)


# ---- networks and bouncers ---------------------------------------------------------------------
@app.command("update-net")
def update_net(ctx: typer.Context, vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
               bouncer: list[str] = typer.Option([], "--bouncer", help="bouncer substrate IP (repeat)"),
               net_id: int = typer.Option(0, "--net-id"), droplet: str = Droplet,
               lab_state: Path = LabState, socket: str = Socket, address: str = Address,
               output: str = Output) -> None:
    """Create or replace a network of a VPC (CIDR, bouncers)."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "UpdateNet", vni=vni, cidr=cidr,
          bouncers=bouncer, net_id=net_id)


@app.command("update-bouncer")
def update_bouncer(ctx: typer.Context, vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
                   ip: str = typer.Option(..., "--ip", help="bouncer substrate IP"), droplet: str = Droplet,
                   lab_state: Path = LabState, socket: str = Socket, address: str = Address,
                   output: str = Output) -> None:
    """Add one bouncer to a network."""
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "UpdateBouncer", vni=vni, cidr=cidr,
          ip=ip)


@app.command("delete-bouncer")
def delete_bouncer(ctx: typer.Context, vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
                   ip: str = typer.Option(..., "--ip"), droplet: str = Droplet, lab_state: Path = LabState,
                   socket: str = Socket, address: str = Address, output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "DeleteBouncer", vni=vni, cidr=cidr,
          ip=ip)


@app.command("delete-net")
def delete_net(ctx: typer.Context, vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
               droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
               address: str = Address, output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "DeleteNet", vni=vni, cidr=cidr)


@app.command("get-net")
def get_net(ctx: typer.Context, vni: int = Vni,
            cidr: str = typer.Option(..., "--cidr", help="CIDR or an address in it"), droplet: str = Droplet,
            lab_state: Path = LabState, socket: str = Socket, address: str = Address,
            output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "GetNet", vni=vni, cidr=cidr)


@app.command("get-bouncers")
def get_bouncers(ctx: typer.Context, vni: int = Vni, cidr: str = typer.Option(..., "--cidr"),
                 droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
                 address: str = Address, output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "GetBouncers", vni=vni, cidr=cidr)


# ---- endpoints ------------------------------------------------------------------------------------
@app.command("update-ep")
def update_ep(ctx: typer.Context, vni: int = typer.Option(0, "--vni"), ip: str = typer.Option("", "--ip"),
              mac: str = typer.Option("", "--mac"),
              host_ip: str = typer.Option("", "--host-ip", help="substrate IP of its droplet"),
              veth: str = typer.Option("", "--veth", help="droplet-side veth when hosted here"),
              kind: str = typer.Option("simple", "--kind", help="simple | scaled"),
              backend: list[str] = typer.Option([], "--backend", help="scaled: backend IP (repeat)"),
              as_json: str = typer.Option("", "--json", help="the whole endpoint as JSON (e.g. from dump)"),
              droplet: str = Droplet, lab_state: Path = LabState, socket: str = Socket,
              address: str = Address, output: str = Output) -> None:
    """Create or replace an endpoint (simple: where it lives; scaled: its backends)."""
    where = _opts(ctx, droplet, lab_state, socket, address, output)
    if not as_json:
        if not vni or not ip:
            fail("update-ep needs --vni and --ip (or --json)")
        _call(where, "UpdateEp", vni=vni, ip=ip, mac=mac, host_ip=host_ip, veth=veth, kind=kind,
              backends=backend)
        return
    from google.protobuf.json_format import ParseDict, ParseError

    from centaurus.transitd.rpc import pb

    try:
        doc = json.loads(as_json)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if "host" in doc and "host_ip" not in doc:  # accept the short name too
            doc["host_ip"] = doc.pop("host")
        req = ParseDict(doc, pb.Endpoint(), ignore_unknown_fields=True)
    except (ValueError, ParseError) as exc:
        fail(f"--json: {str(exc).splitlines()[0]}")
    _print(_to_dict(_send(where[0], "UpdateEp", req)), where[1])


@app.command("delete-ep")
def delete_ep(ctx: typer.Context, vni: int = Vni, ip: str = typer.Option(..., "--ip"), droplet: str = Droplet,
              lab_state: Path = LabState, socket: str = Socket, address: str = Address,
              output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "DeleteEp", vni=vni, ip=ip)


@app.command("get-ep")
def get_ep(ctx: typer.Context, vni: int = Vni, ip: str = typer.Option(..., "--ip"), droplet: str = Droplet,
           lab_state: Path = LabState, socket: str = Socket, address: str = Address,
           output: str = Output) -> None:
    _call(_opts(ctx, droplet, lab_state, socket, address, output), "GetEp", vni=vni, ip=ip)
