"""What faults left behind on a testnet: the "no fault left behind" check reads this.

One line per leftover: a toxic on its toxiproxy, our iptables chain or tc handle in a
container's namespace, a paused or stopped container, a clock-skewed twin, an open ledger
entry. Empty means clean.

    assert not read_residue(testnet)
    assert not read_host_residue(targets, "sdvm")   # SSH hosts (VMs, systemd testnets)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shakedown.deploy.docker import LABEL_TESTNET
from shakedown.deploy.record import load_record
from shakedown.errors import FaultError, ShakedownError
from shakedown.faults.hostkinds import CLOCK_DROPIN
from shakedown.faults.hosts import RUN_DIR, TIMER_PREFIX, HostInjector
from shakedown.faults.injector import controller_ledger, host_ledger
from shakedown.faults.ledger import Ledger, merged
from shakedown.faults.names import IPTABLES_CHAIN, TC_HANDLE, TC_HANDLE_HEX
from shakedown.faults.ops import CLOCK_LABEL, engine, in_netns
from shakedown.faults.ssh import SSHTarget
from shakedown.model import Testnet
from shakedown.toxiproxy import ToxiproxyClient


def read_residue(testnet: Testnet) -> list[str]:
    """Every leftover fault artifact of ``testnet``, one human line each. On a remote Docker
    host only the ledgers and its toxiproxy are read: its engine is not this machine's."""
    found = [f"open fault {e.summary()}"
             for e in merged(controller_ledger(testnet), host_ledger(testnet)) if e.open]
    record = load_record(testnet.record_path) or {}
    if (record.get("proxy") or {}).get("api"):
        found += proxy_residue(record["proxy"]["api"])
    if testnet.remote_docker:
        return found
    label = {"label": f"{LABEL_TESTNET}={testnet.name}"}
    for c in engine().containers.list(all=True, filters=label):
        if c.status != "running":
            found.append(f"container {c.name} is {c.status}")
            continue
        if CLOCK_LABEL in c.labels:
            found.append(f"container {c.name} runs with a skewed clock "
                         f"(FAKETIME={c.labels[CLOCK_LABEL]})")
        found += _netns_residue(c.name)
    return found


def proxy_residue(api: str) -> list[str]:
    """Toxics and disabled proxies on the toxiproxy at ``api``."""
    found = []
    for proxy in ToxiproxyClient(api, timeout=5).proxies().values():
        found += [f"toxic {t.name} ({t.type}) on proxy {proxy.name}" for t in proxy.toxics]
        if not proxy.enabled:
            found.append(f"proxy {proxy.name} is disabled")
    return found


def _netns_residue(container: str) -> list[str]:
    try:
        rules = in_netns(container, ["iptables", "-w", "5", "-S"])
        qdiscs = in_netns(container, ["tc", "qdisc", "show", "dev", "eth0", "root"])
    except FaultError as e:
        return [f"container {container}: could not read its network namespace: {e}"]
    found = []
    if f"-N {IPTABLES_CHAIN}" in rules:
        count = sum(1 for ln in rules.splitlines() if ln.startswith(f"-A {IPTABLES_CHAIN} "))
        found.append(f"container {container}: iptables chain {IPTABLES_CHAIN} "
                     f"({count} rules)")
    if f" {TC_HANDLE} " in f" {qdiscs} ":
        found.append(f"container {container}: tc root qdisc {TC_HANDLE} on eth0: "
                     f"{qdiscs.strip()}")
    return found


def read_host_residue(targets: Sequence[SSHTarget], testnet: str) -> list[str]:
    """Every leftover fault artifact on SSH hosts, one line each (``h2: ...``): open entries
    of ``testnet``'s host ledger, our qdiscs, our iptables chain, TTL timers and scripts,
    clock drop-ins; a host that does not answer is a line too. Empty means clean."""
    found = []
    # Only the hosts' ledgers are read: the controller ledger given here is never touched.
    with HostInjector(testnet, targets, Ledger(Path("/dev/null/unused"))) as inj:
        for t in targets:
            try:
                found += [f"{t.name}: open fault {e.summary()}"
                          for e in inj.read_host_ledger(t.name) if e.open]
                out = inj.session(t.name).run(_HOST_RESIDUE).out
            except ShakedownError as e:
                found.append(f"{t.name}: could not look: {e}")
                continue
            found += [f"{t.name}: {line}" for line in out.splitlines() if line.strip()]
    return found


_HOST_RESIDUE = "\n".join([
    f"tc qdisc show | grep -E ' {TC_HANDLE_HEX}[0-9a-f]*: ' | sed 's/^/tc: /'",
    f"if sd_c=$(iptables -w 5 -S {IPTABLES_CHAIN} 2>/dev/null); then echo \"iptables chain "
    f"{IPTABLES_CHAIN} ($(printf '%s\\n' \"$sd_c\" | grep -c '^-A') rules)\"; fi",
    f"systemctl list-units --all --no-legend --plain '{TIMER_PREFIX}*' 2>/dev/null "
    "| sed 's/^/TTL timer: /'",
    f"ls {RUN_DIR} 2>/dev/null | sed 's/^/TTL script: /'",
    f"ls /run/systemd/system/*.d/{CLOCK_DROPIN} 2>/dev/null | sed 's/^/clock drop-in: /'",
    "true",
]) + "\n"
