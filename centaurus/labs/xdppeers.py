"""XDP_PASS on the far side of lab veths that receive XDP_TX / XDP_REDIRECT frames.

A frame an XDP program transmits into a veth (XDP_TX back out, or XDP_REDIRECT into it) is only
received by the peer when the peer runs NAPI; on this kernel (6.18) turning GRO on did NOT
make that happen for XDP_TX (the agent's ARP replies vanished), an XDP program on the peer does.
So for an XDP dataplane the lab attaches ``tg_pass`` (XDP_PASS + a receive counter, from
``xdp/build/trafficgen.o``) to every endpoint's ``eth0`` and every switch port. One program
instance serves all of them; the devices hold it, so it goes away with the namespaces.
"""

from __future__ import annotations

from collections.abc import Iterable

from centaurus.labs.base import LabError


class PassProgram:
    def __init__(self) -> None:
        from centaurus.bpf.obj import BpfObject, object_path

        try:
            self._obj = BpfObject(object_path("trafficgen"))
        except OSError as exc:
            raise LabError(f"cannot load the XDP_PASS program (xdp/build/trafficgen.o): "
                           f"{str(exc).splitlines()[0]}") from None
        self.fd = self._obj.program("tg_pass").fd

    def attach(self, netns: str, ifnames: Iterable[str]) -> None:
        from centaurus.bpf import xdp

        for name in ifnames:
            try:
                xdp.attach(name, self.fd, netns=netns, mode="native")
            except OSError as exc:
                raise LabError(f"attach XDP_PASS to {name} in {netns}: {str(exc).splitlines()[0]}") from None

    def close(self) -> None:
        self._obj.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m centaurus.labs.xdppeers NETNS DEV...``: XDP_PASS on DEVs inside NETNS and their
    TX checksum offload off -- what a remote lab runs on a host for each endpoint."""
    import argparse

    from centaurus.labs import nsutil

    ap = argparse.ArgumentParser(prog="centaurus.labs.xdppeers")
    ap.add_argument("netns")
    ap.add_argument("devs", nargs="+")
    ap.add_argument("--keep-tx-csum", action="store_true")
    a = ap.parse_args(argv)
    prog = PassProgram()
    try:
        prog.attach(a.netns, a.devs)
    finally:
        prog.close()
    if not a.keep_tx_csum:
        nsutil.in_netns(a.netns, lambda: nsutil.set_tx_csum(a.devs, False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
