"""`minidl train cnn --dataset fashion-mnist` with the registered defaults, measured.

    python benchmarks/cnn_fashion_mnist.py 3     # --epochs 3 (target: >= 90% test accuracy)
    python benchmarks/cnn_fashion_mnist.py 15    # the default 15 epochs (target: >= 92%)

Each run trains through the command line's own code (minidl.training.classifier.fit,
seed 0) in runs/fashion-mnist-EPOCHS/ and writes its per-epoch table to
docs/results/cnn_fashion_mnist_EPOCHS.md: test accuracy after every epoch and the
seconds each epoch took (with the load average, since the machine may be shared).
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


def main(epochs):
    sys.path.insert(0, str(ROOT))
    from minidl.threads import training_threads
    from minidl.training import make_config
    from minidl.training.classifier import fit

    config = make_config("cnn", dataset="fashion-mnist", epochs=epochs)
    run_dir = ROOT / "runs" / f"fashion-mnist-{epochs}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    start = time.perf_counter()
    with training_threads():
        result = fit(config, run_dir, progress=False)
    minutes = (time.perf_counter() - start) / 60
    history = result["history"]
    final = history[-1]["test_acc"]
    target = TARGETS.get(epochs)
    lines = [f"# CNN on Fashion-MNIST, {epochs} epochs, the registered defaults", "",
             f"`minidl train cnn --dataset fashion-mnist --epochs {epochs}`: batch {config.batch_size}, "
             f"{config.optimizer} lr {config.lr}, weight decay {config.weight_decay}, label smoothing "
             f"{config.label_smoothing}, scheduler {config.scheduler}, seed {config.seed}; 60,000 training "
             f"and 10,000 test images. Reproduce with `python benchmarks/cnn_fashion_mnist.py {epochs}`.",
             f"Load average before the run: {load}; {minutes:.1f} minutes in all.", "",
             "| epoch | train loss | train accuracy | test accuracy | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['epoch']} | {r['train_loss']:.4f} | {r['train_acc']:.2%} | {r['test_acc']:.2%} | "
              f"{r['seconds']:.0f} |" for r in history]
    if target is not None:
        lines += ["", f"Final test accuracy {final:.2%}: the target of {target:.0%} is "
                  + ("met." if final >= target else "NOT met.")]
    out = ROOT / "docs" / "results" / f"cnn_fashion_mnist_{epochs}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit(__doc__)
    main(int(sys.argv[1]))
