"""`minidl bench [suite ...]`: run benchmark suites and write a Markdown table
and a bar chart per suite.

Each suite is a module `minidl.bench.<name>` with a `cases(quick)` generator.
Every (case, implementation) is timed in its own fresh process, `processes`
rounds with the order alternating, and the table holds the median over rounds
(`harness.measure_isolated`; the README's "Benchmarks" section says why).
The table also says how many threads each library had in its process.

    python -m minidl.bench.runner --time SUITE CASE IMPLEMENTATION REPEATS MIN_SECONDS [--quick]

is the child: it times one implementation of one case and prints JSON.
"""
import importlib
import json
import os
import sys

from . import harness

SUITES = ("overhead", "conv", "pool", "softmax", "attention", "cnn_step", "gpt_step", "gan_step")
# Suites run only when named: first-use compile times (jit.py, its own runner)
# and a sweep of the kernels' chunk sizes (chunks.py)
NAMED_ONLY = ("jit", "chunks")


def available_suites():
    """Suites whose module exists."""
    found = []
    for name in SUITES:
        try:
            importlib.import_module(f"minidl.bench.{name}")
            found.append(name)
        except ModuleNotFoundError:
            pass
    return found


def run(names=None, processes=3, quick=False, out_dir="benchmarks/results"):
    names = list(names or available_suites())
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        if name == "jit":                    # first-use compile times: its own fresh processes
            from . import jit
            jit.run(out_dir, train=not quick)
            continue
        if name not in SUITES + NAMED_ONLY:
            raise SystemExit(f"minidl bench: unknown suite {name!r}; "
                             f"choose from {', '.join(SUITES + NAMED_ONLY)}")
        module = importlib.import_module(f"minidl.bench.{name}")
        if hasattr(module, "check_same_step") and harness.has_torch():
            module.check_same_step(quick)    # both sides do the same work (in this process, before timing)
        load = os.getloadavg()
        rows = harness.measure_isolated(name, quick=quick, rounds=processes,
                                        log=lambda text: print(text, file=sys.stderr))
        title = (f"{name}: each implementation in its own fresh process, median of {processes} "
                 f"alternating rounds (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start) "
                 f"on {harness.machine_description()}")
        print(harness.format_rows(rows))
        with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
            f.write(harness.to_markdown(rows, title))
            note = getattr(module, "TABLE_NOTE", "")     # how to read the suite's table, if it says
            if note:
                f.write("\n" + note + "\n")
        harness.bar_chart(rows, os.path.join(out_dir, f"{name}.png"), title)
        print(f"wrote {out_dir}/{name}.md and {name}.png")


def _time_one(argv):
    """Child process: time one implementation of one case; print JSON."""
    suite, index, implementation, repeats, min_seconds = argv[:5]
    module = importlib.import_module(harness.suite_module_name(suite))
    case = harness.find_case(module, "--quick" in argv, int(index))
    fn = case.implementations[implementation]
    ms = harness.time_callable(fn, repeats=int(repeats), min_seconds=float(min_seconds))
    threads = getattr(fn, "threads", None) or harness.thread_counts()   # a step's own, if it kept them
    print(json.dumps(dict(ms=ms, threads=threads)))


if __name__ == "__main__":
    if sys.argv[1] == "--time":
        _time_one(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m minidl.bench.runner --time SUITE CASE IMPLEMENTATION "
                         "REPEATS MIN_SECONDS [--quick]")
