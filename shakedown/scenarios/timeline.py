"""The run's timeline as a PNG: fault windows shaded over throughput, lag and envelope counts.

Three panels share the x axis (seconds since the workload started): acknowledged envelopes
per second (and publishes not acknowledged), replication lag per node (envelopes behind what
had been acknowledged by then), and each node's stored envelope count. Fault windows are
shaded across all three and named on top; actions (gateways added or removed), the final
heal and convergence are vertical lines, chaos checkpoints dotted ones (green: the model
agreed, red: it did not). Built from the history alone.
"""

from __future__ import annotations

import io
import math
from collections import Counter

from shakedown.scenarios.view import RunView

COLORS = {"latency": "#f4a261", "bandwidth": "#e9c46a", "reset-peer": "#e76f51",
          "timeout": "#b5838d", "blackhole": "#6d6875", "partition": "#9d4edd", "stop": "#d62828",
          "kill": "#9d0208", "pause": "#fb8500"}
DEFAULT_COLOR = "#8d99ae"


def series(view: RunView) -> dict[str, object]:
    """The plotted data: per-second acks and failures, per-node lag and counts over time."""
    acks: Counter[int] = Counter()
    fails: Counter[int] = Counter()
    for c in view.calls:
        second = math.floor(c.completed)
        if c.outcome == "ok":
            acks[second] += len(c.acks)
        else:
            fails[second] += c.n
    lag: dict[str, list[tuple[float, int]]] = {}
    counts: dict[str, list[tuple[float, int]]] = {}
    calls = sorted(view.calls, key=lambda c: c.completed)
    wanted: dict[int, int] = {}
    k = 0
    for s in view.samples:
        while k < len(calls) and calls[k].completed <= s.t:
            for o, q in calls[k].acks:
                wanted[o] = max(wanted.get(o, 0), q)
            k += 1
        for node, got in s.nodes.items():
            if "count" in got:
                counts.setdefault(node, []).append((s.t, int(got["count"])))
                clock = {int(o): int(q) for o, q in got["clock"].items()}
                behind = sum(max(0, q - clock.get(o, 0)) for o, q in wanted.items())
                lag.setdefault(node, []).append((s.t, behind))
    return {"acks": acks, "fails": fails, "lag": lag, "counts": counts}


def render_png(view: RunView, title: str) -> bytes:
    """The timeline figure as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = series(view)
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, constrained_layout=True)
    ax_tp, ax_lag, ax_count = axes
    acks, fails = data["acks"], data["fails"]
    assert isinstance(acks, Counter) and isinstance(fails, Counter)
    seconds = sorted(set(acks) | set(fails))
    if seconds:
        ax_tp.bar([s + 0.5 for s in seconds], [acks.get(s, 0) for s in seconds], width=0.9,
                  color="#2a9d8f", label="acked envelopes/s")
        if fails:
            ax_tp.bar([s + 0.5 for s in seconds], [fails.get(s, 0) for s in seconds], width=0.9,
                      bottom=[acks.get(s, 0) for s in seconds], color="#d62828",
                      label="not acked/s")
    ax_tp.set_ylabel("throughput\n(envelopes/s)")
    _per_node(ax_lag, _dict(data["lag"]))
    ax_lag.set_ylabel("replication lag\n(envelopes behind)")
    _per_node(ax_count, _dict(data["counts"]))
    ax_count.set_ylabel("envelopes stored\nper node")
    ax_count.set_xlabel("seconds since the workload started")
    _shade(view, axes)
    for ax in axes:
        ax.grid(alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    ax_tp.set_title(title, fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


LEGEND_NODES = 8  # beyond this many nodes, one thin line each and one legend entry


def _per_node(ax: object, series: dict[str, list[tuple[float, int]]]) -> None:
    """One line per node, named in the legend; many nodes as thin unnamed lines."""
    styles = ["-", "--", ":", "-."]
    many = len(series) > LEGEND_NODES
    for k, (name, points) in enumerate(sorted(series.items())):
        label = (f"{len(series)} nodes, one line each" if k == 0 else None) if many else name
        ax.plot([p[0] for p in points], [p[1] for p in points],  # type: ignore[attr-defined]
                label=label, lw=0.7 if many else 1.6, ls="-" if many else styles[k % len(styles)],
                alpha=0.6 if many else 1.0)


def _dict(value: object) -> dict[str, list[tuple[float, int]]]:
    assert isinstance(value, dict)
    return value


def _shade(view: RunView, axes: object) -> None:
    """Fault windows as shaded spans (named on the top panel), events as vertical lines."""
    top = axes[0]  # type: ignore[index]
    for w in view.windows.values():
        if w.error:
            continue
        end = w.end if w.end is not None else view.heal
        color = COLORS.get(w.kind, DEFAULT_COLOR)
        for ax in axes:  # type: ignore[attr-defined]
            ax.axvspan(w.start, end, color=color, alpha=0.25, lw=0)
        top.text((w.start + end) / 2, 0.98, w.label, transform=top.get_xaxis_transform(),
                 ha="center", va="top", fontsize=8, color="#333",
                 bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
    marks = [(e["t"] - view.t0, f"{e.get('kind')} {e.get('target')}")
             for e in view.events if e.get("f") == "action" and e.get("type") == "ok"]
    if view.heal:
        marks.append((view.heal, "final heal"))
    for t, text in marks:
        for ax in axes:  # type: ignore[attr-defined]
            ax.axvline(t, color="#555", ls="--", lw=0.9)
        top.text(t, 0.86, f" {text}", transform=top.get_xaxis_transform(), fontsize=7,
                 color="#555", va="top")
    for e in view.events:  # chaos checkpoints: green where the model agreed, red where not
        if e.get("f") == "checkpoint" and e.get("type") in ("ok", "fail"):
            color = "#2a9d8f" if e["type"] == "ok" else "#d62828"
            for ax in axes:  # type: ignore[attr-defined]
                ax.axvline(e["t"] - view.t0, color=color, ls=":", lw=1.4)
            top.text(e["t"] - view.t0, 0.74, f" check {e.get('n')}", color=color, fontsize=7,
                     transform=top.get_xaxis_transform(), va="top")
