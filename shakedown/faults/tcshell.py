"""tc as shell, shared by host faults (run over SSH) and container faults (run under nsenter).

Two scopes, both under our root handle ``5d:``: a whole device (one root qdisc of ours), or
per destination: an htb root that passes unclassified traffic untouched, and per fault one
class ``5d:N``, its leaf qdisc ``5dNN:`` (netem, tbf) and u32 filters at priority N that send
the matching packets into that class. Undo commands are idempotent; the htb root goes with its
last class. One controller per testnet is assumed: a class number is picked from what is open.

    sh = per_destination("eth0", 3, ["tbf", "rate", "4000kbit", ...],
                         [dst_match("10.0.0.5/32"), dst_port_match("10.0.0.2", 10200)])
    script = "\\n".join([sh.read, *sh.apply])
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from shakedown.errors import FaultError
from shakedown.faults.names import TC_HANDLE, TC_HANDLE_HEX

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
