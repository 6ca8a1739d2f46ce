"""A free TCP port on 127.0.0.1: for a process group's store (scalearn.engines) and an embedded MLflow server
(harness.tracking.server). Torch-free."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
