"""Control-plane component hook (entry point ``centaurus.components`` ``scheduler``): the
supervisor starts one scheduler process next to the API server and the controllers."""

from __future__ import annotations

import sys
from pathlib import Path

from centaurus.controlplane.supervisor import Component, ControlPlaneState


def components(st: ControlPlaneState) -> list[Component]:
    d = Path(st.state_dir)
    return [
        Component(
            "scheduler",
            [
                sys.executable,
                "-m",
                "centaurus.scheduler",
                "--kubeconfig",
                str(d / "kubeconfig"),
                "--stats-file",
                str(d / "scheduler-stats.json"),
                "--log-level",
                "INFO",
            ],
        )
    ]
