"""Two charts in one PNG: latency by resolution per backend (this run) and fps over time (the history file).

matplotlib is imported lazily with the Agg backend, so nothing here needs a display.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cgan._files import atomic_path
from cgan.benchmarks.report import setup_key, setup_of
from cgan.errors import CganError


def _label(r: dict[str, Any]) -> str:
    return f"{r['backend']} {r['precision']} b{r['batch']}"


def _latency_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in result["rows"] if r.get("status") == "ok" and r.get("p50_ms") and r.get("height")
            and not r["backend"].startswith(("video", "train"))]


def latency_series(result: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """The left chart's lines: '<backend or variant> <precision> b<batch>' -> [(megapixels, ms per frame)]."""
    series: dict[str, list[tuple[float, float]]] = {}
    for r in _latency_rows(result):
        series.setdefault(_label(r), []).append((r["height"] * r["width"] / 1e6, r["p50_ms"] / r["batch"]))
    return series


def _machine(run: dict[str, Any]) -> Any:
    env = run.get("env", run)  # a result keeps it in env, a history line at the top level
    return env.get("gpu") or env.get("host_cpu")


def _setup_label(result: dict[str, Any]) -> str:
    setup = setup_of(result)
    threads = setup.get("threads")
    return f"{setup.get('model', '?')}{f', {threads} threads' if threads else ''}"


def history_series(result: dict[str, Any], history: list[dict[str, Any]]
                   ) -> tuple[tuple[int, int, int] | None, list[dict[str, Any]], dict[str, list[tuple[int, float]]]]:
    """The right chart: (reference (height, width, batch), the runs shown, label -> [(run index, fps)]).

    Only runs of the same kind (inference / train / video) on the same GPU or CPU with the same setup (the
    generator's architecture and the threads asked for: report.setup_key; lines written before it was recorded
    are left out), and only their ok rows at the reference shape: the largest batch-1 size of this run (a train
    run: its own size and batch), so the lines compare like with like."""
    kind = result.get("kind")
    if kind == "train":
        own = [r for r in result["rows"] if r.get("status") == "ok" and r.get("height")]
        ref = max(((r["height"], r["width"], r["batch"]) for r in own), key=lambda s: s[0] * s[1], default=None)
    else:
        ref = max(((r["height"], r["width"], 1) for r in _latency_rows(result) if r["batch"] == 1),
                  key=lambda s: s[0] * s[1], default=None)
    if ref is None:
        return None, [], {}
    runs = [h for h in history if h.get("kind", kind) == kind and _machine(h) == _machine(result)
            and setup_key(h) == setup_key(result)]
    lines: dict[str, list[tuple[int, float]]] = {}
    for i, run in enumerate(runs):
        for r in run.get("rows", []):
            if (r.get("status", "ok") == "ok" and r.get("fps")
                    and (r.get("height"), r.get("width"), r.get("batch")) == ref):
                lines.setdefault(f"{r['backend']} {r['precision']}", []).append((i, r["fps"]))
    return ref, runs, lines


def plot_result(result: dict[str, Any], out: str | os.PathLike, history: list[dict[str, Any]] | None = None) -> Path:
    """Write the PNG. Left: p50 latency per frame (ms, log) against megapixels, one line per
    backend/precision/batch (a train run: images/s per configuration). Right: fps over past runs of the same
    kind on the same machine (see history_series)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CganError("--plot needs matplotlib: pip install matplotlib (or cgan[cpu])") from None

    rows = _latency_rows(result)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    if result.get("kind") == "train":  # no latency by resolution: the configurations' images/s instead
        ok = [r for r in result["rows"] if r.get("status") == "ok" and r.get("fps")]
        ax1.barh([r["backend"] for r in ok], [r["fps"] for r in ok])
        ax1.set_xlabel("training images/s")
    series = latency_series(result)
    ax1.set_prop_cycle(color=matplotlib.colormaps["tab20"].colors)  # many variants: 20 colours before one repeats
    markers = "os^vD<>"
    for label, pts in sorted(series.items()):
        pts.sort()
        style = "k--" if label.startswith("baseline") else "-"
        marker = markers[int(label.rsplit(" b", 1)[1]).bit_length() % len(markers)]
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], style, marker=marker, label=label)
    sizes = sorted({(r["height"], r["width"]) for r in rows}, key=lambda s: s[0] * s[1])
    if sizes:
        ax1.set_xticks([h * w / 1e6 for h, w in sizes], [f"{h}x{w}" for h, w in sizes], rotation=30, fontsize=8)
        ax1.set_yscale("log")
        ax1.legend(fontsize=7)
    env = result.get("env", {})
    where = env.get("gpu") or f"CPU: {env.get('host_cpu')}"
    if result.get("kind") == "train":
        ax1.set_title(f"training speed per configuration — {where}", fontsize=9)
    else:
        ax1.set_title(f"p50 latency per frame — {where}", fontsize=9)
        ax1.set_ylabel("ms per frame (p50 / batch)")
    ax1.grid(True, which="both", alpha=0.3)

    ref, runs, lines = history_series(result, history or [])
    if ref and lines:
        for label, pts in sorted(lines.items()):
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax2.set_xticks(range(len(runs)), [f"{(h.get('date') or '?')[:10]}\n{(h.get('git_sha') or '')[:7]}"
                                          for h in runs], fontsize=7, rotation=30)
        ax2.legend(fontsize=7)
        ax2.set_title(f"history on this machine, {_setup_label(result)}: fps at {ref[0]}x{ref[1]}, batch {ref[2]}",
                      fontsize=9)
    else:
        ax2.set_title(f"history: no earlier runs of this kind on this machine, {_setup_label(result)} "
                      f"(use --history FILE)", fontsize=9)
    ax2.set_ylabel("frames/s")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
