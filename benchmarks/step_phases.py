"""Why the same training step sometimes runs slower for seconds at a time.

    python benchmarks/step_phases.py                    # minidl's GPT step and PyTorch's (registry shape)
    python benchmarks/step_phases.py --library minidl   # minidl's only
    python benchmarks/step_phases.py --quick            # tiny shape, few steps (a smoke test)

For each library, a fresh process builds a training step of the gpt_step
suite (minidl's, and its PyTorch twin if PyTorch is installed) and runs it
over and over. After each step it times two small references on each core in
turn (the process is pinned to that core while the reference runs):

- "arithmetic": a pure-Python sum, which stays in the core's registers;
- "memory": NumPy adds over 4 MiB of arrays, more than a core's own cache,
  so they wait on the cache the cores share and on main memory.

Steps are split into fast and slow: slow is more than SLOW_FACTOR times the
step's typical fast time (its 20th percentile). The table shows each
reference's median time after fast steps and after slow ones. On a machine
shared with other programs (a cloud VM, a laptop running a browser) a core
can lose part of its cache and memory speed for seconds at a time while its
arithmetic speed stays the same: then "memory" on that core reads slower
after slow steps, and so does every step, because a step split over both
cores waits for the slower one. A benchmark that times each library once
can land in such a phase by chance; `minidl bench` times each
implementation in several fresh processes, in alternating order, and shows
the median for that reason.

Linux only (it pins itself to one core at a time with `os.sched_setaffinity`).
Writes benchmarks/results/step_phases.md (or --out), with the load average.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))          # this checkout's minidl, also when it is not installed

import minidl  # noqa: E402,F401  (before NumPy: minidl sets BLAS's thread timeout as NumPy loads)
import numpy as np  # noqa: E402

from minidl.bench import gpt_step, harness  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "step_phases.md"
SLOW_FACTOR = 1.25      # a step more than this times the typical fast step is "slow"
MEMORY_BYTES = 4 << 20  # the memory reference's arrays, in all: more than one core's cache


def split_phases(step_ms, factor=SLOW_FACTOR):
    """Boolean mask of the slow steps: above `factor` times the 20th percentile."""
    step_ms = np.asarray(step_ms, dtype=np.float64)
    return step_ms > factor * np.percentile(step_ms, 20)


def arithmetic_reference():
    return sum(range(100_000))


def memory_reference(a=np.ones(MEMORY_BYTES // 8, np.float32), out=np.empty(MEMORY_BYTES // 8, np.float32)):
    for _ in range(10):
        np.add(a, a, out=out)        # reads 2 MiB, writes 2 MiB


def time_on_core(core, fn):
    """Milliseconds of one call of `fn` with this process pinned to `core`."""
    every_core = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        time.sleep(0.0005)           # let the scheduler move the thread to that core first
        start = time.perf_counter()
        fn()
        return 1000.0 * (time.perf_counter() - start)
    finally:
        os.sched_setaffinity(0, every_core)


def measure(step, steps, cores):
    """Rows of (step ms, then per core: arithmetic ms, memory ms)."""
    rows = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        row = [1000.0 * (time.perf_counter() - start)]
        for core in cores:
            row += [time_on_core(core, arithmetic_reference), time_on_core(core, memory_reference)]
        rows.append(row)
    return np.array(rows)           # (steps, 1 + 2 * cores)


def to_markdown(label, rows, cores, load):
    slow = split_phases(rows[:, 0])
    fast = ~slow

    def median(column, mask):
        return f"{np.median(rows[mask, column]):.2f}" if mask.any() else "-"

    lines = [f"## step_phases: {label}, {len(rows)} steps in one process "
             f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start)", "",
             f"Slow steps (above {SLOW_FACTOR} x the 20th percentile): {int(slow.sum())} of {len(rows)}.", "",
             "| measured | after fast steps, median ms | after slow steps, median ms |",
             "|---|---|---|",
             f"| training step | {median(0, fast)} | {median(0, slow)} |"]
    for i, core in enumerate(cores):
        lines.append(f"| arithmetic on core {core} | {median(1 + 2 * i, fast)} | {median(1 + 2 * i, slow)} |")
        lines.append(f"| memory on core {core} | {median(2 + 2 * i, fast)} | {median(2 + 2 * i, slow)} |")
    return "\n".join(lines) + "\n"


def one_library(library, steps, quick):
    """This process: the Markdown section of one library's run."""
    load = os.getloadavg()
    case = harness.find_case(gpt_step, quick, 0)
    step = case.implementations[library]
    for _ in range(3):
        step()                        # builds the step, compiles, fills the caches
    cores = sorted(os.sched_getaffinity(0))
    rows = measure(step, steps, cores)
    return to_markdown(f"{library} gpt step {case.shape}", rows, cores, load)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=("minidl", "torch"), nargs="+", default=None,
                        help="default: minidl, and torch if it is installed")
    parser.add_argument("--steps", type=int, default=None, help="steps per library (default 300; 10 with --quick)")
    parser.add_argument("--quick", action="store_true", help="the suite's tiny shape")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--in-this-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit("step_phases.py pins itself to one core at a time: it needs Linux (os.sched_setaffinity)")
    libraries = args.library or ["minidl"] + (["torch"] if harness.has_torch() else [])
    if "torch" in libraries and not harness.has_torch():
        raise SystemExit("step_phases.py --library torch needs PyTorch: pip install torch")
    steps = args.steps if args.steps is not None else (10 if args.quick else 300)
    if steps < 1:
        raise SystemExit(f"--steps must be at least 1, got {steps}")
    if args.in_this_process:          # the child: one library, its section on stdout
        print(one_library(libraries[0], steps, args.quick), end="")
        return 0
    sections = []
    for library in libraries:         # each in a fresh process: no other library's threads around
        command = [sys.executable, __file__, "--in-this-process", "--library", library, "--steps", str(steps)]
        result = subprocess.run(command + (["--quick"] if args.quick else []), capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"step_phases.py: the {library} run failed:\n{result.stderr[-2000:]}")
        sections.append(result.stdout)
    text = "\n".join(sections)
    Path(args.out).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
