"""A template for real staging VMs: copy to ``inventories/staging.py`` (kept out of git) and
name your hosts. No secret is in this file or in its copy:

- the SSH key is a file: ``SHAKEDOWN_SSH_KEY`` (default ``~/.ssh/id_ed25519``); a passphrase,
  if the key has one, is read from the file named by ``SHAKEDOWN_SSH_KEY_PASSPHRASE_FILE``;
- host keys are checked (``ssh_strict_host_key_checking: yes``) against
  ``SHAKEDOWN_KNOWN_HOSTS`` (default ``~/.ssh/known_hosts``): add the VMs' keys there first
  (e.g. from your cloud console), never trust on first use against staging;
- a user other than root deploys and runs the fault scripts with ``sudo -n`` (passwordless
  sudo: the deploy installs packages, writes units and runs them).

    SHAKEDOWN_SSH_USER=admin pyinfra inventories/staging.py exec -- uname -r
    SHAKEDOWN_SSH_USER=admin shakedown up -i inventories/staging.py

The database password defaults to the testnet's; set ``db_password`` from a file the same way
(``_secret_file``) when the VMs' ports are reachable by anyone else.
"""

import os
from pathlib import Path


def _secret_file(variable: str) -> str | None:
    """The content of the file named by ``variable``, or None when the variable is unset."""
    name = os.environ.get(variable)
    return Path(name).expanduser().read_text().strip() if name else None


_ssh = {
    "ssh_user": os.environ.get("SHAKEDOWN_SSH_USER", "root"),
    "ssh_key": os.path.expanduser(os.environ.get("SHAKEDOWN_SSH_KEY", "~/.ssh/id_ed25519")),
    "ssh_known_hosts_file": os.path.expanduser(
        os.environ.get("SHAKEDOWN_KNOWN_HOSTS", "~/.ssh/known_hosts")),
    "ssh_strict_host_key_checking": "yes",
}
if (_passphrase := _secret_file("SHAKEDOWN_SSH_KEY_PASSPHRASE_FILE")) is not None:
    _ssh["ssh_key_password"] = _passphrase

# One systemd testnet over three VMs: ``address`` is what peers dial, ``roles`` what runs there.
staging_vms = ([
    ("staging-1.example.net", {"address": "10.0.1.11",
                               "roles": ["chain", "proxy", "db", "node", "gateway"]}),
    ("staging-2.example.net", {"address": "10.0.1.12", "roles": ["proxy", "db", "node"]}),
    ("staging-3.example.net", {"address": "10.0.1.13", "roles": ["proxy", "db", "node"]}),
], {**_ssh, "testnet": "staging", "runtime": "systemd", "nodes": 3,
    "_sudo": _ssh["ssh_user"] != "root"})
