"""Faults on SSH hosts (VMs, VM-like containers, systemd testnets): the view and the executor.

A target is a host, or a service on one (``shakedown.faults.hostinv``): its ``services:`` in
the inventory, or a systemd testnet's own units. The entry names the host, and a service's
unit becomes the ``unit`` parameter. Toward a peer means toward its host's address; SSH to the
host always passes our iptables chain, so the controller can always clear.

The executor turns a plan's steps into shell (systemctl, the libfaketime drop-in, python3's
urllib against the host's own toxiproxy or chain on 127.0.0.1, and the iptables and tc shell
of ``shakedown.faults.netshell``) and runs one script per apply over SSH: precheck, the intent
into the host's ledger ``/var/lib/shakedown/faults/<testnet>.json``, act, active or rolled
back. Undo steps are shell (``{"op": "sh", "host": ..., "cmd": ...}``) and idempotent, so a
clear works from either ledger alone. A TTL is a transient systemd timer on the host
(``shakedown-expire-<tag>``): the host heals itself, and records it, with no controller alive.

The host's ledger is written by shakedown's own ``ledger.py`` shipped to the host (``python3
-S`` runs it there), so both ends share one format and one lock.

    backend = SSHBackend(group)        # or SSHBackend.of("sdnet", [SSHTarget(...)], state_dir)
    Injector(backend).apply("netem", "vm1", {"delay_ms": 100, "dst": "10.213.0.12"}, ttl=60)
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shakedown.deploy.record import load_record
from shakedown.errors import ConfigError, FaultError, NotFoundError, ShakedownError
from shakedown.faults import ledger as ledger_module
from shakedown.faults import netshell
from shakedown.faults.docker import proxy_residue, refuse_open, remove_ledger
from shakedown.faults.hostinv import HostGroup
from shakedown.faults.kind import Kind, Plan, Service, Step
from shakedown.faults.ledger import Entry, Ledger
from shakedown.faults.names import HOST_LEDGER_DIR, HOST_STATE_DIR
from shakedown.faults.netshell import REFUSED, refuse
from shakedown.faults.ops import run_step
from shakedown.faults.ssh import Session, SSHTarget

# A look (ledger, residue) that hangs this long is reported and may be retried on a new
# connection; an sshd stalled on one session must not hold a reader for the default 120 s.
LOOK_TIMEOUT_S = 30.0
RUN_DIR = "/run/shakedown/expire"  # TTL scripts: gone at reboot, like the faults themselves
TIMER_PREFIX = "shakedown-expire-"
_SEPARATOR = "--- shakedown: intents not yet in the ledger ---"
_LEDGER_CLI = '''

def _absorb(ledger: Ledger) -> None:
    """Move intents written by the shell (``<ledger>.d/<id>.json``) into the ledger; an entry
    already there is newer and wins. Appended by shakedown.faults.hosts."""
    pending = ledger.path.with_suffix(".d")
    files = sorted(pending.glob("*.json")) if pending.is_dir() else []
    if not files:
        return
    with ledger._locked() as items:
        have = {i["id"] for i in items}
        for f in files:
            try:
                item = asdict(Entry(**json.loads(f.read_text())))
            except (OSError, ValueError, TypeError):
                continue
            if item["id"] not in have:
                items.append(item)
                have.add(item["id"])
    for f in files:
        f.unlink(missing_ok=True)


if __name__ == "__main__":  # the host side of a ledger: python3 HELPER CMD LEDGER [ID [JSON]]
    import sys

    _cmd, _ledger = sys.argv[1], Ledger(Path(sys.argv[2]))
    _absorb(_ledger)
    if _cmd == "update":
        _changes = json.loads(sys.argv[4])
        for _k in ("applied_at", "cleared_at"):
            if _changes.get(_k) == "now":
                _changes[_k] = time.time()
        _entry = _ledger.get(sys.argv[3])
        if _entry is not None and "notes" in _changes:
            _changes["notes"] = {**_entry.notes, **_changes["notes"]}
        _done = _ledger.update(sys.argv[3], **_changes) if _entry else None
        print(json.dumps(asdict(_done) if _done else None))
    elif _cmd == "state":
        _entry = _ledger.get(sys.argv[3])
        print(_entry.state if _entry else "absent")
'''


def helper_source() -> str:
    """shakedown's ledger module plus a small command line: what runs on the host."""
    return Path(ledger_module.__file__).read_text() + _LEDGER_CLI


def helper_path() -> str:
    digest = hashlib.sha256(helper_source().encode()).hexdigest()[:8]
    return f"{HOST_STATE_DIR}/sd-ledger-{digest}.py"


def intents_dir(ledger: str) -> str:
    """Where the shell writes an intent before acting: ``<ledger without .json>.d``."""
    return shlex.quote(str(Path(ledger).with_suffix(".d")))


def timer_unit(tag: str) -> str:
    return f"{TIMER_PREFIX}{tag}"


FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"
CLOCK_DROPIN = "shakedown-clock.conf"


class SSHView:
    """What the planners ask, answered from the inventory and (once per host) the host."""

    runtime = "ssh"

    def __init__(self, backend: SSHBackend) -> None:
        self.backend = backend
        self.group = backend.group

    @property
    def nodes(self) -> list[Service]:
        model = self.group.model
        return [self.group.service(n.name) for n in model.nodes] if model else []

    def resolve(self, spec: str, roles: tuple[str, ...] = ()) -> list[Service]:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise ConfigError("empty target; name a host or a service on one")
        found = [s for name in names for s in (self.nodes if name == "nodes" else
                                               [self.group.service(name)])]
        for s in found:
            if roles and s.role not in roles:
                raise ConfigError(f"target {s.name} is a {s.role}; this fault applies to: "
                                  f"{', '.join(roles)}")
        return list(dict.fromkeys(found))

    def toward(self, src: Service, dest: Service) -> list[tuple[str, int]]:
        if dest.at == src.at:
            raise ConfigError(f"{dest.name} runs on {src.at} too: host faults cannot tell "
                              "apart services of one host")
        model = self.group.model  # a testnet's hosts: the address peers dial
        known = {h.name: h.address for h in model.hosts} if model else {}
        return [(f"{known.get(dest.at) or self.backend.hosts[dest.at].address}/32", 0)]

    def inbound(self, service: Service) -> list[list[str]]:
        return [["-j", "DROP"]]  # on a host: everything (but what ``keep`` lets through)

    def keep(self, service: Service, values: Mapping[str, Any]) -> list[list[str]]:
        port = str(values.get("ssh_port") or self.backend.hosts[service.at].port)
        return [["-p", "tcp", "--dport", port, "-j", "RETURN"],
                ["-p", "tcp", "--sport", port, "-j", "RETURN"]]

    def device(self, service: Service, addresses: list[str]) -> str:
        device, routes = self.backend.facts(service.at, [a.split("/")[0] for a in addresses])
        if not addresses:
            return device
        found = {routes.get(a.split("/")[0], "") for a in addresses}
        if len(found) != 1 or "" in found:
            raise ConfigError(f"destinations {', '.join(addresses)} are not reached through "
                              f"one device (routes: {routes})")
        return found.pop()

    def free_class(self, service: Service, device: str) -> int:
        listing = self.backend.session(service.at).check(
            f"tc class show dev {shlex.quote(device)} 2>/dev/null; true")
        return netshell.free_minor(netshell.classes_in(listing), f"{service.at} {device}")

    def has_netem(self, service: Service) -> bool:
        return True  # a VM's kernel loads sch_netem on demand; a failure names the module

    def toxiproxies(self, service: Service, path: str) -> list[tuple[str, str, str]]:
        host, proxy, port = self.group.toxiproxy(service.name, path)
        return [(host, f"http://127.0.0.1:{port}", proxy)]

    def chain_rpc(self) -> tuple[str, str]:
        model = self.group.model
        if model is None or not model.has("chain"):
            raise ConfigError(f"{self.group.testnet}: no chain runs on these hosts")
        host = model.role_host("chain")
        return host.name, f"http://{host.address}:{model.ports.chain}"

    def controller_rpc(self) -> str:
        return self.chain_rpc()[1]


class SSHBackend:
    """The executor of SSH hosts sharing one ledger name: one session and one host ledger
    per host, a controller ledger ``<controller_dir>/host-faults.json``."""

    runtime = "ssh"

    def __init__(self, group: HostGroup) -> None:
        self.group = group
        self.testnet = group.testnet
        self.hosts = {t.name: t for t in group.targets}
        self.label = f"hosts of {group.testnet}"
        self.title = f"{self.label} ({', '.join(self.hosts)})"
        self.controller = Ledger(Path(group.controller_dir) / "host-faults.json")
        self.host_ledger = f"{HOST_LEDGER_DIR}/{group.testnet}.json"
        self._sessions: dict[str, Session] = {}
        self._facts: dict[str, tuple[str, dict[str, str]]] = {}

    @classmethod
    def of(cls, testnet: str, hosts: Iterable[SSHTarget], controller_dir: Path) -> SSHBackend:
        """Hosts given directly (no inventory): every one a plain host, no services."""
        return cls(HostGroup(testnet, tuple(hosts), Path(controller_dir)))

    def session(self, host: str) -> Session:
        if host not in self.hosts:
            raise NotFoundError(f"unknown host {host!r}; known: {', '.join(self.hosts)}")
        if host not in self._sessions:
            self._sessions[host] = Session(self.hosts[host])
        return self._sessions[host]

    def close(self) -> None:
        for s in self._sessions.values():
            s.close()
        self._sessions.clear()

    def view(self) -> SSHView:
        return SSHView(self)

    def prepare(self, kind: Kind, target: str, params: dict[str, Any],
                ) -> tuple[SSHView, list[Service], str, dict[str, Any]]:
        """One host or service; the entry names its host and a service's unit is the
        ``unit`` parameter (``stop app`` -> ``stop h3 unit=sdvm-app.service``)."""
        target = target or kind.default_target
        if "," in target or target == "nodes":
            raise ConfigError(f"{target}: on SSH hosts a fault takes one host or service")
        view = self.view()
        (service,) = view.resolve(target, kind.roles)
        filled = dict(params)
        if "unit" in kind.params:
            if service.unit:
                filled.setdefault("unit", service.unit)
            elif not filled.get("unit"):
                raise ConfigError(f"{kind.name}: missing parameter unit=... (the systemd unit "
                                  f"on {service.at})")
        return view, [service], service.at, filled

    def facts(self, host: str, addresses: list[str]) -> tuple[str, dict[str, str]]:
        """The host's default device and the devices toward ``addresses`` (read once per
        host and address); the ledger helper is shipped on the first visit."""
        device, routes = self._facts.get(host, ("", {}))
        missing = [a for a in addresses if a not in routes]
        if device and not missing:
            return device, routes
        first, helper = "", False
        for line in self.session(host).check(_facts_script(missing)).splitlines():
            word, _, rest = line.partition(" ")
            if word == "default":
                device = device or rest.strip()
            elif word == "first":
                first = rest.strip()
            elif word == "route":
                addr, _, dev = rest.partition(" ")
                if dev.strip():
                    routes[addr] = dev.strip()
            elif word == "helper":
                helper = True
        device = device or first
        if not device:
            raise FaultError(f"{host}: no network device besides lo")
        if not helper:
            self.session(host).check(ship_script())
        self._facts[host] = (device, routes)
        return device, routes

    # --- steps as shell ------------------------------------------------------------------

    def compile(self, plan: Plan, host: str = "",
                ) -> tuple[str, str, list[str], list[str], list[Step]]:
        """(host, precheck, apply lines, undo lines, steps for this controller) of a plan
        whose steps are on ``host`` (or on the controller); ConfigError when they are on
        more than one host."""
        places = {s["at"] for s in [*plan.apply, *plan.undo]
                  if not callable(s) and s.get("at")}
        if len(places) > 1:
            raise ConfigError(f"this fault acts on {len(places)} hosts "
                              f"({', '.join(sorted(places))}); on SSH hosts give one target")
        host = next(iter(places), host)
        prechecks: list[str] = []
        apply: list[str] = []
        local: list[Step] = []
        for step in plan.apply:
            if callable(step) or not step.get("at"):
                local.append(step)  # type: ignore[arg-type]
                continue
            check, cmd = _shell(step)
            prechecks += [check] if check else []
            apply.append(cmd)
        undo = [_shell(s)[1] for s in plan.undo]
        return host, "\n".join(dict.fromkeys(prechecks)), apply, undo, local

    def ledger_undo(self, plan: Plan, tag: str) -> list[Step]:
        host, *_, undo, _ = self.compile(plan)
        return [{"op": "sh", "host": host, "cmd": c} for c in undo]

    def apply(self, entry: Entry, plan: Plan, ttl: float | None) -> None:
        host, precheck, apply, undo, local = self.compile(plan, entry.target)
        self.facts(host, [])  # the helper is on the host before the script needs it
        for step in local:  # the controller's part (a reorg): before the host's
            step() if callable(step) else run_step(step)
        script = self._apply_script(entry, precheck, apply, undo, plan.instant, ttl)
        result = self.session(host).run(script)
        if result.rc != 0:
            raise FaultError(_apply_error(result.rc, result.last_error()))

    def _apply_script(self, entry: Entry, precheck: str, apply_lines: list[str],
                      undo_lines: list[str], instant: bool, ttl: float | None) -> str:
        """One script: precheck, host ledger (intended), act, active or rolled back, TTL."""
        ledger, helper = shlex.quote(self.host_ledger), helper_path()
        update = f"python3 -S {helper} update {ledger} {entry.id}"
        undo = "\n".join(f"( {c} ) >/dev/null 2>&1" for c in undo_lines)
        apply = " &&\n".join([*(f"{{ {c}\n}}" for c in apply_lines), "true"])
        lines = [precheck]
        if ttl is not None:
            lines.append(f"if ! command -v systemd-run >/dev/null; then echo 'no systemd-run: "
                         f"a TTL needs systemd on the host' >&2; exit {REFUSED}; fi")
        # The intent is a file written by the shell (fast: nothing waits for python), moved
        # into the ledger by the helper's next run, which is after the effect.
        pending = f"{intents_dir(self.host_ledger)}/{entry.id}.json"
        lines += [
            f"mkdir -p {intents_dir(self.host_ledger)} && cat > {pending}.partial "
            f"<<'SD_ENTRY_EOF' && mv {pending}.partial {pending}\n"
            f"{json.dumps(asdict(entry), sort_keys=True)}\nSD_ENTRY_EOF",
            f"[ $? -eq 0 ] || {{ echo 'cannot write the ledger {self.host_ledger}' >&2; exit 4; }}",
            f"sd_apply() {{\n{apply}\n}}",
            f"sd_undo() {{\n{undo or 'true'}\n}}",
            "if ! sd_apply; then sd_undo",
            f"  {update} '{{\"state\": \"failed\", \"cleared_at\": \"now\", "
            f"\"error\": \"apply failed; rolled back\"}}' >/dev/null; exit 5; fi",
            "now=$(date +%s.%N)",
        ]
        if instant:
            lines.append(f"{update} {_changes(state='cleared', applied_at=NOW, cleared_at=NOW)}"
                         " >/dev/null")
            return "\n".join(lines) + "\n"
        if ttl is not None:
            script = f"{RUN_DIR}/{entry.tag}.sh"
            lines += [
                f"mkdir -p {RUN_DIR} && cat > {script} <<'SD_EXPIRE_EOF'\n"
                f"{self._heal_script(entry, undo_lines)}SD_EXPIRE_EOF",
                f"if ! systemd-run --quiet --collect --unit={timer_unit(entry.tag)} "
                f"--on-active={max(1, round(ttl * 1000))}ms "
                f"--timer-property=AccuracySec=100ms /bin/sh {script}; then "
                f"echo 'systemd-run failed: no TTL timer' >&2; sd_undo",
                f"  {update} '{{\"state\": \"failed\", \"cleared_at\": \"now\", "
                f"\"error\": \"no TTL timer; rolled back\"}}' >/dev/null; exit 6; fi",
            ]
        lines.append(f"{update} {_changes(state='active', applied_at=NOW)} >/dev/null")
        return "\n".join(lines) + "\n"

    def _heal_script(self, entry: Entry, undo_lines: list[str]) -> str:
        """What the TTL timer runs on the host: undo if still open, then record it."""
        ledger, helper = shlex.quote(self.host_ledger), helper_path()
        update = f"python3 -S {helper} update {ledger} {entry.id}"
        return "\n".join([
            f"# shakedown: heal {entry.id} ({entry.kind}) at its expiry",
            f"case \"$(python3 -S {helper} state {ledger} {entry.id} 2>/dev/null)\" in "
            "cleared|failed|absent) rm -f \"$0\"; exit 0 ;; esac",
            "ok=1",
            *(f"( {c} ) || ok=0" for c in undo_lines),
            f"if [ $ok = 1 ]; then {update} '{{\"state\": \"cleared\", \"cleared_at\": \"now\", "
            f"\"notes\": {{\"cleared_by\": \"ttl\"}}}}'; rm -f \"$0\"; "
            f"else {update} '{{\"error\": \"ttl: an undo step failed\"}}'; exit 1; fi",
        ]) + "\n"

    # --- clear ---------------------------------------------------------------------------

    def undo(self, entry: Entry) -> None:
        """One SSH exec: stop its timer, undo, record it cleared in the host's ledger."""
        result = self.session(entry.target).run(self._clear_script(entry))
        if result.rc != 0:
            raise FaultError(f"{entry.id} {entry.kind} {entry.target}: {result.last_error()}")

    def _clear_script(self, entry: Entry) -> str:
        helper, ledger = helper_path(), shlex.quote(self.host_ledger)
        steps = [s["cmd"] for s in entry.undo if s.get("op") == "sh"]
        return "\n".join([
            f"systemctl stop {timer_unit(entry.tag)}.timer >/dev/null 2>&1",
            f"rm -f {RUN_DIR}/{entry.tag}.sh",
            "ok=1",
            *(f"( {c} ) || {{ ok=0; echo 'undo failed: {_short(c)}' >&2; }}" for c in steps),
            "[ $ok = 1 ] || exit 1",
            f"if [ -f {helper} ]; then python3 -S {helper} update {ledger} {entry.id} "
            "'{\"state\": \"cleared\", \"cleared_at\": \"now\"}' >/dev/null; fi",
        ]) + "\n"

    # --- ledgers, residue ----------------------------------------------------------------

    def read_host_ledger(self, host: str) -> list[Entry]:
        """The host's own ledger and its intents not yet moved in (one SSH exec)."""
        pending = intents_dir(self.host_ledger)
        text = self.session(host).check(
            f"cat {shlex.quote(self.host_ledger)} 2>/dev/null\necho\necho {_SEPARATOR}\n"
            f"for f in {pending}/*.json; do if [ -f \"$f\" ]; then cat \"$f\"; fi; done\n",
            timeout=LOOK_TIMEOUT_S)
        ledger_text, _, intents = text.partition(_SEPARATOR)
        try:
            entries = [Entry(**i) for i in json.loads(ledger_text)] if ledger_text.strip() else []
            have = {e.id for e in entries}
            entries += [e for e in (Entry(**json.loads(line)) for line in intents.splitlines()
                                    if line.strip()) if e.id not in have]
        except (ValueError, TypeError) as e:
            raise FaultError(f"{host}: ledger {self.host_ledger} is unreadable: {e}") from e
        return entries

    def host_entries(self) -> list[Entry]:
        """Every host's ledger; a host that does not answer contributes nothing."""
        found = []
        for host in sorted(self.hosts):
            try:
                found += self.read_host_ledger(host)
            except ShakedownError:
                continue
        return found

    def residue(self) -> list[str]:
        """Per host (``h2: ...``): open entries of its ledger, our qdiscs and chain, TTL
        timers and scripts, clock drop-ins, and rules or qdiscs that drop or shape but are
        not ours; toxics on the testnet's toxiproxies. A host that does not answer is a line."""
        found = []
        for name in self.hosts:
            try:
                found += [f"{name}: open fault {e.summary()}"
                          for e in self.read_host_ledger(name) if e.open]
                out = self.session(name).run(_HOST_RESIDUE, timeout=LOOK_TIMEOUT_S).out
            except ShakedownError as e:
                found.append(f"{name}: could not look: {e}")
                continue
            listing, _, ours = out.partition(_OURS)
            found += [f"{name}: {line}" for line in
                      [*netshell.net_residue(listing, container=False), *ours.splitlines()]
                      if line.strip()]
        model = self.group.model
        record = (load_record(model.record_path) or {}) if model else {}
        for host, api in (record.get("proxies") or {}).items():
            found += [f"{host}: {line}" for line in proxy_residue(api)]
        return found

    def forget(self) -> list[str]:
        """Remove the testnet's fault ledgers on every host and the controller's when no
        entry is open anywhere; what was removed (``host:path``). FaultError (nothing removed)
        when a fault is open; UnreachableError when a host does not answer."""
        entries = {e.id: e for e in self.controller.entries()}
        for name in self.hosts:
            entries.update({e.id: e for e in self.read_host_ledger(name)
                            if e.open or e.id not in entries})
        refuse_open(self.testnet, [e for e in entries.values() if e.open])
        removed = []
        for name in self.hosts:
            out = self.session(name).check(_forget_script(self.host_ledger))
            removed += [f"{name}:{line}" for line in out.split()]
        return removed + [str(p) for p in remove_ledger(self.controller)]


def _shell(step: Step) -> tuple[str, str]:
    """(precheck, command) of one step on a host."""
    op = step["op"]
    if op == "sh":
        return step.get("precheck", ""), step["cmd"]
    if op == "service":
        unit = shlex.quote(step["unit"])
        return _unit_exists(unit), {
            "stop": f"systemctl stop {unit}", "start": f"systemctl start {unit}",
            "restart": f"systemctl restart {unit}",
            "kill": f"systemctl kill --signal=SIGKILL {unit}",
            "pause": f"systemctl kill --signal=SIGSTOP {unit}",
            "unpause": f"if systemctl is-active -q {unit}; then "
                       f"systemctl kill --signal=SIGCONT {unit}; fi"}[step["action"]]
    if op in ("clock", "unclock"):
        return _clock(step)
    if op == "toxic_add":
        url = f"{step['api']}/proxies/{step['proxy']}"
        body = {k: step[k] for k in ("name", "type", "stream", "toxicity", "attributes")}
        return (f"{http_call('GET', url)} || exit {REFUSED}",
                http_call("POST", f"{url}/toxics", body))
    if op == "toxic_remove":
        return "", http_call("DELETE", f"{step['api']}/proxies/{step['proxy']}/toxics/"
                                        f"{step['name']}")
    if op == "rpc":
        body = {"jsonrpc": "2.0", "id": 1, "method": step["method"], "params": step["params"]}
        return "", http_call("POST", step["url"], body)
    raise FaultError(f"step {op!r} does not run on SSH hosts")


def _unit_exists(unit: str) -> str:
    return refuse(f"! systemctl cat {unit} >/dev/null 2>&1", f"no systemd unit {unit}")


def _clock(step: Step) -> tuple[str, str]:
    """A runtime drop-in (gone at reboot too) preloads libfaketime; the unit restarts."""
    unit = step["unit"]
    d = f"/run/systemd/system/{unit}.d" if "." in unit else \
        f"/run/systemd/system/{unit}.service.d"
    if step["op"] == "unclock":
        return "", (f"if [ -e {d}/{CLOCK_DROPIN} ]; then rm -f {d}/{CLOCK_DROPIN} && "
                    f"systemctl daemon-reload && {{ ! systemctl is-active -q {unit} || "
                    f"systemctl restart {unit}; }}; fi")
    write = (f"printf '%s\\n' '[Service]' \"Environment=LD_PRELOAD=$lib\" "
             f"'Environment=FAKETIME={step['offset_s']:+g} FAKETIME_DONT_FAKE_MONOTONIC=1' "
             f"> {d}/{CLOCK_DROPIN}")
    precheck = "\n".join([
        _unit_exists(unit), f"lib=$(ls {FAKETIME_GLOB} 2>/dev/null | head -n 1)",
        refuse('[ -z "$lib" ]', "libfaketime is not installed (apt-get install libfaketime)")])
    return precheck, (f"mkdir -p {d} && {write} && systemctl daemon-reload && "
                      f"systemctl restart {unit}")


# One HTTP call: SD_CALL="METHOD URL" python3 -c _HTTP [BODY]. For DELETE, a missing toxic or
# proxy (404) and a server that is not running (it keeps toxics in memory only) count as
# removed; a JSON-RPC reply with an error fails.
_HTTP = """import os, sys, urllib.request as r, urllib.error as e
m, url = os.environ["SD_CALL"].split(" ", 1)
body = sys.argv[1].encode() if sys.argv[1:] else None
q = r.Request(url, body, {"Content-Type": "application/json"}, method=m)
try:
    with r.urlopen(q, timeout=10) as reply:
        text = reply.read(100000).decode("utf-8", "replace")
    if '"jsonrpc"' in text and '"error"' in text:
        sys.exit(f"chain: {url}: {text[:200]}")
except e.HTTPError as x:
    if not (m == "DELETE" and x.code == 404):
        text = x.read(200).decode("utf-8", "replace")
        sys.exit(f"toxiproxy: {m} {url}: HTTP {x.code} {text}")
except OSError as x:
    why = getattr(x, "reason", x)
    if not (m == "DELETE" and isinstance(why, ConnectionRefusedError)):
        sys.exit(f"{m} {url}: {why}")
"""


def http_call(method: str, url: str, body: dict[str, Any] | None = None) -> str:
    """Shell: one HTTP call from the host (python3 is there for the ledger)."""
    data = f" {shlex.quote(json.dumps(body, sort_keys=True))}" if body else ""
    return f"SD_CALL={shlex.quote(f'{method} {url}')} python3 -S -c {shlex.quote(_HTTP)}{data}"


_OURS = "--- shakedown: ours ---"
_HOST_RESIDUE = "\n".join([
    netshell.READ_NET,
    f"echo '{_OURS}'",
    f"systemctl list-units --all --no-legend --plain '{TIMER_PREFIX}*' 2>/dev/null "
    "| sed 's/^/TTL timer: /'",
    f"ls {RUN_DIR} 2>/dev/null | sed 's/^/TTL script: /'",
    f"ls /run/systemd/system/*.d/{CLOCK_DROPIN} 2>/dev/null | sed 's/^/clock drop-in: /'",
    "true",
]) + "\n"


def _forget_script(ledger: str) -> str:
    """Shell: remove the ledger and what sits beside it; when no other testnet's ledger is
    left (locks aside), the ledger helper and our directories go too. Prints what it removed."""
    base = shlex.quote(str(Path(ledger).with_suffix("")))
    helper = f"{HOST_STATE_DIR}/sd-ledger-*.py"
    return "\n".join([
        f"for f in {base}.json {base}.lock {base}.partial; do "
        "if [ -e \"$f\" ]; then rm -f \"$f\" && echo \"$f\"; fi; done",
        f"if [ -d {base}.d ]; then rm -rf {base}.d && echo {base}.d; fi",
        f"if [ -z \"$(ls -A {HOST_LEDGER_DIR} 2>/dev/null | grep -v '[.]lock$')\" ]; then",
        f"  for f in {helper}; do if [ -e \"$f\" ]; then rm -f \"$f\" && echo \"$f\"; fi; done",
        f"  rm -f {HOST_LEDGER_DIR}/*.lock; rmdir {HOST_LEDGER_DIR} {HOST_STATE_DIR} "
        "2>/dev/null",
        "fi",
        "true",
    ]) + "\n"


def ship_script() -> str:
    """Shell that installs the ledger helper on a host (python3 runs it there)."""
    path = helper_path()
    return (f"command -v python3 >/dev/null || {{ echo 'python3 is missing: the fault ledger "
            f"on this host needs it (apt-get install python3)' >&2; exit 1; }}\n"
            f"mkdir -p {shlex.quote(str(Path(path).parent))}\n"
            f"cat > {path}.partial <<'SD_LEDGER_EOF'\n{helper_source()}SD_LEDGER_EOF\n"
            f"mv {path}.partial {path}\n")


def _facts_script(dsts: list[str]) -> str:
    dev = r"sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1"
    lines = [f"echo \"default $(ip -o -4 route show default 2>/dev/null | {dev})\"",
             "echo \"first $(ls /sys/class/net | grep -v '^lo$' | head -n 1)\"",
             *(f"echo \"route {shlex.quote(a)} $(ip -o route get {shlex.quote(a)} "
               f"2>/dev/null | {dev})\"" for a in dsts),
             f"if [ -f {helper_path()} ]; then echo helper; fi"]
    return "\n".join(lines) + "\n"


NOW = object()  # in _changes: the host's time when the script ran ``now=$(date +%s.%N)``


def _changes(**fields: Any) -> str:
    """A JSON object as one shell word; NOW becomes the shell variable ``$now``."""
    parts = [f"{json.dumps(k)}: " + ("'\"$now\"'" if v is NOW else json.dumps(v))
             for k, v in fields.items()]
    return "'{" + ", ".join(parts) + "}'"


def _apply_error(rc: int, last: str) -> str:
    if "qdisc kind is unknown" in last or "Specified qdisc not found" in last:
        return ("this kernel has no sch_netem module (tc: 'Specified qdisc kind is unknown'); "
                "netem needs a real VM kernel ('modprobe sch_netem')")
    if "Exclusivity flag on" in last or "File exists" in last:
        return f"the device has a root qdisc that is not shakedown's; not replacing it ({last})"
    if rc in (REFUSED, 4):
        return last
    return f"{last} (rolled back)" if rc in (5, 6) else f"{last} (exit {rc})"


def _short(cmd: str) -> str:
    return cmd.splitlines()[0].split(";")[0][:60].replace("'", "")
