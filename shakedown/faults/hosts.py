"""Faults on whole hosts over SSH (VMs, or VM-like containers), ledgered on both ends.

The shape is the Docker injector's (``shakedown.faults.injector``): validate and plan first;
write the entry and its undo to the controller's ledger, then (in the same SSH exec that acts)
to the host's ledger ``/var/lib/shakedown/faults/<testnet>.json``; act; on failure undo at once
and mark the entry failed. Undo steps are shell (``{"op": "sh", "host": ..., "cmd": ...}``) and
idempotent, so a clear works from either ledger alone and "already gone" is cleared. A TTL is a
transient systemd timer on the host (``shakedown-expire-<tag>``): the host heals itself, and
records that in its ledger, with no controller alive.

The host's ledger is written by shakedown's own ``ledger.py`` shipped to the host (``python3 -S``
it there), so both ends share one format and one lock.

    inj = HostInjector("sdnet", [SSHTarget("vm1", "10.213.0.11", key_file=KEY)], state_dir)
    entry = inj.apply("netem", "vm1", {"delay_ms": 100, "dst": "10.213.0.12"}, ttl=60)
    inj.clear(entry)
    inj.clear_all()
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError, FaultError, NotFoundError, ShakedownError
from shakedown.faults import ledger as ledger_module
from shakedown.faults.hostkinds import HOST_KINDS, REFUSED, HostFacts, HostKind, HostPlan
from shakedown.faults.ledger import Entry, Ledger
from shakedown.faults.names import HOST_LEDGER_DIR
from shakedown.faults.ssh import Session, SSHTarget

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
    return f"/var/lib/shakedown/sd-ledger-{digest}.py"


def intents_dir(ledger: str) -> str:
    """Where the shell writes an intent before acting: ``<ledger without .json>.d``."""
    return shlex.quote(str(Path(ledger).with_suffix(".d")))


def timer_unit(tag: str) -> str:
    return f"{TIMER_PREFIX}{tag}"


class HostInjector:
    """Faults on SSH hosts of one testnet: a controller ledger and one ledger per host."""

    def __init__(self, testnet: str, hosts: Iterable[SSHTarget], controller: Ledger | Path) -> None:
        self.testnet = testnet
        self.hosts = {h.name: h for h in hosts}
        self.controller = controller if isinstance(controller, Ledger) else \
            Ledger(Path(controller) / "host-faults.json")
        self.host_ledger = f"{HOST_LEDGER_DIR}/{testnet}.json"
        self._sessions: dict[str, Session] = {}
        self._devices: dict[str, str] = {}
        self._routes: dict[str, dict[str, str]] = {}
        self._helper: set[str] = set()

    def __enter__(self) -> HostInjector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for s in self._sessions.values():
            s.close()
        self._sessions.clear()

    def session(self, host: str) -> Session:
        if host not in self.hosts:
            raise NotFoundError(f"unknown host {host!r}; known: {', '.join(self.hosts)}")
        if host not in self._sessions:
            self._sessions[host] = Session(self.hosts[host])
        return self._sessions[host]

    # --- apply ---------------------------------------------------------------------------

    def apply(self, kind: str, host: str, params: Mapping[str, Any] | None = None,
              ttl: float | None = None) -> Entry:
        """Apply one fault on ``host``; its entry (active, or cleared for instant kinds)."""
        if kind not in HOST_KINDS:
            raise ConfigError(f"unknown host fault kind {kind!r}; known: {', '.join(HOST_KINDS)}")
        if ttl is not None and ttl <= 0:
            raise ConfigError(f"ttl {ttl}: must be a positive number of seconds")
        spec = HOST_KINDS[kind]
        values = spec.parse(params)
        session = self.session(host)
        tag = secrets.token_hex(4)
        plan = spec.plan(self._facts(host, spec, values), values, tag)  # may refuse
        undo = [{"op": "sh", "host": host, "cmd": c} for c in plan.undo]
        entry = self.controller.intend(
            kind=kind, target=host, params=values, undo=undo, mechanism=plan.mechanism, tag=tag,
            expires_at=time.time() + ttl if ttl is not None else None)
        entry = self.controller.update(entry.id, notes={
            **plan.notes, "address": self.hosts[host].address}) or entry
        try:
            result = session.run(self._apply_script(entry, plan, ttl))
        except ShakedownError as e:
            self.controller.update(entry.id, error=str(e))  # still open: clear will retry
            raise
        if result.rc != 0:
            message = _apply_error(result.rc, result.last_error())
            self.controller.update(entry.id, state="failed", error=message,
                                   cleared_at=time.time())
            raise FaultError(f"{kind} on {host}: {message}")
        now = time.time()
        if plan.instant:
            return self.controller.update(entry.id, state="cleared", applied_at=now,
                                          cleared_at=now) or entry
        return self.controller.update(entry.id, state="active", applied_at=now) or entry

    def _facts(self, host: str, spec: HostKind, values: dict[str, Any]) -> HostFacts:
        """The host's NIC and routes (read once, cached) and the htb classes that open
        per-destination faults of this controller hold there."""
        dsts = [d.split("/")[0] for d in
                (values.get(spec.wants_routes) or "").split(",") if d.strip()] \
            if spec.wants_routes else []
        routes = self._routes.setdefault(host, {})
        missing = [d for d in dsts if d not in routes]
        if host not in self._devices or host not in self._helper or missing:
            device = first = ""
            for line in self.session(host).check(_facts_script(missing)).splitlines():
                word, _, rest = line.partition(" ")
                if word == "default":
                    device = rest.strip()
                elif word == "first":
                    first = rest.strip()
                elif word == "route":
                    addr, _, dev = rest.partition(" ")
                    if dev.strip():
                        routes[addr] = dev.strip()
                elif word == "helper":
                    self._helper.add(host)
            self._devices[host] = device or first
            if not self._devices[host]:
                raise FaultError(f"{host}: no network device besides lo")
            if host not in self._helper:
                self._ship_helper(host)
        taken: dict[str, set[int]] = {}
        for e in self.controller.entries():
            if e.open and e.target == host and "minor" in e.notes:
                taken.setdefault(e.notes["device"], set()).add(int(e.notes["minor"]))
        return HostFacts(device=self._devices[host], routes=dict(routes), taken=taken)

    def _ship_helper(self, host: str) -> None:
        self.session(host).check(ship_script())
        self._helper.add(host)

    def _apply_script(self, entry: Entry, plan: HostPlan, ttl: float | None) -> str:
        """One script: precheck, host ledger (intended), act, active or rolled back, TTL."""
        ledger, helper = shlex.quote(self.host_ledger), helper_path()
        update = f"python3 -S {helper} update {ledger} {entry.id}"
        undo = "\n".join(f"( {c} ) >/dev/null 2>&1" for c in plan.undo)
        apply = " &&\n".join([*plan.apply, "true"])
        lines = [plan.precheck]
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
        if plan.instant:
            lines.append(f"{update} {_changes(state='cleared', applied_at=NOW, cleared_at=NOW)}"
                         " >/dev/null")
            return "\n".join(lines) + "\n"
        if ttl is not None:
            script = f"{RUN_DIR}/{entry.tag}.sh"
            lines += [
                f"mkdir -p {RUN_DIR} && cat > {script} <<'SD_EXPIRE_EOF'\n"
                f"{self._heal_script(entry, plan)}SD_EXPIRE_EOF",
                f"if ! systemd-run --quiet --collect --unit={timer_unit(entry.tag)} "
                f"--on-active={max(1, round(ttl * 1000))}ms "
                f"--timer-property=AccuracySec=100ms /bin/sh {script}; then "
                f"echo 'systemd-run failed: no TTL timer' >&2; sd_undo",
                f"  {update} '{{\"state\": \"failed\", \"cleared_at\": \"now\", "
                f"\"error\": \"no TTL timer; rolled back\"}}' >/dev/null; exit 6; fi",
            ]
        lines.append(f"{update} {_changes(state='active', applied_at=NOW)} >/dev/null")
        return "\n".join(lines) + "\n"

    def _heal_script(self, entry: Entry, plan: HostPlan) -> str:
        """What the TTL timer runs on the host: undo if still open, then record it."""
        ledger, helper = shlex.quote(self.host_ledger), helper_path()
        update = f"python3 -S {helper} update {ledger} {entry.id}"
        return "\n".join([
            f"# shakedown: heal {entry.id} ({entry.kind}) at its expiry",
            f"case \"$(python3 -S {helper} state {ledger} {entry.id} 2>/dev/null)\" in "
            "cleared|failed|absent) rm -f \"$0\"; exit 0 ;; esac",
            "ok=1",
            *(f"( {c} ) || ok=0" for c in plan.undo),
            f"if [ $ok = 1 ]; then {update} '{{\"state\": \"cleared\", \"cleared_at\": \"now\", "
            f"\"notes\": {{\"cleared_by\": \"ttl\"}}}}'; rm -f \"$0\"; "
            f"else {update} '{{\"error\": \"ttl: an undo step failed\"}}'; exit 1; fi",
        ]) + "\n"

    # --- clear ---------------------------------------------------------------------------

    def clear(self, entry: Entry | str) -> Entry:
        """Undo one fault (one SSH exec); "already gone" counts as cleared. FaultError when
        an undo step fails, UnreachableError when the host does not answer."""
        entry_id = entry if isinstance(entry, str) else entry.id
        found = self.controller.get(entry_id)
        if found is None:  # applied by another controller: its host's ledger knows it
            found = next((e for e in self.entries() if e.id == entry_id), None)
        if found is None:
            raise NotFoundError(f"no host fault {entry_id} in the ledgers of {self.testnet}")
        return self._clear(found) if found.open else found

    def _clear(self, found: Entry) -> Entry:
        result = self.session(found.target).run(self._clear_script(found))
        if result.rc != 0:
            message = f"{found.id} {found.kind} {found.target}: {result.last_error()}"
            if self.controller.update(found.id, error=message) is None:
                self.controller.put(replace(found, error=message))
            raise FaultError(message)
        if self.controller.get(found.id) is None:
            self.controller.put(found)
        return self.controller.update(found.id, state="cleared", cleared_at=time.time()) or found

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

    def clear_all(self, hosts: Iterable[str] | None = None) -> list[Entry]:
        """Clear every open fault on ``hosts`` (default: all), newest first; raise after all."""
        wanted = set(hosts or self.hosts)
        cleared, failures = [], []
        for entry in reversed(self.entries()):
            if not entry.open or entry.target not in wanted:
                continue
            try:
                cleared.append(self._clear(entry))
            except ShakedownError as e:
                failures.append(str(e))
        if failures:
            raise FaultError(f"{len(failures)} host fault(s) not cleared: {failures[0]}")
        return cleared

    # --- ledgers -------------------------------------------------------------------------

    def read_host_ledger(self, host: str) -> list[Entry]:
        """The host's own ledger and its intents not yet moved in (one SSH exec)."""
        pending = intents_dir(self.host_ledger)
        text = self.session(host).check(
            f"cat {shlex.quote(self.host_ledger)} 2>/dev/null\necho\necho {_SEPARATOR}\n"
            f"for f in {pending}/*.json; do if [ -f \"$f\" ]; then cat \"$f\"; fi; done\n")
        ledger_text, _, intents = text.partition(_SEPARATOR)
        try:
            entries = [Entry(**i) for i in json.loads(ledger_text)] if ledger_text.strip() else []
            have = {e.id for e in entries}
            entries += [e for e in (Entry(**json.loads(line)) for line in intents.splitlines()
                                    if line.strip()) if e.id not in have]
        except (ValueError, TypeError) as e:
            raise FaultError(f"{host}: ledger {self.host_ledger} is unreadable: {e}") from e
        return entries

    def entries(self, hosts: Iterable[str] | None = None) -> list[Entry]:
        """Every host fault, oldest first; a host's closed state wins (its TTL timer heals).

        Hosts that do not answer contribute the controller's copy only."""
        wanted = set(hosts or self.hosts)
        by_id = {e.id: e for e in self.controller.entries() if e.target in wanted}
        for host in sorted(wanted):
            try:
                remote = self.read_host_ledger(host)
            except ShakedownError:
                continue
            for e in remote:
                mine = by_id.get(e.id)
                if mine is None or (mine.open and not e.open):
                    by_id[e.id] = e
                    if self.controller.get(e.id) is None or not e.open:
                        self.controller.put(e)  # e.g. a TTL expiry the host recorded
        return sorted(by_id.values(), key=lambda e: e.created_at)

    def active(self) -> list[Entry]:
        return [e for e in self.entries() if e.open]


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
