"""Loopback port helpers for the local processes shakedown starts."""

from __future__ import annotations

import random
import socket

_ports_rng = random.SystemRandom()  # never a scenario's seeded RNG: ports are not the schedule


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host: str, port: int | None) -> bool:
    """True if nobody listens on host:port (TIME_WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port or 0))
        except OSError:
            return False
        return True


def free_port_base(nodes: int, tries: int = 200) -> int:
    """A port base whose whole block of host ports for ``nodes`` nodes is free on 127.0.0.1
    right now (``Ports.from_base``: base..base+3 and one port per node from base+10)."""
    from shakedown.errors import UnreachableError
    from shakedown.model import Ports

    for _ in range(tries):
        base = _ports_rng.randrange(30000, 60000, 100)
        if all(port_is_free("127.0.0.1", p) for p in Ports.from_base(base, nodes).all().values()):
            return base
    raise UnreachableError("no free block of host ports found between 30000 and 60000")
