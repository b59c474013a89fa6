"""The db role: one PostgreSQL server on a labelled volume, one database per node."""

from __future__ import annotations

import psycopg
from pyinfra.api import deploy

from shakedown.deploy import docker
from shakedown.deploy.steps import step
from shakedown.model import POSTGRES_PORT, Images, Testnet
from shakedown.waiting import wait_for

PGDATA = "/var/lib/postgresql/data"


def volume_name(testnet: Testnet) -> str:
    return f"{testnet.name}-db-data"


def db_spec(testnet: Testnet, images: Images) -> docker.ContainerSpec:
    """Postgres with fsync off: a testnet's data is disposable, its speed is not."""
    return docker.ContainerSpec(
        testnet=testnet.name, service="db", image=images.postgres, network=testnet.network,
        env=(("POSTGRES_FSYNC", "off"),), secret_env=(("POSTGRES_PASSWORD", testnet.db_password),),
        command=("-c", "fsync=off", "-c", "max_connections=200"),
        ports=((testnet.ports.db, POSTGRES_PORT),), volumes=((volume_name(testnet), PGDATA),),
    )


def admin_dsn(testnet: Testnet) -> str:
    return f"postgresql://postgres:{testnet.db_password}@127.0.0.1:{testnet.ports.db}/postgres"


def _existing(testnet: Testnet, timeout: int = 2) -> set[str]:
    with psycopg.connect(admin_dsn(testnet), connect_timeout=timeout) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}


def databases_present(testnet: Testnet) -> bool:
    return {n.database for n in testnet.nodes} <= _existing(testnet)


def create_databases(testnet: Testnet) -> None:
    have = wait_for(lambda: _existing(testnet), lambda _: True, timeout=90, interval=0.3,
                    what=f"{testnet.container('db')} accepting connections")
    with psycopg.connect(admin_dsn(testnet), autocommit=True) as conn:
        for n in testnet.nodes:
            if n.database not in have:
                conn.execute(f'CREATE DATABASE "{n.database}"')


@deploy("db")
def db(testnet: Testnet, images: Images) -> None:
    docker.volume(testnet=testnet.name, volume_name=volume_name(testnet),
                  name=f"{testnet.name}: db volume")
    docker.container(name=f"{testnet.name}: db container", spec=db_spec(testnet, images))
    step(name=f"{testnet.name}: node databases", what="databases",
         done=lambda: databases_present(testnet), action=lambda: create_databases(testnet))

