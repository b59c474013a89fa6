"""Real PostgreSQL, real anvil with the contracts, real refnode processes over real gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from refnode.envelopes import Signer
from shakedown.keys import payer
from shakedown.procs.anvil import AnvilProcess
from shakedown.procs.cluster import ProcessCluster
from shakedown.procs.postgres import PostgresProcess


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresProcess]:
    with PostgresProcess() as pg:
        yield pg


@pytest.fixture
def cluster(postgres: PostgresProcess, tmp_path: Path) -> Iterator[ProcessCluster]:
    """An empty network on its own anvil, so node ids start at 100 in every test."""
    with AnvilProcess() as anvil:
        c = ProcessCluster.deploy(anvil.rpc_url, postgres, tmp_path)
        try:
            yield c
        finally:
            c.stop()


@pytest.fixture
def three_nodes(cluster: ProcessCluster) -> ProcessCluster:
    for _ in range(3):
        cluster.add_node()
    return cluster


@pytest.fixture(scope="session")
def payer_signers() -> list[Signer]:
    return [Signer(bytes(payer(i).key)) for i in range(3)]
