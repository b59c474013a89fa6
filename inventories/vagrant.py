"""The three Debian 12 VMs of the ``Vagrantfile`` (192.168.56.11-13) as one systemd testnet,
through pyinfra's ``@vagrant`` connector (it asks ``vagrant ssh-config`` for each VM's address,
user and key).

    vagrant up
    shakedown up -i inventories/vagrant.py     # = pyinfra inventories/vagrant.py deploy/testnet.py
    pytest verify/ --inventory inventories/vagrant.py
    shakedown down -i inventories/vagrant.py

``address`` is each VM's address on the private network: peers and the controller dial it.
``roles`` says what runs on each VM; nodes go round-robin over the VMs with the node role, so
node-100 runs on sdvm1, node-200 on sdvm2, node-300 on sdvm3, each with its own PostgreSQL and
its own toxiproxy. The user is ``vagrant``, so everything runs under ``sudo``.

Host keys: these are VMs you just made, so the first connection records each VM's key in
``.shakedown/vagrant_known_hosts`` and every later one checks it (``accept-new``); after
``vagrant destroy``, delete that file.
"""

from pathlib import Path

_known_hosts = Path(__file__).resolve().parents[1] / ".shakedown" / "vagrant_known_hosts"

vagrant_vms = ([
    ("@vagrant/sdvm1", {"address": "192.168.56.11",
                        "roles": ["chain", "proxy", "db", "node", "gateway"]}),
    ("@vagrant/sdvm2", {"address": "192.168.56.12", "roles": ["proxy", "db", "node"]}),
    ("@vagrant/sdvm3", {"address": "192.168.56.13", "roles": ["proxy", "db", "node"]}),
], {"testnet": "vagrant", "runtime": "systemd", "nodes": 3, "_sudo": True,
    "ssh_known_hosts_file": str(_known_hosts), "ssh_strict_host_key_checking": "accept-new"})
