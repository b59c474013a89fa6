"""Loopback port helpers for the local processes shakedown starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path

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


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default if unknown)."""
    try:
        low, high = (int(x) for x in Path(path).read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port_base(nodes: int, tries: int = 200) -> int:
    """A port base whose whole block of host ports for ``nodes`` nodes is free on 127.0.0.1
    right now (``Ports.from_base``: base..base+3 and one port per node from base+10).

    Bases come from outside the kernel's ephemeral range: there, any outgoing connection may
    take a block's port between this check and Docker's bind (CI saw it happen)."""
    from shakedown.errors import UnreachableError
    from shakedown.model import Ports

    span = 10 + nodes
    low, high = ephemeral_range()
    bases = [b for b in range(10000, 65000 - span, 100) if b + span <= low or b > high]
    for _ in range(tries):
        base = _ports_rng.choice(bases)
        if all(port_is_free("127.0.0.1", p) for p in Ports.from_base(base, nodes).all().values()):
            return base
    raise UnreachableError("no free block of host ports found outside the ephemeral range"
                           f" {low}-{high}; stop testnets you no longer need (shakedown down)")
