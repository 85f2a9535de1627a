"""Time every tutorial as a script, in quick mode (MINIDL_QUICK=1) and in full mode:
`python benchmarks/time_tutorials.py [--quick-only] [--out FILE] [NAME ...]`.

Each tutorial runs in a fresh Python process from the repository root, with its
pictures written to a temporary folder (deleted afterwards). Wall-clock seconds
and the 1-minute load average before and after each run are written to
benchmarks/results/tutorial_times.md: the README's learning path quotes them.
The Numba cache is warmed by one untimed quick run of each tutorial first, as it
would be on a machine where minidl has run before.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "tutorial_times.md"


def run(path, quick):
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("MINIDL_QUICK", None)
    if quick:
        env["MINIDL_QUICK"] = "1"
    with tempfile.TemporaryDirectory() as out_dir:
        env["MINIDL_TUTORIAL_OUT"] = out_dir
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(path)], cwd=out_dir, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{result.stderr[-2000:]}")
    return seconds, load_before, os.getloadavg()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="tutorial file names or stems (default: all)")
    parser.add_argument("--quick-only", action="store_true", help="skip the full runs")
    parser.add_argument("--out", default=str(OUT), help=f"the Markdown table to write (default {OUT})")
    args = parser.parse_args()
    tutorials = sorted((ROOT / "tutorials").glob("[0-9]*.py"))
    if args.names:
        tutorials = [t for t in tutorials if t.name in args.names or t.stem in args.names]
    for path in tutorials:                                   # warm the Numba cache, untimed
        run(path, quick=True)
    rows = []
    for path in tutorials:
        quick = run(path, quick=True)
        full = None if args.quick_only else run(path, quick=False)
        rows.append((path.name, quick, full))
        print(path.name, f"quick {quick[0]:.0f} s", "" if full is None else f"full {full[0]:.0f} s", flush=True)
    lines = ["## Tutorials: wall-clock seconds per run, quick and full mode", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
             f"`python benchmarks/time_tutorials.py` on {platform.machine()} with {os.cpu_count()} CPU cores, "
             f"Python {platform.python_version()}, one run each after a warm-up run (Numba cache warm). The "
             "machine was shared with other jobs: the load average (1 minute) before and after each "
             "run is given. A load above the number of cores means other processes shared the CPU, so the "
             "same run on an idle machine of this kind would be faster.", "",
             "| tutorial | quick (s) | load before / after | full (s) | load before / after |",
             "|---|---|---|---|---|"]
    for name, quick, full in rows:
        full_cells = "not run | " if full is None else f"{full[0]:.0f} | {full[1]:.1f} / {full[2]:.1f}"
        lines.append(f"| `{name}` | {quick[0]:.0f} | {quick[1]:.1f} / {quick[2]:.1f} | {full_cells} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
