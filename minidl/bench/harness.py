"""Side-by-side timing: the same inputs, several implementations, one process.

This machine is shared and noisy, so absolute milliseconds drift between runs;
ratios measured in one run, with the implementations alternating, do not.

A benchmark suite (one module per op family in `minidl.bench`) defines
`cases(quick)`, yielding `Case`s. Each case names an op and a shape, holds one
zero-argument callable per implementation ("numba fwd+bwd", "numpy fwd+bwd",
"torch fwd+bwd", ...) and the work one call does (floating-point operations or
bytes moved), so the table can show GFLOP/s or GB/s next to the milliseconds.
"""
import dataclasses
import json
import time

import numpy as np


@dataclasses.dataclass
class Case:
    op: str                       # e.g. "conv2d"
    shape: str                    # e.g. "N64 1->32 28x28 k3 p1"
    implementations: dict         # name -> zero-argument callable
    work: float = 0.0             # flops (unit "GFLOP/s") or bytes ("GB/s") per call
    unit: str = "GFLOP/s"
    baseline: str = ""            # implementation the ratios are taken against


def has_torch():
    """True when PyTorch is importable: an optional comparison, never a dependency."""
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def measure(implementations, rounds=7, min_seconds=0.05, max_calls=1000):
    """Median milliseconds per call of each implementation.

    Every round runs each implementation in turn (so a slow patch of the
    machine hits them all alike); within a round a callable repeats until
    `min_seconds` have passed. The first call of each is a warm-up (JIT, caches).
    """
    times = {name: [] for name in implementations}
    for fn in implementations.values():
        fn()                                           # warm-up, not timed
    for _ in range(rounds):
        for name, fn in implementations.items():
            calls, start = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_seconds or calls >= max_calls:
                    break
            times[name].append(1000.0 * elapsed / calls)
    return {name: float(np.median(t)) for name, t in times.items()}


def run_suite(cases, rounds=7, min_seconds=0.05, log=print):
    """Measure every case; return a list of result rows (dicts)."""
    rows = []
    for case in cases:
        medians = measure(case.implementations, rounds, min_seconds)
        for name, ms in medians.items():
            row = dict(op=case.op, shape=case.shape, implementation=name, ms=ms,
                       unit=case.unit, rate=(case.work / (ms * 1e-3) / 1e9) if case.work else None)
            if case.baseline and case.baseline in medians:
                row["vs_" + case.baseline] = ms / medians[case.baseline]
            rows.append(row)
        if log:
            log(format_rows([r for r in rows if r["op"] == case.op and r["shape"] == case.shape]))
    return rows


def format_rows(rows):
    """A plain-text table of result rows."""
    lines = []
    for r in rows:
        rate = f"{r['rate']:8.2f} {r['unit']}" if r.get("rate") else " " * 16
        ratios = "  ".join(f"{k[3:]}={v:.2f}x" for k, v in r.items() if k.startswith("vs_"))
        lines.append(f"{r['op']:<18} {r['shape']:<32} {r['implementation']:<24} "
                     f"{r['ms']:9.3f} ms {rate}  {ratios}")
    return "\n".join(lines)


def combine_processes(row_lists):
    """Median over processes of each (op, shape, implementation)'s figures."""
    grouped = {}
    for rows in row_lists:
        for r in rows:
            grouped.setdefault((r["op"], r["shape"], r["implementation"]), []).append(r)
    combined = []
    for group in grouped.values():
        row = dict(group[0])
        for field, value in row.items():
            if isinstance(value, float):
                row[field] = float(np.median([g[field] for g in group]))
        row["processes"] = len(group)
        combined.append(row)
    return combined


def to_markdown(rows, title):
    """A Markdown table of result rows."""
    ratio_keys = sorted({k for r in rows for k in r if k.startswith("vs_")})
    header = ["op", "shape", "implementation", "ms", "rate"] + [f"ratio {k[3:]}" for k in ratio_keys]
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        rate = f"{r['rate']:.2f} {r['unit']}" if r.get("rate") else ""
        cells = [r["op"], r["shape"], r["implementation"], f"{r['ms']:.3f}", rate]
        cells += [f"{r[k]:.2f}x" if k in r else "" for k in ratio_keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(rows, path, title):
    """Save a horizontal bar chart of milliseconds per (op, shape, implementation)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['op']} {r['shape']} | {r['implementation']}" for r in rows]
    values = [r["ms"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.2))
    ax.barh(range(len(rows)), values, color="tab:blue")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per call (log scale, median)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def dump_json(rows):
    return json.dumps(rows)
