"""A refnode network of local processes on one anvil and one PostgreSQL: no Docker needed.

For refnode's own tests and benchmarks; the Docker and VM testnets come from deploy/.

    with AnvilProcess() as anvil, PostgresProcess() as pg:
        cluster = ProcessCluster.deploy(anvil.rpc_url, pg, logdir)
        node_id = cluster.add_node()
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from web3 import Web3

from shakedown.chain.deploy import deploy_contracts
from shakedown.chain.ops import Chain
from shakedown.keys import admin_account, gateway, key_hex, node_owner, node_signer
from shakedown.procs.postgres import PostgresProcess
from shakedown.procs.refnode import GatewayProcess, RefnodeProcess

_run = uuid.uuid4().hex[:6]
_dbs = itertools.count()



@dataclass
class ProcessCluster:
    """Nodes registered on-chain (ids 100, 200, ... in order) and running as processes."""

    chain: Chain
    postgres: PostgresProcess
    logdir: Path
    nodes: dict[int, RefnodeProcess] = field(default_factory=dict)
    gateways: list[GatewayProcess] = field(default_factory=list)

    @classmethod
    def deploy(cls, rpc_url: str, postgres: PostgresProcess, logdir: Path) -> ProcessCluster:
        w3 = Web3(Web3.HTTPProvider(rpc_url))
        return cls(Chain(w3, deploy_contracts(w3, admin_account()), admin_account()),
                   postgres, logdir)

    @property
    def rpc_url(self) -> str:
        return str(self.chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]

    def add_node(self, extra_env: dict[str, str] | None = None, start: bool = True) -> int:
        """Register a node (fresh key, own database) and add it to the canonical network."""
        n = len(self.chain.all_nodes())
        addresses = self.chain.addresses
        proc = RefnodeProcess(name=f"node-{n}", signer_key=key_hex(node_signer(n)),
                              db_dsn=self.postgres.create_database(f"node_{_run}_{next(_dbs)}"),
                              chain_rpc=self.rpc_url, node_registry=addresses.node_registry,
                              rate_registry=addresses.rate_registry, extra_env=extra_env,
                              logdir=self.logdir)
        node_id = self.chain.register_node(node_owner(n).address, node_signer(n).address,
                                           proc.endpoint)
        self.chain.add_to_network(node_id)
        proc.name = f"node-{node_id}"
        proc.logfile = self.logdir / f"{proc.name}.log"
        self.nodes[node_id] = proc
        if start:
            proc.start()
        return node_id

    def add_gateway(self) -> GatewayProcess:
        n = len(self.gateways)
        proc = GatewayProcess(name=f"gateway-{n}", payer_key=key_hex(gateway(n)),
                              chain_rpc=self.rpc_url,
                              node_registry=self.chain.addresses.node_registry,
                              logdir=self.logdir)
        self.gateways.append(proc)
        proc.start()
        return proc

    def db(self, node_id: int) -> psycopg.Connection:
        return psycopg.connect(self.nodes[node_id].env["REFNODE_DB_DSN"], autocommit=True)

    def stop(self) -> None:
        for proc in [*self.gateways, *self.nodes.values()]:
            proc.stop()
