"""Benchmark: training the Keras-example CNN on Fashion-MNIST, minidl next to
PyTorch, both in this one process (a quick look: the tables in
benchmarks/results/ time one step of each library in its own fresh process,
`minidl bench cnn_step`, because one library's spinning threads slow the
other down in a shared process; see the README's "Benchmarks").

    python -m minidl.bench.cnn_epoch                     # 200 steps of batch 32, thread configs 1:1 2:1 2:2
    python -m minidl.bench.cnn_epoch --steps 400 --configs 2:1
    python -m minidl.bench.cnn_epoch --quick             # a few steps (smoke test)
    python -m minidl.bench.cnn_epoch --markdown out.md   # also write the table as Markdown

Both sides train the same network (minidl.models.cnn for 28x28 inputs: conv
32-64-64 3x3, two 2x2 max-pools, dense 64, 10 classes; 93,322 parameters) from
the same initial weights (minidl's are copied into torch), on the same
mini-batches in the same order, with Adam at the same learning rate. A step is
forward, cross-entropy, zero_grad, backward, optimizer step and `loss.item()`.
The images are normalised once beforehand, so neither side pays for data
preparation. The first step's losses are compared: they must agree to float32
precision, which shows the two models really are the same computation.

Timing alternates: chunks of `--chunk` steps of minidl, then of torch, until
each has done `--steps` steps (after a few untimed warm-up steps: JIT, caches).
On a shared, loaded machine the absolute seconds drift, but both sides see the
same patches of load, so the ratio is what to read. An epoch of Fashion-MNIST
is 60,000 / batch steps (1,875 at batch 32); "s/epoch" extrapolates the
measured step time to it. Next to wall-clock seconds the table gives each
side's CPU seconds (the process's, all threads, spinning pool threads
included): on a loaded machine they show the work done, free of the time
spent waiting for a core; with one thread per side their ratio is the
closest thing to an unloaded measurement.

Thread configurations are written THREADS:BLAS. THREADS is Numba's thread
count for minidl's parallel kernels and `torch.set_num_threads` for torch;
BLAS is the number of threads minidl's NumPy matrix products may use
(`minidl train` lets both pools use every core, taking turns; minidl/threads.py).
torch runs its whole step on its own intra-op pool of THREADS threads.

torch is optional (never a dependency of minidl); without it the benchmark
times minidl alone and says so.
"""
import argparse
import contextlib
import os
import sys
import time

import numpy as np

EPOCH_IMAGES = 60_000
DEFAULT_CONFIGS = "1:1,2:1,2:2"


def load_images(limit=None):
    """(images (N, 1, 28, 28) float32 normalised, labels int64, source name).
    Fashion-MNIST when installed, otherwise random 28x28 images (timing only)."""
    from ..data import load_dataset, transforms

    try:
        train = load_dataset("fashion-mnist", "train")
        images, labels, source = train.images, train.labels, "fashion-mnist"
    except (FileNotFoundError, ValueError):
        rng = np.random.default_rng(0)
        n = limit or 4096
        images = rng.random((n, 1, 28, 28), dtype=np.float32)
        labels, source = rng.integers(0, 10, n), "random 28x28 (Fashion-MNIST not found)"
    if limit:
        images, labels = images[:limit], labels[:limit]
    images = transforms.normalize(images, 0.2860, 0.3530).astype(np.float32)   # (N, 1, 28, 28)
    return np.ascontiguousarray(images), labels.astype(np.int64), source


def batch_order(n_images, batch_size, steps, seed=0):
    """Row indices of `steps` mini-batches: a shuffled pass, repeated as needed."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.permutation(n_images) for _ in range(steps * batch_size // n_images + 1)])
    return rows[: steps * batch_size].reshape(steps, batch_size)


def minidl_trainer(images, labels, batches, lr, seed=0):
    """(model, step(i) -> loss) for minidl's CNN."""
    import minidl as mdl
    from .. import functional as F, optim
    from ..models import build_model

    mdl.manual_seed(seed)
    model = build_model("cnn", (1, 28, 28), 10)
    model.train()
    optimizer = optim.Adam(model.parameters(), lr=lr)

    def step(i):
        rows = batches[i % len(batches)]
        logits = model(mdl.tensor(images[rows]))                 # (B, 10)
        loss = F.cross_entropy(logits, mdl.tensor(labels[rows]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return model, step


def torch_trainer(images, labels, batches, lr, minidl_model):
    """step(i) -> loss for the same CNN written in torch, starting from
    `minidl_model`'s weights. Raises ImportError without torch."""
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),          # (B, 32, 13, 13)
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),         # (B, 64, 5, 5)
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),            # (B, 576)
        nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))         # (B, 10)
    source = [minidl_model.conv1, minidl_model.conv2, minidl_model.conv3, minidl_model.fc1, minidl_model.fc2]
    targets = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():                                         # same layouts: (Cout, Cin, kH, kW), (out, in)
        for mine, theirs in zip(source, targets):
            theirs.weight.copy_(torch.from_numpy(np.array(mine.weight.data)))
            theirs.bias.copy_(torch.from_numpy(np.array(mine.bias.data)))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images_t, labels_t = torch.from_numpy(images), torch.from_numpy(labels)

    def step(i):
        rows = torch.from_numpy(batches[i % len(batches)])
        loss = torch.nn.functional.cross_entropy(model(images_t[rows]), labels_t[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


@contextlib.contextmanager
def thread_setting_with_torch(threads, blas):
    """Numba and torch at `threads` threads, minidl's BLAS at `blas` threads
    (minidl.threads.thread_setting, plus torch's intra-op pool when installed)."""
    from ..threads import thread_setting
    try:
        import torch
    except ImportError:
        torch = None
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with thread_setting(threads, blas):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def time_alternating(steppers, steps, chunk, warmup=3):
    """(wall seconds, CPU seconds) each stepper takes for `steps` steps, run in
    alternating chunks. CPU seconds are the process's, summed over its threads
    (spinning pool threads count too): on a loaded machine they show the work
    done, while wall seconds also hold the time spent waiting for a core."""
    for step in steppers.values():
        for i in range(warmup):
            step(i)
    wall = {name: 0.0 for name in steppers}
    cpu = {name: 0.0 for name in steppers}
    done = 0
    while done < steps:
        count = min(chunk, steps - done)
        for name, step in steppers.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for i in range(warmup + done, warmup + done + count):
                step(i)
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
        done += count
    return wall, cpu


def parse_configs(text):
    configs = []
    for part in text.split(","):
        try:
            threads, blas = (int(v) for v in part.split(":"))
        except ValueError:
            raise SystemExit(f"cnn_epoch: --configs takes THREADS:BLAS pairs like 2:1, got {part!r}") from None
        if threads < 1 or blas < 1:
            raise SystemExit(f"cnn_epoch: thread counts must be positive, got {part!r}")
        configs.append((threads, blas))
    return configs


def run(steps=200, batch_size=32, chunk=20, lr=2e-3, configs=DEFAULT_CONFIGS, log=print, limit=None):
    """Measure every thread configuration; return (list of result dicts, info).
    `limit` keeps only the first images (tests)."""
    images, labels, source = load_images(limit=limit)
    warmup = 3
    batches = batch_order(len(images), batch_size, steps + warmup)
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    from . import harness
    log(f"data: {source}, {len(images)} images; batch {batch_size}; {steps} timed steps per side "
        f"(+{warmup} warm-up), chunks of {chunk}; Adam lr {lr}; torch {torch_version or 'not installed'}; "
        f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {harness.machine_description()}")
    results = []
    for threads, blas in parse_configs(configs):
        with thread_setting_with_torch(threads, blas):
            model, minidl_step = minidl_trainer(images, labels, batches, lr)
            steppers = {"minidl": minidl_step}
            if torch_version:
                steppers["torch"] = torch_trainer(images, labels, batches, lr, model)
                first = {name: step(0) for name, step in steppers.items()}   # both start from the same weights
                agree = abs(first["minidl"] - first["torch"]) <= 1e-4 * max(1.0, abs(first["torch"]))
                log(f"first-step loss: minidl {first['minidl']:.6f}, torch {first['torch']:.6f}"
                    + ("" if agree else "  <- DIFFER: the two models are not the same computation"))
            load_before = os.getloadavg()[0]
            seconds, cpu = time_alternating(steppers, steps, chunk, warmup=warmup)
        row = dict(threads=threads, blas=blas, steps=steps, batch_size=batch_size,
                   load=(load_before + os.getloadavg()[0]) / 2,
                   minidl_s=seconds["minidl"], torch_s=seconds.get("torch"),
                   minidl_cpu_s=cpu["minidl"], torch_cpu_s=cpu.get("torch"))
        row["minidl_epoch_s"] = seconds["minidl"] / steps * EPOCH_IMAGES / batch_size
        if row["torch_s"]:
            row["torch_epoch_s"] = row["torch_s"] / steps * EPOCH_IMAGES / batch_size
            row["ratio"] = row["minidl_s"] / row["torch_s"]
            row["cpu_ratio"] = row["minidl_cpu_s"] / row["torch_cpu_s"]
        log(format_row(row))
        results.append(row)
    return results, dict(source=source, torch=torch_version, lr=lr, chunk=chunk)


def format_row(row):
    text = (f"threads {row['threads']}:{row['blas']} | minidl {row['minidl_s']:.1f} s / {row['steps']} steps "
            f"= {row['minidl_epoch_s']:.0f} s/epoch")
    if row.get("torch_s"):
        text += (f" | torch {row['torch_s']:.1f} s = {row['torch_epoch_s']:.0f} s/epoch"
                 f" | minidl/torch {row['ratio']:.2f}x (goal <= 1.5x)"
                 f" | CPU s minidl {row['minidl_cpu_s']:.1f} torch {row['torch_cpu_s']:.1f}"
                 f" ({row['cpu_ratio']:.2f}x)")
    return text + f" | load {row['load']:.1f}"


def markdown(results, info):
    """The results as a Markdown table (one row per thread configuration)."""
    lines = ["| threads:BLAS | minidl s/step | torch s/step | minidl s/epoch | torch s/epoch | minidl/torch "
             "| CPU s/step minidl | CPU s/step torch | CPU ratio | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        cells = [f"{r['threads']}:{r['blas']}", f"{r['minidl_s'] / r['steps']:.4f}", "-",
                 f"{r['minidl_epoch_s']:.0f}", "-", "-", f"{r['minidl_cpu_s'] / r['steps']:.4f}", "-", "-",
                 f"{r['load']:.1f}"]
        if r.get("torch_s"):
            cells[2], cells[4], cells[5] = (f"{r['torch_s'] / r['steps']:.4f}", f"{r['torch_epoch_s']:.0f}",
                                            f"{r['ratio']:.2f}x")
            cells[7], cells[8] = f"{r['torch_cpu_s'] / r['steps']:.4f}", f"{r['cpu_ratio']:.2f}x"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minidl.bench.cnn_epoch", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per side and configuration")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=20, help="steps per turn when alternating")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (the registry's cnn default)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="THREADS:BLAS pairs, comma-separated")
    parser.add_argument("--quick", action="store_true", help="10 steps, one configuration")
    parser.add_argument("--markdown", help="also write the result table to this Markdown file")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.chunk, args.configs = 10, 5, "1:1"
    if args.steps < 1 or args.batch_size < 1 or args.chunk < 1:
        raise SystemExit("cnn_epoch: --steps, --batch-size and --chunk must be positive")
    results, info = run(args.steps, args.batch_size, args.chunk, args.lr, args.configs)
    table = markdown(results, info)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
