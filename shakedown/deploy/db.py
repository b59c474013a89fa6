"""The db role: one PostgreSQL server (a container, or a unit per db host), one database per
node."""

from __future__ import annotations

import psycopg
from pyinfra.api import deploy

from shakedown.deploy import docker, systemd
from shakedown.deploy.steps import step
from shakedown.model import POSTGRES_PORT, HostModel, Images, NodeModel, Testnet
from shakedown.waiting import wait_for

PGDATA = "/var/lib/postgresql/data"
NODE_CONNECTIONS = 10  # a node's pool holds up to 8; verify and status open one more each


def settings(testnet: Testnet) -> tuple[str, ...]:
    """fsync off: a testnet's data is disposable, its speed is not. Connections for every node
    the server serves (200 up to 10 nodes, so small testnets keep their spec hash)."""
    connections = max(200, NODE_CONNECTIONS * len(testnet.nodes) + 100)
    return ("-c", "fsync=off", "-c", f"max_connections={connections}")


def volume_name(testnet: Testnet) -> str:
    return f"{testnet.name}-db-data"


def db_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    return docker.ContainerSpec(
        testnet=testnet.name, service="db", image=images.postgres, network=testnet.network,
        env=(("POSTGRES_FSYNC", "off"),), secret_env=(("POSTGRES_PASSWORD", testnet.db_password),),
        command=settings(testnet), ports=((testnet.ports.db, POSTGRES_PORT),),
        volumes=((volume_name(testnet), PGDATA),), bind=testnet.address,
    )


def db_unit(testnet: Testnet) -> systemd.UnitSpec:
    """The distribution's PostgreSQL server on the testnet's own cluster and port."""
    pgdata = f"{systemd.Paths(testnet.name).data}/db"
    line = " ".join([f"exec {systemd.PG_BIN}/postgres -D {pgdata} -p {testnet.ports.db}",
                     "-c listen_addresses=0.0.0.0", *settings(testnet)])
    return systemd.UnitSpec(testnet.name, "db", ("/bin/sh", "-c", line), user="postgres")


def admin_dsn(testnet: Testnet, host: HostModel | None = None) -> str:
    where = testnet.reach(host)
    return f"postgresql://postgres:{testnet.db_password}@{where}:{testnet.ports.db}/postgres"


def served_by(testnet: Testnet, host: HostModel | None) -> list[NodeModel]:
    """The nodes whose database lives on ``host`` (all of them on a Docker host)."""
    if host is None:
        return list(testnet.nodes)
    return [n for n in testnet.nodes if testnet.db_host(n) == host]


def _existing(testnet: Testnet, host: HostModel | None, timeout: int = 2) -> set[str]:
    with psycopg.connect(admin_dsn(testnet, host), connect_timeout=timeout) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}


def databases_present(testnet: Testnet, host: HostModel | None = None) -> bool:
    return {n.database for n in served_by(testnet, host)} <= _existing(testnet, host)


def create_databases(testnet: Testnet, host: HostModel | None = None) -> None:
    what = f"{host.name if host else testnet.container('db')} accepting connections"
    have = wait_for(lambda: _existing(testnet, host), lambda _: True, timeout=90, interval=0.3,
                    what=what)
    with psycopg.connect(admin_dsn(testnet, host), autocommit=True) as conn:
        for n in served_by(testnet, host):
            if n.database not in have:
                conn.execute(f'CREATE DATABASE "{n.database}"')


def databases(testnet: Testnet, host: HostModel | None = None) -> None:
    step(name=f"{testnet.name}: node databases", what="databases",
         done=lambda: databases_present(testnet, host),
         action=lambda: create_databases(testnet, host))


@deploy("db")
def db(testnet: Testnet, images: Images) -> None:
    docker.volume(testnet=testnet.name, volume_name=volume_name(testnet),
                  name=f"{testnet.name}: db volume")
    docker.container(name=f"{testnet.name}: db container", spec=db_spec(testnet, images))
    databases(testnet)


@deploy("db unit")
def db_on_host(testnet: Testnet, here: HostModel) -> None:
    systemd.postgres_cluster(name=f"{testnet.name}: db cluster", testnet=testnet.name,
                             password=testnet.db_password)
    systemd.unit(name=f"{testnet.name}: db unit", spec=db_unit(testnet))
    databases(testnet, here)
