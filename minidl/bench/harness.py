"""Side-by-side timing: the same inputs, several implementations, each timed
in its own fresh process.

Why not one process: after a library's call returns, its thread pool keeps
spinning for a while (NumPy's OpenBLAS, Numba's workers, torch's OpenMP
threads all busy-wait to answer the next call quickly). On a machine with
few cores, an implementation timed right after another library's call shares
the cores with those spinning threads and reads several times slower than it
is. So `measure_isolated` times every (case, implementation) in a fresh
Python process that runs nothing else: it builds the inputs, makes warm-up
calls (JIT, caches), pauses, then times. Rounds alternate the order
(A B, B A, ...) so that a slow patch of a shared machine hits all alike, and
the table holds the median over rounds. tests/test_bench_harness.py proves
it with A/A runs (the same code against itself reads ~1.0).

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


class BuiltOnFirstCall:
    """An implementation that is built on its first call (the untimed warm-up),
    in the process that times it.

    A step suite's implementations are whole training steps: building one
    (a model, an optimizer, imports, the thread policy it trains under) is
    done only in the fresh process that times it, so torch is never loaded in
    minidl's process nor minidl's kernels run in torch's. `libraries` names
    what the step runs on ("numba", "blas", "torch"): the thread counts of
    those, read right after building, go into the table."""

    def __init__(self, build, libraries):
        self.build, self.libraries = build, tuple(libraries)
        self.step, self.threads = None, None

    def __call__(self):
        if self.step is None:
            self.step = self.build()
            self.threads = thread_counts(self.libraries)
        return self.step()


def has_torch():
    """True when PyTorch is installed: an optional comparison, never a
    dependency. Looks it up without importing it (importing starts its threads)."""
    import importlib.util
    return importlib.util.find_spec("torch") is not None


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


def time_callable(fn, repeats=5, min_seconds=0.05, warmups=2, pause=0.25):
    """Median milliseconds per call of `fn`, in this process: `warmups` calls,
    a pause, then `repeats` samples of at least `min_seconds` each."""
    for _ in range(warmups):
        fn()
    time.sleep(pause)
    samples = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        samples.append(1000.0 * elapsed / calls)
    return float(np.median(samples))


def thread_counts(libraries=("numba", "blas", "torch")):
    """Threads each loaded library of `libraries` would use now: Numba, BLAS,
    torch (if imported). Asking Numba starts its thread pool."""
    import sys
    counts = {}
    if "numba" in libraries and "numba" in sys.modules:
        counts["numba"] = sys.modules["numba"].get_num_threads()
    try:
        from threadpoolctl import threadpool_info
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        if blas and "blas" in libraries:
            counts["blas"] = max(blas)
    except ImportError:
        pass
    if "torch" in libraries and "torch" in sys.modules:
        counts["torch"] = sys.modules["torch"].get_num_threads()
    return counts


def machine_description(cpuinfo="/proc/cpuinfo", blas=None):
    """The processor a table was measured on, for its title: model name (with
    the x86 family and model numbers, which tell processor generations apart
    where the name is only "AMD EPYC"), how many CPUs this process may use,
    the widest vector instructions the processor has, and the kernels OpenBLAS
    runs ("AMD EPYC (family 26, model 2), 2 CPUs, AVX-512, OpenBLAS SkylakeX
    kernels"). Ratios against PyTorch change from one processor to another
    (its kernels and ours use the vector units differently), and minidl's
    matrix products run in OpenBLAS, whose kernels an environment variable
    can force narrower than the processor's (`blas_kernels`), so a table says
    where and how it ran. blas: that part given, instead of asking OpenBLAS."""
    import os
    import platform
    model, flags, family, number = "", set(), "", ""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and not model:
                    model = " ".join(value.split())
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                elif key == "cpu family" and not family:
                    family = value
                elif key == "model" and not number:
                    number = value
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown processor"
    if family and number:
        model += f" (family {family}, model {number})"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [model, f"{cpus} CPU{'s' if cpus != 1 else ''}"]
    if "avx512f" in flags:
        parts.append("AVX-512")
    elif "avx2" in flags:
        parts.append("AVX2")
    elif "asimd" in flags:
        parts.append("NEON")
    blas = blas_kernels() if blas is None else blas
    if blas:
        parts.append(blas)
    return ", ".join(parts)


def blas_kernels():
    """Which OpenBLAS kernels minidl's matrix products run ("OpenBLAS SkylakeX
    kernels"), read through threadpoolctl from the libraries NumPy and SciPy
    loaded (Numba's np.dot calls SciPy's). OpenBLAS picks its kernels for the
    processor it finds, unless the environment variable OPENBLAS_CORETYPE
    names others: OPENBLAS_CORETYPE=Haswell on an AVX-512 processor runs
    AVX2 kernels, at about half the speed, and the description then says it
    was forced. "" where no OpenBLAS is found."""
    import os
    from ..threads import _blas_libraries      # NumPy's and SciPy's BLAS, found once
    try:
        found = [info.get("architecture") for info in _blas_libraries().info()
                 if info.get("internal_api") == "openblas" and info.get("architecture")]
    except Exception:              # no SciPy BLAS to ask: a description without it
        return ""
    if not found:
        return ""
    text = "OpenBLAS " + "/".join(dict.fromkeys(found)) + " kernels"
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return f"{text} (forced by OPENBLAS_CORETYPE={forced})" if forced else text


def find_case(module, quick, index):
    """The index-th Case of a suite module's `cases(quick)`."""
    for i, case in enumerate(module.cases(quick)):
        if i == index:
            return case
    raise IndexError(f"{module.__name__} has no case {index}")


def suite_module_name(suite):
    """"conv" -> "minidl.bench.conv"; any other importable module name as given."""
    import importlib.util
    if "." not in suite and importlib.util.find_spec(f"minidl.bench.{suite}") is not None:
        return f"minidl.bench.{suite}"
    return suite


def time_in_fresh_process(suite, quick, index, implementation, repeats=5, min_seconds=0.05):
    """(milliseconds, thread counts) of one implementation of one case, timed in
    a new Python process (see the module docstring)."""
    import os
    import subprocess
    import sys
    command = [sys.executable, "-m", "minidl.bench.runner", "--time", suite, str(index),
               implementation, str(repeats), str(min_seconds)] + (["--quick"] if quick else [])
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=dict(os.environ))
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return answer["ms"], answer["threads"]


def measure_isolated(suite, quick=False, rounds=3, repeats=5, min_seconds=0.05, log=None):
    """Rows for every case of `suite` (a module name under minidl.bench, or a full
    module name), each implementation timed in fresh processes, `rounds` rounds
    alternating the order; the median over rounds."""
    import importlib
    name = suite_module_name(suite)
    module = importlib.import_module(name)
    listing = [(c.op, c.shape, list(c.implementations), c.work, c.unit, c.baseline)
               for c in module.cases(quick)]
    rows = []
    for index, (op, shape, implementations, work, unit, baseline) in enumerate(listing):
        times = {impl: [] for impl in implementations}
        threads = {}
        for r in range(rounds):
            order = implementations if r % 2 == 0 else implementations[::-1]
            for impl in order:
                ms, threads[impl] = time_in_fresh_process(name, quick, index, impl, repeats, min_seconds)
                times[impl].append(ms)
        medians = {impl: float(np.median(t)) for impl, t in times.items()}
        case_rows = []
        for impl, ms in medians.items():
            row = dict(op=op, shape=shape, implementation=impl, ms=ms, unit=unit,
                       rate=(work / (ms * 1e-3) / 1e9) if work else None, processes=rounds,
                       threads=" ".join(f"{k}={v}" for k, v in sorted(threads[impl].items())))
            if baseline and baseline in medians:
                row["vs_" + baseline] = ms / medians[baseline]
            case_rows.append(row)
        rows += case_rows
        if log:
            log(format_rows(case_rows))
    return rows


def step_suite_main(suite, check_same_step, argv):
    """`python -m minidl.bench.<suite>` for a training-step suite: where torch is
    installed, check that both sides take the same first step; then print the
    table (each implementation in fresh processes, as `minidl bench <suite>`)."""
    quick = "--quick" in argv
    if has_torch():
        check_same_step(quick)
    print(format_rows(measure_isolated(suite, quick=quick, rounds=2 if quick else 3)))


def run_suite(cases, rounds=7, min_seconds=0.05, log=print):
    """Measure every case in THIS process (implementations alternating); return
    a list of result rows (dicts). A quick look only: one library's spinning
    threads slow the next one down here; the tables use `measure_isolated`."""
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
    with_threads = any(r.get("threads") for r in rows)
    header += ["threads"] if with_threads else []
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        rate = f"{r['rate']:.2f} {r['unit']}" if r.get("rate") else ""
        cells = [r["op"], r["shape"], r["implementation"], f"{r['ms']:.3f}", rate]
        cells += [f"{r[k]:.2f}x" if k in r else "" for k in ratio_keys]
        cells += [r.get("threads", "")] if with_threads else []
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
