"""Host faults over SSH, the pure parts: parameters, plans, generated shell, the ledger helper."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from shakedown.cli import main
from shakedown.errors import ConfigError, FaultError
from shakedown.faults.hostinv import host_groups
from shakedown.faults.hosts import SSHBackend, SSHView, _apply_error, _facts_script, helper_source
from shakedown.faults.hosts import ship_script as ship_script
from shakedown.faults.kind import Service
from shakedown.faults.kinds import KINDS, TOXIC_KINDS
from shakedown.faults.ledger import Entry, Ledger
from shakedown.faults.netshell import classes_in, free_minor
from shakedown.faults.ssh import SSHTarget
from shakedown.toxiproxy import ToxiproxyClient
from shakedown.toxiproxy.server import ServerThread

ROUTES = {"10.213.0.12": "eth0", "10.213.0.13": "eth0"}


class OfflineView(SSHView):
    """The SSH view with the host's facts given (device, routes, classes in use): what the
    planners ask, answered without a connection."""

    def __init__(self, backend: SSHBackend, routes: dict[str, str], taken: set[int]) -> None:
        super().__init__(backend)
        self.routes, self.taken = routes, taken

    def device(self, service: Service, addresses: list[str]) -> str:
        found = {self.routes.get(a.split("/")[0], "") for a in addresses} or {"eth0"}
        if len(found) != 1 or "" in found:
            raise ConfigError(f"destinations {', '.join(addresses)} are not reached through "
                              f"one device (routes: {self.routes})")
        return found.pop()

    def free_class(self, service: Service, device: str) -> int:
        return free_minor(self.taken, f"{service.at} {device}")


def backend(tmp: Path = Path("/dev/null/unused")) -> SSHBackend:
    return SSHBackend.of("sdunit", [SSHTarget("vm1", "10.213.0.11")], tmp)


class Planned:
    """A plan compiled to the shell the SSH executor runs: precheck, apply, undo."""

    def __init__(self, kind: str, params: dict, routes: dict[str, str], taken: set[int],
                 tag: str) -> None:
        b = backend()
        spec = KINDS[kind]
        _, services, _, raw = b.prepare(spec, "vm1", params)
        self.plan = spec.plan(OfflineView(b, routes, taken), services, spec.parse(raw, "ssh"),
                              tag)
        _, self.precheck, self.apply, self.undo, _ = b.compile(self.plan)
        self.notes, self.instant = self.plan.notes, self.plan.instant


def plan(kind: str, tag: str = "1a2b3c4d", routes: dict[str, str] | None = None,
         taken: set[int] | None = None, **params: object) -> Planned:
    return Planned(kind, params, ROUTES if routes is None else routes,
                   {1} if taken is None else taken, tag)


def test_netem_whole_host_is_one_root_qdisc_with_our_handle() -> None:
    p = plan("netem", delay_ms=100, jitter_ms=10, loss_pct=20)
    assert p.apply == ["tc qdisc add dev eth0 root handle 5d: netem delay 100ms 10ms loss 20%"]
    assert p.undo == ["if tc qdisc show dev eth0 root 2>/dev/null | grep -q ' 5d: '; "
                      "then tc qdisc del dev eth0 root; fi"]
    assert "exit 3" in p.precheck  # a second tc fault on the NIC is refused, not stacked


def test_netem_per_destination_takes_a_free_class_and_filters_each_destination() -> None:
    p = plan("netem", delay_ms=50, dst="10.213.0.12,10.213.0.13")
    assert p.notes["class"] == "5d:2"  # 5d:1 is taken by an open fault
    assert len(p.apply) == 1 and p.apply[0].endswith("| tc -batch -")  # one tc process
    assert "parent 5d:2 handle 5d02: netem delay 50ms" in p.apply[0]
    assert p.apply[0].count("match ip dst") == 2
    assert any("tc class del dev eth0 classid 5d:2" in c for c in p.undo)


@pytest.mark.parametrize("params, message", [
    ({"delay_ms": "soon"}, "expected a int"),
    ({"delay_ms": 10, "dst": "fe80::1"}, "only IPv4"),
    ({"delay_ms": 10, "dst": "not-an-ip"}, "neither IPv4 addresses nor services"),
    ({"jitter_ms": 5}, "need delay_ms"),
    ({}, "give at least one"),
    ({"delay_ms": 10, "device": "eth0; reboot"}, "not a network device"),
    ({"lag": 1}, "unknown parameter 'lag'"),
])
def test_bad_netem_parameters_are_refused_before_anything_runs(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan("netem", **params)


def test_units_are_checked_and_kinds_need_their_parameters() -> None:
    with pytest.raises(ConfigError, match="not a systemd unit"):
        plan("stop", unit="x; rm -rf /")
    with pytest.raises(ConfigError, match="names what to cut off"):
        plan("partition")
    assert plan("restart", unit="refnode-100").instant
    assert plan("kill", unit="refnode-100").undo == ["systemctl start refnode-100"]


def test_partition_rules_are_tagged_in_our_chain() -> None:
    p = plan("partition", peers="10.213.0.12", direction="out")
    restore = next(c for c in p.apply if "iptables-restore" in c)
    assert "echo '-A SHAKEDOWN -d 10.213.0.12/32 -j DROP -m comment --comment sd-1a2b3c4d'" \
        in restore
    assert "--dport 22 -j RETURN" in restore  # SSH to the host stays open
    assert "sd-1a2b3c4d" in p.undo[0] and " -F" not in p.undo[0]  # never a flush


def test_per_destination_needs_one_device_for_all_destinations() -> None:
    routes = {"10.0.0.1": "eth0", "10.1.0.1": "eth1"}
    with pytest.raises(ConfigError, match="not reached through one device"):
        plan("tbf", routes=routes, rate_kbit=1000, dst="10.0.0.1,10.1.0.1")


def test_all_classes_taken_is_a_clear_error() -> None:
    with pytest.raises(FaultError, match="all 64 per-destination classes"):
        plan("tbf", routes={"10.0.0.1": "eth0"}, taken=set(range(1, 65)), rate_kbit=1000,
             dst="10.0.0.1")
    assert classes_in("class htb 5d:3 root rate 10Gbit\nclass htb 5d:a parent 5d:") == {3, 10}


@pytest.mark.parametrize("kind, params", [
    ("netem", {"delay_ms": 100, "jitter_ms": 10}),
    ("netem", {"delay_ms": 100, "dst": "10.213.0.12"}),
    ("tbf", {"rate_kbit": 2000, "dst": "10.213.0.12/32"}),
    ("partition", {"peers": "10.213.0.12,10.213.0.13"}),
    ("blackhole", {}),
    ("loss", {"percent": 20, "dst": "10.213.0.12"}),
    ("pause", {"unit": "refnode-100"}),
    ("restart", {"unit": "refnode-100"}),
    ("clock-skew", {"unit": "refnode-100", "offset_s": -3600}),
    ("latency", {"latency_ms": 200, "stream": "both", "proxy": "node-200", "api_port": 26001}),
])
def test_generated_scripts_are_valid_shell(tmp_path: Path, kind: str, params: dict) -> None:
    """Apply (with and without TTL), heal and clear scripts all parse with /bin/sh -n."""
    b = backend(tmp_path)
    p = plan(kind, **params)
    entry = Entry(id="f-1a2b3c4d", tag="1a2b3c4d", kind=kind, target="vm1", params=params,
                  undo=[{"op": "sh", "host": "vm1", "cmd": c} for c in p.undo])
    for script in (b._apply_script(entry, p.precheck, p.apply, p.undo, p.instant, None),
                   b._apply_script(entry, p.precheck, p.apply, p.undo, p.instant, 30.0),
                   b._heal_script(entry, p.undo), b._clear_script(entry), ship_script(),
                   _facts_script(["10.213.0.12"])):
        check = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
        assert check.returncode == 0, f"{kind}: {check.stderr}\n{script}"


def test_the_host_ledger_helper_writes_the_controllers_format(tmp_path: Path) -> None:
    """The helper shipped to hosts is ledger.py itself: lead's Ledger reads what it wrote."""
    helper = tmp_path / "helper.py"
    helper.write_text(helper_source())
    path = tmp_path / "faults" / "sdunit.json"
    entry = Entry(id="f-00aa11bb", tag="00aa11bb", kind="netem", target="vm1",
                  params={"delay_ms": 100}, undo=[{"op": "sh", "host": "vm1", "cmd": "true"}],
                  notes={"device": "eth0"})

    def cli(*args: str, stdin: str = "") -> str:
        proc = subprocess.run(["python3", str(helper), *args], input=stdin,
                              capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    intents = path.with_suffix(".d")  # what the apply script writes before acting
    intents.mkdir(parents=True)
    (intents / f"{entry.id}.json").write_text(json.dumps(asdict(entry)))
    assert cli("state", str(path), entry.id) == "intended"  # moved into the ledger
    assert not list(intents.iterdir())
    (intents / f"{entry.id}.json").write_text(json.dumps(asdict(entry)))
    cli("update", str(path), entry.id, json.dumps({"state": "active"}))
    assert cli("state", str(path), entry.id) == "active"  # a stale intent never wins
    done = json.loads(cli("update", str(path), entry.id,
                          json.dumps({"state": "cleared", "cleared_at": "now",
                                      "notes": {"cleared_by": "ttl"}})))
    assert done["state"] == "cleared" and done["cleared_at"] > 0
    read = Ledger(path).get(entry.id)
    assert read is not None and read.notes == {"device": "eth0", "cleared_by": "ttl"}
    assert cli("state", str(path), "f-missing") == "absent"


def test_a_kernel_without_netem_gets_a_line_that_names_the_module() -> None:
    message = _apply_error(5, "Error: Specified qdisc kind is unknown.")
    assert "sch_netem" in message and "\n" not in message


# --- toxics on a host's own toxiproxy --------------------------------------------------------

SYSTEMD = {"testnet": "sdunit", "runtime": "systemd", "nodes": 3, "port_base": 26000}
HOSTS = [("h1", {**SYSTEMD, "address": "10.9.0.1", "roles": ["chain", "proxy", "db", "node"]}),
         ("h2", {**SYSTEMD, "address": "10.9.0.2", "roles": ["proxy", "db", "node"]}),
         ("h3", {**SYSTEMD, "address": "10.9.0.3", "roles": ["node"]})]


def test_toxic_kinds_on_hosts_take_the_docker_kinds_parameters() -> None:
    for name in TOXIC_KINDS:
        docker, host = KINDS[name].params_on("docker"), KINDS[name].params_on("ssh")
        assert {k: host[k] for k in docker} == dict(docker), name
        assert set(host) - set(docker) == {"proxy", "api_port"}, name


def test_a_node_target_resolves_to_the_proxy_on_its_host() -> None:
    b = SSHBackend(host_groups(HOSTS)[0])
    view = b.view()
    node_200, h2 = view.resolve("node-200")[0], view.resolve("h2")[0]
    assert view.toxiproxies(node_200, "node") == [("h2", "http://127.0.0.1:26001", "node-200")]
    assert view.toxiproxies(node_200, "db")[0][2] == "node-200-db"
    assert view.toxiproxies(node_200, "chain")[0][2] == "chain"
    assert view.toxiproxies(h2, "chain")[0][0] == "h2"  # a host: the chain calls made there
    _, services, target, params = b.prepare(KINDS["stop"], "node-200", {})
    assert (target, params) == ("h2", {"unit": "sdunit-node-200.service"})
    assert view.toward(services[0], view.resolve("node-100")[0]) == [("10.9.0.1/32", 0)]


@pytest.mark.parametrize("kind, target, message", [
    ("latency", "node-300", "its host h3 has no proxy role"),
    ("chain-latency", "chain", r"name a node \(node-100, node-200, node-300\) or a host"),
    ("latency", "h1", "no toxiproxy of sdunit is in front of it"),
    ("latency", "node-9", "not a host or service of sdunit"),
])
def test_a_target_without_a_proxy_is_refused_in_one_line(kind: str, target: str,
                                                        message: str) -> None:
    b = SSHBackend(host_groups(HOSTS)[0])
    with pytest.raises(ConfigError, match=message):
        view, services, _, raw = b.prepare(KINDS[kind], target, {"latency_ms": 5})
        KINDS[kind].plan(view, services, KINDS[kind].parse(raw, "ssh"), "1a2b3c4d")


def test_bad_toxic_input_is_one_line_exit_2_with_nothing_applied(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inv.py"
    inv.write_text(f"hosts = ({HOSTS!r}, {{'record_path': {str(tmp_path / 'rec.json')!r}}})\n")
    for args in (["latency", "node-200", "latency_ms=soon"], ["latency", "node-200"],
                 ["db-reset", "node-300"], ["chain-latency", "latency_ms=100"]):
        assert main(["fault", "add", *args, "-i", str(inv)]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("shakedown: "), err
    assert not list(tmp_path.glob("*.json")), "a ledger was written"


def _sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)


def test_a_toxic_plan_runs_against_a_real_toxiproxy_and_its_undo_is_idempotent() -> None:
    """The plan's shell (python3 urllib) against the project's toxiproxy server: the precheck
    refuses a missing proxy, apply adds one toxic per stream, undo removes them and succeeds
    again when they are gone, or when the server is not running."""
    with ServerThread("127.0.0.1", 0) as srv:
        api = ToxiproxyClient(srv.url)
        api.create_proxy("node-200", "127.0.0.1:0", "127.0.0.1:9")
        port = int(srv.url.rsplit(":", 1)[1])
        p = plan("latency", latency_ms=200, stream="both", proxy="node-200", api_port=port)
        missing = plan("latency", latency_ms=200, proxy="node-9", api_port=port)
        assert "HTTP 404" not in missing.precheck
        refused = _sh(missing.precheck)
        assert refused.returncode == 3 and "HTTP 404" in refused.stderr.strip().splitlines()[-1]
        done = _sh("\n".join([p.precheck, *p.apply]))
        assert done.returncode == 0, done.stderr
        made = {(t.name, t.stream, t.attributes["latency"]) for t in api.toxics("node-200")}
        assert made == {("sd-1a2b3c4d-downstream", "downstream", 200),
                        ("sd-1a2b3c4d-upstream", "upstream", 200)}
        for _ in range(2):
            undone = _sh("\n".join(p.undo))
            assert undone.returncode == 0, undone.stderr
            assert api.toxics("node-200") == []
    gone = _sh("set -e\n" + "\n".join(p.undo))  # nothing listens: the toxics died with it
    assert gone.returncode == 0, gone.stderr
    assert _sh(p.apply[0]).returncode != 0  # but applying to no server fails
