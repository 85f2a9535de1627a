"""`minidl bench [suite ...]`: run benchmark suites, each in several fresh
processes, and write a Markdown table and a bar chart per suite.

Each suite is a module `minidl.bench.<name>` with a `cases(quick)` generator.
A process runs one suite and prints its rows as JSON; the parent takes the
median over processes, since between processes timings vary by 10-100% here.
"""
import importlib
import json
import os
import subprocess
import sys

from . import harness

SUITES = ("overhead", "conv", "pool", "softmax", "attention", "gpt_step", "gan_step")


def available_suites():
    """Suites whose module exists (families land one by one)."""
    found = []
    for name in SUITES:
        try:
            importlib.import_module(f"minidl.bench.{name}")
            found.append(name)
        except ModuleNotFoundError:
            pass
    return found


def run_in_this_process(name, quick=False):
    module = importlib.import_module(f"minidl.bench.{name}")
    return harness.run_suite(module.cases(quick), log=lambda text: print(text, file=sys.stderr))


def run(names=None, processes=3, quick=False, out_dir="benchmarks/results"):
    names = list(names or available_suites())
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        if name == "jit":                    # first-use compile times: its own fresh processes
            from . import jit
            jit.run(out_dir, train=not quick)
            continue
        if name not in SUITES:
            raise SystemExit(f"minidl bench: unknown suite {name!r}; choose from {', '.join(SUITES)}")
        row_lists = []
        for process in range(processes):
            print(f"[{name}] process {process + 1}/{processes}", file=sys.stderr)
            command = [sys.executable, "-m", "minidl.bench.runner", name] + (["--quick"] if quick else [])
            result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
            row_lists.append(json.loads(result.stdout))
        rows = harness.combine_processes(row_lists)
        title = f"{name}: median of {processes} processes"
        print(harness.format_rows(rows))
        with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
            f.write(harness.to_markdown(rows, title))
        harness.bar_chart(rows, os.path.join(out_dir, f"{name}.png"), title)
        print(f"wrote {out_dir}/{name}.md and {name}.png")


if __name__ == "__main__":      # one process, one suite, JSON on stdout
    suite = sys.argv[1]
    print(json.dumps(run_in_this_process(suite, quick="--quick" in sys.argv)))
