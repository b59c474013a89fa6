"""Fifty nodes on one local Docker host: 1 anvil chain, 1 toxiproxy fronting every node (and
every node's database path), 1 PostgreSQL with one database per node, 50 nodes (100 ... 5000),
1 gateway. Every node subscribes to every other, so replication is 50 x 49 = 2,450 streams
through the one proxy. About 5 GB of memory (about 100 MB per node).

    shakedown up -i inventories/scale.py && pytest verify/ --inventory inventories/scale.py

Environment: SHAKEDOWN_TESTNET names the testnet (default ``scale``), SHAKEDOWN_PORT_BASE
moves its host ports (default 27000), SHAKEDOWN_NODES changes the count (1-90).
"""

import os

docker_hosts = [
    (
        "@local",
        {
            "testnet": os.environ.get("SHAKEDOWN_TESTNET", "scale"),
            "roles": ["chain", "proxy", "db", "node", "gateway"],
            "nodes": os.environ.get("SHAKEDOWN_NODES", "50"),
            "gateways": 1,
            "port_base": int(os.environ.get("SHAKEDOWN_PORT_BASE", "27000")),
            "health_timeout": 600,  # fifty nodes start on the same cores
        },
    )
]
