"""The default testnet: one local Docker host running every role.

1 anvil chain, 1 toxiproxy, 1 PostgreSQL, 3 nodes (100, 200, 300), 1 gateway. Environment:
SHAKEDOWN_TESTNET names the testnet (default ``shakedown``) so several live side by side;
SHAKEDOWN_PORT_BASE moves its 127.0.0.1 host ports (default 25000).
"""

import os

docker_hosts = [
    (
        "@local",
        {
            "testnet": os.environ.get("SHAKEDOWN_TESTNET", "shakedown"),
            "roles": ["chain", "proxy", "db", "node", "gateway"],
            "nodes": 3,
            "gateways": 1,
            "port_base": int(os.environ.get("SHAKEDOWN_PORT_BASE", "25000")),
        },
    )
]
