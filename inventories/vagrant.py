"""The three Debian 12 VMs of the ``Vagrantfile`` (192.168.56.11-13), through pyinfra's
``@vagrant`` connector: it asks ``vagrant ssh-config`` for each VM's address, user and key.

    vagrant up
    pyinfra inventories/vagrant.py exec -- uname -r

Faults on these VMs over SSH (the user is ``vagrant``; fault scripts run under ``sudo -n``):

    from shakedown.faults.hosts import HostInjector
    from shakedown.faults.ssh import targets_from_inventory
    inj = HostInjector("vagrant", targets_from_inventory("inventories/vagrant.py"), ".shakedown")
    inj.apply("netem", "@vagrant/sdvm1", {"delay_ms": 100, "dst": "192.168.56.12"}, ttl=60)

``vm_address`` is each VM's address on the private network (the one testnet peers use);
``vm_roles`` says what the systemd runtime will run there (not deployed yet: issue #8).
Host keys: these are VMs you just made, so the first connection records each VM's key in
``.shakedown/vagrant_known_hosts`` and every later one checks it (``accept-new``); after
``vagrant destroy``, delete that file.
"""

from pathlib import Path

_known_hosts = Path(__file__).resolve().parents[1] / ".shakedown" / "vagrant_known_hosts"

vagrant_vms = ([
    ("@vagrant/sdvm1", {"vm_address": "192.168.56.11",
                        "vm_roles": ["chain", "proxy", "db", "node", "gateway"]}),
    ("@vagrant/sdvm2", {"vm_address": "192.168.56.12", "vm_roles": ["proxy", "db", "node"]}),
    ("@vagrant/sdvm3", {"vm_address": "192.168.56.13", "vm_roles": ["proxy", "db", "node"]}),
], {"ssh_known_hosts_file": str(_known_hosts), "ssh_strict_host_key_checking": "accept-new"})
