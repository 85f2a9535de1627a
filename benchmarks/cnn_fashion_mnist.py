"""`minidl train cnn --dataset fashion-mnist` with the registered defaults, measured.

    python benchmarks/cnn_fashion_mnist.py 3     # --epochs 3 (target: >= 90% test accuracy)
    python benchmarks/cnn_fashion_mnist.py 15    # the default 15 epochs (target: >= 92%)
    python benchmarks/cnn_fashion_mnist.py 1 --out DIR   # table and run directory in DIR instead

Each run trains through the command line's own code (minidl.training.classifier.fit,
seed 0) in runs/fashion-mnist-EPOCHS/ and writes its per-epoch table to
docs/results/cnn_fashion_mnist_EPOCHS.md: test accuracy after every epoch, the
wall-clock and CPU seconds each epoch took, the 1-minute load average when each
epoch ended, the load average before and after the run, and the thread counts
(Numba's pool, BLAS) the run trained with. Seconds per epoch are only as clean
as the load beside them: on a shared machine they include waiting for a core.
The cosine schedule spans the whole run, so the 3-epoch run is not the first
three epochs of the 15-epoch run.
"""
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {3: 0.90, 15: 0.92}


def blas_thread_count():
    """The threads NumPy's BLAS is set to use now (the most of any BLAS loaded)."""
    from threadpoolctl import threadpool_info
    return max((lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"), default=0)


def main(epochs, out_dir=None):
    sys.path.insert(0, str(ROOT))
    from minidl.threads import training_threads      # first: minidl sets up BLAS before NumPy loads
    from minidl.training import make_config
    from minidl.training.classifier import fit
    import numba

    config = make_config("cnn", dataset="fashion-mnist", epochs=epochs)
    out_dir = Path(out_dir) if out_dir else None
    run_dir = (out_dir or ROOT / "runs") / f"fashion-mnist-{epochs}"
    if run_dir.exists():
        shutil.rmtree(run_dir)

    def load_average():
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())

    epoch_loads = []

    def log(text):
        if " | epoch " in text:         # the summary line fit logs after each epoch
            epoch_loads.append(os.getloadavg()[0])
        print(text, flush=True)

    load_before = load_average()
    start = time.perf_counter()
    with training_threads():
        threads = f"Numba {numba.get_num_threads()} threads, BLAS {blas_thread_count()}"
        result = fit(config, run_dir, progress=False, log=log)
    minutes = (time.perf_counter() - start) / 60
    load_after = load_average()
    history = result["history"]
    final = history[-1]["test_acc"]
    target = TARGETS.get(epochs)
    lines = [f"# CNN on Fashion-MNIST, {epochs} epochs, the registered defaults", "",
             f"`minidl train cnn --dataset fashion-mnist --epochs {epochs}`: batch {config.batch_size}, "
             f"{config.optimizer} lr {config.lr}, weight decay {config.weight_decay}, label smoothing "
             f"{config.label_smoothing}, scheduler {config.scheduler}, seed {config.seed}; 60,000 training "
             f"and 10,000 test images. Reproduce with `python benchmarks/cnn_fashion_mnist.py {epochs}`.",
             f"Threads: {threads}. Load average (1, 5, 15 min) before the run: {load_before}; "
             f"after: {load_after}; {minutes:.1f} minutes in all.", "",
             "Wall seconds are the epoch's training steps; CPU seconds are the process's, over "
             "the steps and the evaluation on the test set that follows (up to two cores: CPU "
             "above wall means both were busy). The load is the 1-minute average when the epoch "
             "ended. With other work running, wall seconds include waiting for a core.", "",
             "| epoch | train loss | train accuracy | test accuracy | wall s | CPU s | load |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['epoch']} | {r['train_loss']:.4f} | {r['train_acc']:.2%} | {r['test_acc']:.2%} | "
              f"{r['seconds']:.0f} | {r['cpu_seconds']:.0f} | {load:.2f} |"
              for r, load in zip(history, epoch_loads)]
    if target is not None:
        lines += ["", f"Final test accuracy {final:.2%}: the target of {target:.0%} is "
                  + ("met." if final >= target else "NOT met.")]
    out = (out_dir or ROOT / "docs" / "results") / f"cnn_fashion_mnist_{epochs}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) == 3 and arguments[1] == "--out":
        arguments, out = arguments[:1], arguments[2]
    else:
        out = None
    if len(arguments) != 1 or not arguments[0].isdigit() or int(arguments[0]) < 1:
        raise SystemExit(__doc__)
    main(int(arguments[0]), out)
