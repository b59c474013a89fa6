"""iptables and tc as shell, the same on both runtimes: run in a container's network namespace
(nsenter, on a Docker host) or on a VM (over SSH).

iptables: our rules live in our own chain ``SHAKEDOWN`` of the filter table, jumped to from
INPUT and OUTPUT (never for loopback), each rule tagged with the comment ``sd-<tag>``; adding is
one ``iptables -S`` and one ``iptables-restore --noflush``, removing deletes only the rules that
carry the tag, and the chain and its jumps go with the last of them. Never a flush.

tc: two scopes, both under our root handle ``5d:``: a whole device (one root qdisc of ours), or
per destination: an htb root that passes unclassified traffic untouched, and per fault one
class ``5d:N``, its leaf qdisc ``5dNN:`` (netem, tbf) and u32 filters at priority N that send
the matching packets into that class. Undo commands are idempotent; the htb root goes with its
last class. One controller per testnet is assumed: a class number is picked from what is open.

    sh = per_destination("eth0", 3, ["tbf", "rate", "4000kbit", ...],
                         [dst_match("10.0.0.5/32"), dst_port_match("10.0.0.2", 10200)])
    script = "\\n".join([sh.read, *sh.apply])
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass

from shakedown.errors import FaultError
from shakedown.faults.names import IPTABLES_CHAIN, TC_HANDLE, TC_HANDLE_HEX

REFUSED = 3  # a precheck's exit code: nothing was changed
FIRST_CLASS, LAST_CLASS = 1, 64  # htb classes 5d:1..5d:40 (hex), one per destination fault
# An unshaped htb class: its leaf (netem, tbf) does the work. htb rather than prio: both the
# Debian VM kernel and container kernels without sch_prio have it.
_OPEN_CLASS = "htb rate 10gbit ceil 10gbit burst 256k cburst 256k quantum 60000"
_CLASS = re.compile(rf"^class htb {TC_HANDLE}([0-9a-f]+) ", re.MULTILINE)


@dataclass(frozen=True)
class TcShell:
    """``read`` sets ``$sd_q`` (the device's qdiscs), which ``precheck`` and ``apply`` use."""

    read: str
    precheck: str
    apply: list[str]
    undo: list[str]
    cls: str = ""  # per destination: our class, e.g. ``5d:3``


def refuse(condition: str, message: str) -> str:
    """Shell: exit REFUSED with ``message`` when ``condition`` (a shell test) holds."""
    return f"if {condition}; then echo {shlex.quote(message)} >&2; exit {REFUSED}; fi"


def _read(dev: str) -> str:
    return f"sd_q=$(tc qdisc show dev {dev} 2>/dev/null)"


def _has(text: str) -> str:
    return f'case "$sd_q" in *"{text}"*) true ;; *) false ;; esac'


def whole_device(dev: str, qdisc: list[str]) -> TcShell:
    """``qdisc`` as the device's root, refused when a qdisc of ours is there already."""
    q = " ".join(qdisc)
    return TcShell(
        read=_read(dev),
        precheck=refuse(_has(f" {TC_HANDLE} root"),
                        f"{dev} already carries a shakedown qdisc; clear that fault first"),
        apply=[f"tc qdisc add dev {dev} root handle {TC_HANDLE} {q}"],
        undo=[f"if tc qdisc show dev {dev} root 2>/dev/null | grep -q ' {TC_HANDLE} '; "
              f"then tc qdisc del dev {dev} root; fi"])


def per_destination(dev: str, minor: int, qdisc: list[str], matches: list[str]) -> TcShell:
    """Class ``5d:minor`` with ``qdisc`` as its leaf; one u32 filter per entry of ``matches``
    (``match ...`` selectors, see ``dst_match``) sends those packets there."""
    q = " ".join(qdisc)
    leaf, cls = f"{TC_HANDLE_HEX}{minor:02x}:", f"{TC_HANDLE}{minor:x}"
    htb = f"qdisc htb {TC_HANDLE} root"
    batch = [f"class add dev {dev} parent {TC_HANDLE} classid {cls} {_OPEN_CLASS}",
             f"qdisc add dev {dev} parent {cls} handle {leaf} {q}",
             *(f"filter add dev {dev} parent {TC_HANDLE} protocol ip prio {minor} u32 "
               f"{m} flowid {cls}" for m in matches)]
    root = f"qdisc add dev {dev} root handle {TC_HANDLE} htb"
    htb_root = f"tc qdisc show dev {dev} root 2>/dev/null | grep -q '^{htb} '"
    any_class = f"tc class show dev {dev} | grep -q '^class htb {TC_HANDLE}'"
    return TcShell(
        read=_read(dev),
        precheck="\n".join([
            refuse(f'{_has(f" {TC_HANDLE} root")} && ! {_has(htb)}',
                   f"{dev} carries a whole-device shakedown qdisc; clear that fault first"),
            refuse(_has(f" {leaf} "),
                   f"class {cls} on {dev} is taken (by another controller?); retry")]),
        # one tc process for the whole change: each one costs a lot on a slow VM
        apply=["{ case \"$sd_q\" in *\"" + htb + "\"*) ;; *) echo '" + root + "' ;; esac; "
               + " ".join(f"echo '{line}';" for line in batch) + " } | tc -batch -"],
        undo=[f"tc filter del dev {dev} parent {TC_HANDLE} protocol ip prio {minor} "
              "2>/dev/null; true",
              f"if tc class show dev {dev} 2>/dev/null | grep -q '^class htb {cls} '; then "
              f"tc class del dev {dev} classid {cls}; fi",
              f"if {htb_root} && ! {any_class}; then tc qdisc del dev {dev} root; fi"],
        cls=cls)


def dst_match(network: str) -> str:
    """u32 selector: packets to ``network`` (``a.b.c.d/len``)."""
    return f"match ip dst {network}"


def dst_port_match(address: str, port: int) -> str:
    """u32 selector: TCP packets to ``address:port`` (IP header without options)."""
    return f"match ip dst {address}/32 match ip protocol 6 0xff match ip dport {port} 0xffff"


def free_minor(used: set[int], where: str) -> int:
    """A class number of ours that ``used`` does not hold; FaultError when all are taken."""
    for minor in range(FIRST_CLASS, LAST_CLASS + 1):
        if minor not in used:
            return minor
    raise FaultError(f"{where}: all {LAST_CLASS} per-destination classes are in use; "
                     "clear a fault first")


def classes_in(listing: str) -> set[int]:
    """Our htb class numbers in ``tc class show`` output."""
    return {int(m, 16) for m in _CLASS.findall(listing)}


# --- iptables --------------------------------------------------------------------------------

_IPT = "iptables -w 5"
_JUMPS = (("INPUT", "! -i lo"), ("OUTPUT", "! -o lo"))


def ipt_add(tag: str, rules: list[list[str]]) -> str:
    """Shell: create our chain and its jumps when missing, append ``rules`` (match + target,
    as argv) tagged ``sd-<tag>``, and flush conntrack so open flows meet the rules now."""
    c = IPTABLES_CHAIN
    lines = ["echo '*filter'",
             f"case \"$sd_all\" in *'-N {c}'*) ;; *) echo ':{c} - [0:0]' ;; esac",
             *(f"printf '%s\\n' \"$sd_all\" | grep -qxe '-A {hook} {match} -j {c}' || "
               f"echo '-I {hook} 1 {match} -j {c}'" for hook, match in _JUMPS),
             *(f"echo '-A {c} {_rule(r)} -m comment --comment sd-{tag}'" for r in rules),
             "echo COMMIT"]
    return "\n".join([f"sd_all=$({_IPT} -S) &&",
                      "{ " + "; ".join(lines) + "; } | iptables-restore -w 5 --noflush &&",
                      "{ conntrack -F >/dev/null 2>&1; true; }"])


def _rule(argv: list[str]) -> str:
    """One rule for iptables-restore, which splits on blanks and knows no shell quoting."""
    for arg in argv:
        if not arg or any(ch.isspace() or ch in "'\\\"" for ch in arg):
            raise FaultError(f"iptables rule argument {arg!r}: no blanks or quotes allowed")
    return " ".join(argv)


def ipt_remove(tag: str) -> str:
    """Shell: delete the rules tagged ``tag``; drop our chain and its jumps once it is empty.
    Idempotent: nothing of ours there counts as removed."""
    c = IPTABLES_CHAIN
    mine = f"grep -E -- '--comment \"?sd-{tag}\"?( |$)'"
    jumps = [f"-A {hook} {match} -j {c}" for hook, match in _JUMPS]
    last = " ".join(f"printf '%s\\n' \"$sd_all\" | grep -qxe '{j}' && echo '-D{j[2:]}';"
                    for j in jumps)
    return (
        f"sd_all=$({_IPT} -S 2>/dev/null) || exit 0; "
        f"sd_ours=$(printf '%s\\n' \"$sd_all\" | grep -e '^-A {c} '); "
        f"sd_mine=$(printf '%s\\n' \"$sd_ours\" | {mine}); "
        f"sd_rest=$(printf '%s\\n' \"$sd_ours\" | grep -vE -- '--comment \"?sd-{tag}\"?( |$)'); "
        f"case \"$sd_all\" in *'-N {c}'*) ;; *) exit 0 ;; esac; "
        f"if [ -z \"$sd_mine\" ] && [ -n \"$sd_rest\" ]; then exit 0; fi; "
        f"{{ echo '*filter'; printf '%s\\n' \"$sd_mine\" | sed -n 's/^-A /-D /p'; "
        f"if [ -z \"$sd_rest\" ]; then {last} echo '-X {c}'; fi; echo COMMIT; }} "
        f"| iptables-restore -w 5 --noflush")


def drops(endpoints: list[tuple[str, int]], then: list[str] | None = None,
          direction: str = "both") -> list[list[str]]:
    """Rules matching packets to (``out``) and from (``in``) each (address, TCP port or 0),
    with target ``then`` (default DROP)."""
    then = then or ["-j", "DROP"]
    rules = []
    for address, port in endpoints:
        if direction in ("both", "out"):
            rules.append(["-d", address, *(["-p", "tcp", "--dport", str(port)] if port else []),
                          *then])
        if direction in ("both", "in"):
            rules.append(["-s", address, *(["-p", "tcp", "--sport", str(port)] if port else []),
                          *then])
    return rules


# --- what is left in a network namespace -----------------------------------------------------

_SEPARATOR = "--- shakedown: qdiscs ---"
# iptables-save and every qdisc: what a residue check reads at a place, in one exec.
READ_NET = f"iptables-save 2>/dev/null; echo '{_SEPARATOR}'; tc qdisc show 2>/dev/null; true"
# What a kernel or an engine puts there by itself: not a fault.
DEFAULT_QDISCS = ("noqueue", "pfifo_fast", "fq_codel", "mq", "fq", "pfifo", "mqprio")
_QDISC = re.compile(r"^qdisc (\S+) (\S+) dev (\S+) (.*)$")


def _dockers(rule: str) -> bool:
    """Docker's own rules: in its chains, or a jump into them (embedded DNS, bridges)."""
    words = rule.split()
    return words[1].startswith("DOCKER") or any(
        a == "-j" and b.startswith("DOCKER") for a, b in itertools.pairwise(words))


def net_residue(listing: str, container: bool) -> list[str]:
    """Lines naming what ``READ_NET``'s output shows besides the defaults: our chain and our
    qdiscs (named as ours), and anything else that shapes or drops. In a container every rule
    that is not Docker's counts; on a host (which may run a firewall) rules that drop or
    reject, and a DROP policy on INPUT or OUTPUT."""
    rules_text, _, qdiscs = listing.partition(_SEPARATOR)
    found: list[str] = []
    table, ours = "", 0
    for line in rules_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain, policy = ([*line[1:].split(), "-"])[:2]
            if chain == IPTABLES_CHAIN:
                continue
            if policy not in ("ACCEPT", "-") and (container or chain in ("INPUT", "OUTPUT")):
                found.append(f"iptables policy {policy} on {table} {chain} (not shakedown's)")
        elif line.startswith("-A "):
            if line.startswith(f"-A {IPTABLES_CHAIN} "):
                ours += 1
            elif f"-j {IPTABLES_CHAIN}" in line or _dockers(line):
                continue
            elif container or re.search(r"-j (DROP|REJECT)\b", line):
                found.append(f"iptables rule in {table} not shakedown's: {line}")
    if f":{IPTABLES_CHAIN} " in rules_text:
        found.insert(0, f"iptables chain {IPTABLES_CHAIN} ({ours} rules)")
    for line in qdiscs.splitlines():
        m = _QDISC.match(line.strip())
        if not m:
            continue
        kind, handle, dev, rest = m.groups()
        if handle.startswith(TC_HANDLE_HEX) and handle.endswith(":"):
            if rest.startswith("root"):
                found.append(f"tc root qdisc {TC_HANDLE} on {dev}: {line.strip()}")
        elif kind not in DEFAULT_QDISCS:
            found.append(f"tc qdisc {kind} {handle} on {dev} is not shakedown's: "
                         f"{line.strip()}")
    return found
