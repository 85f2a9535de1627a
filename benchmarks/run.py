"""Run minidl's benchmark suites: `python benchmarks/run.py [suite ...] [--processes N] [--quick]`.
Same as `minidl bench`. Results go to benchmarks/results/ (Markdown + PNG)."""
import argparse

from minidl.bench import runner

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("suites", nargs="*", help=f"any of {', '.join(runner.SUITES)} (default: all)")
parser.add_argument("--processes", type=int, default=3)
parser.add_argument("--quick", action="store_true", help="small shapes, for a smoke test")
args = parser.parse_args()
runner.run(args.suites, processes=args.processes, quick=args.quick)
