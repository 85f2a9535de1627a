"""`minidl bench jit`: what the first use of the kernels costs (Numba compiling
them) and what every later process pays (loading them from the cache).

Every figure comes from fresh Python processes:

- cold, per family: a process with an empty NUMBA_CACHE_DIR imports minidl
  and runs that family's forward and backward once (`kernels.warmup`), in
  float32 (what training uses) and then float64 (gradcheck, tests). Each
  family gets its own empty cache, so helpers it shares with others (the
  fast exp, say) are counted in each.
- cold, all families: one process, one empty cache, every family in both
  dtypes (the compile work of a fresh install, one compile at a time).
- `minidl compile` on an empty cache: the same work split over two worker
  processes (wall seconds), then a check that a later process loads it all.
- warm: a new process on that filled cache: `import minidl`, then the first
  call of every family in both dtypes.
- `minidl train cnn`: one epoch on the bundled digits, first with an empty
  cache, then again on the cache the first run filled.

The machine's load average is printed with the table; compile times scale
with it. Results go to benchmarks/results/jit.md.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from ..kernels.warmup import FAMILIES

_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import minidl
from minidl.kernels.warmup import compile_family
import numpy as np
imported = time.perf_counter() - start
families, dtypes = sys.argv[1].split(","), [getattr(np, d) for d in sys.argv[2].split(",")]
seconds, cpu = {}, {}
for name in families:
    for dtype in dtypes:
        t, c = time.perf_counter(), time.process_time()
        compile_family(name, (dtype,))
        seconds[f"{name}/{dtype.__name__}"] = time.perf_counter() - t
        cpu[f"{name}/{dtype.__name__}"] = time.process_time() - c
print(json.dumps(dict(imported=imported, seconds=seconds, cpu=cpu)))
"""


def _child(families, dtypes, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _CHILD, ",".join(families), ",".join(dtypes)],
                            env=env, capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report.update(process=total, stderr=result.stderr)
    return report


def _train_cnn(cache_dir, out_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "minidl.cli", "train", "cnn", "--epochs", "1",
                             "--no-progress", "--out", out_dir], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"minidl train cnn failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start, result.stderr


def measure(train=True, families=None):
    """All figures as a dict (see the module docstring); `families` limits the
    families measured (default: all)."""
    dtypes = ("float32", "float64")
    families = list(families or FAMILIES)
    from . import harness
    figures = dict(load_before=os.getloadavg(), machine=harness.machine_description(), families={})
    with tempfile.TemporaryDirectory() as root:
        for name in families:
            cache = os.path.join(root, f"cache-{name}")
            cold = _child([name], dtypes, cache)
            figures["families"][name] = {key.split("/")[1]: value for key, value in cold["seconds"].items()}
            figures["families"][name].update({"cpu_" + key.split("/")[1]: value
                                              for key, value in cold["cpu"].items()})
            figures["families"][name]["notice"] = "compiling minidl kernels" in cold["stderr"]
        cache = os.path.join(root, "cache-all")
        cold_all = _child(families, dtypes, cache)
        warm = _child(families, dtypes, cache)
        figures["cold_all"] = dict(process=cold_all["process"], kernels=sum(cold_all["seconds"].values()),
                                   cpu=sum(cold_all["cpu"].values()), imported=cold_all["imported"],
                                   float32=sum(v for k, v in cold_all["seconds"].items() if k.endswith("32")),
                                   cpu_float32=sum(v for k, v in cold_all["cpu"].items() if k.endswith("32")))
        figures["warm"] = dict(process=warm["process"], imported=warm["imported"],
                               first_calls=sum(warm["seconds"].values()),
                               per_family={k: v for k, v in warm["seconds"].items()},
                               notice="compiling minidl kernels" in warm["stderr"])
        if set(families) == set(FAMILIES):
            cache = os.path.join(root, "cache-compile")
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "minidl.cli", "compile", "--no-progress"], env=env,
                           capture_output=True, text=True, check=True)
            after = _child(families, dtypes, cache)
            figures["minidl_compile"] = dict(wall=time.perf_counter() - start - after["process"],
                                             then_notice="compiling minidl kernels" in after["stderr"])
        if train:
            cache = os.path.join(root, "cache-train")
            first, first_err = _train_cnn(cache, os.path.join(root, "run1"))
            second, second_err = _train_cnn(cache, os.path.join(root, "run2"))
            figures["train_cnn"] = dict(first=first, second=second,
                                        first_notice="compiling minidl kernels" in first_err,
                                        second_notice="compiling minidl kernels" in second_err)
    figures["load_after"] = os.getloadavg()
    return figures


def to_markdown(f):
    load = lambda t: ", ".join(f"{x:.2f}" for x in t)          # noqa: E731
    lines = ["# JIT: first use (cold) and later processes (warm)", "",
             "Reproduce with `minidl bench jit` (every figure from fresh processes; see",
             "`minidl/bench/jit.py`). Load average (1, 5, 15 min) before the run: "
             f"{load(f['load_before'])}; after: {load(f['load_after'])}. Compile times grow with load.",
             f"Processor: {f.get('machine', 'not recorded')}.", "",
             "Compiling is single-threaded, so its CPU seconds are what it costs on an idle",
             "machine; the wall-clock seconds include waiting for a core on a loaded one.", "",
             "## Cold: each family alone, empty cache (wall seconds / CPU seconds)", "",
             "| family | float32 (first use in training) | then float64 | both | notice printed |",
             "|---|---|---|---|---|"]
    total32 = total = cpu32 = cpu = 0.0
    for name, row in f["families"].items():
        both = row["float32"] + row["float64"]
        cpu_both = row["cpu_float32"] + row["cpu_float64"]
        total32, total = total32 + row["float32"], total + both
        cpu32, cpu = cpu32 + row["cpu_float32"], cpu + cpu_both
        lines.append(f"| {name} | {row['float32']:.1f} / {row['cpu_float32']:.1f} | "
                     f"{row['float64']:.1f} / {row['cpu_float64']:.1f} | {both:.1f} / {cpu_both:.1f} | "
                     f"{'yes' if row['notice'] else 'NO'} |")
    lines.append(f"| **sum** | **{total32:.1f} / {cpu32:.1f}** | | **{total:.1f} / {cpu:.1f}** | |")
    c, w = f["cold_all"], f["warm"]
    lines += ["", "## All families in one process", "",
              "| | seconds |", "|---|---|",
              f"| cold: every family, float32 only, one empty cache | {c['float32']:.1f} "
              f"(CPU {c['cpu_float32']:.1f}) |",
              f"| cold: every family, both dtypes, one empty cache, one process | {c['kernels']:.1f} "
              f"(CPU {c['cpu']:.1f}; whole process {c['process']:.1f}) |",
              f"| warm: `import minidl` | {w['imported']:.2f} |",
              f"| warm: first call of every family, both dtypes | {w['first_calls']:.2f} |",
              f"| warm: import + first calls | {w['imported'] + w['first_calls']:.2f} "
              f"(whole process {w['process']:.2f}) |",
              f"| warm run printed the compile notice | {'yes (a kernel recompiled!)' if w['notice'] else 'no'} |"]
    if "minidl_compile" in f:
        m = f["minidl_compile"]
        lines += ["", "## `minidl compile` on an empty cache (two worker processes)", "",
                  "| | |", "|---|---|",
                  f"| wall seconds | {m['wall']:.1f} |",
                  f"| a later process compiled anything | {'yes' if m['then_notice'] else 'no'} |"]
    if "train_cnn" in f:
        t = f["train_cnn"]
        lines += ["", "## `minidl train cnn --epochs 1` (bundled digits)", "",
                  "| run | seconds | notice printed |", "|---|---|---|",
                  f"| first, empty cache | {t['first']:.1f} | {'yes' if t['first_notice'] else 'no'} |",
                  f"| second, same cache | {t['second']:.1f} | {'yes' if t['second_notice'] else 'no'} |",
                  f"| first - second | {t['first'] - t['second']:.1f} | |"]
    return "\n".join(lines) + "\n"


def run(out_dir="benchmarks/results", train=True, families=None):
    figures = measure(train=train, families=families)
    text = to_markdown(figures)
    print(text)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "jit.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "jit.json"), "w") as f:
        json.dump(figures, f, indent=1)
    print(f"wrote {out_dir}/jit.md")
    return figures


if __name__ == "__main__":      # python -m minidl.bench.jit [--no-train] [--families a,b] [--out DIR]
    args = sys.argv[1:]
    option = lambda name, default: args[args.index(name) + 1] if name in args else default  # noqa: E731
    run(out_dir=option("--out", "benchmarks/results"), train="--no-train" not in args,
        families=option("--families", "").split(",") if "--families" in args else None)
