"""Choosing the CNN's training recipe on digits without looking at the test set.

    python benchmarks/cnn_digits_recipe.py validate [NAME ...]   # candidates on a validation split
    python benchmarks/cnn_digits_recipe.py test                  # the chosen defaults, test set, seeds 0-4

`validate` carves a stratified validation split (one fifth, 270 images) from
the 1347 TRAINING digits, trains every candidate recipe on the other 1077 at
seeds 0-2 and reports validation accuracies. `test` then runs the registered
defaults of `minidl train cnn` (the recipe chosen from the validation table)
on the real split at seeds 0-4 and reports the test accuracies. Tables go to
docs/results/cnn_digits_validation.md and docs/results/cnn_digits_test.md.
"""
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"

# name -> overrides of the registered defaults (make_config)
CANDIDATES = {
    "old": dict(epochs=15, lr=2e-3, weight_decay=0.05, label_smoothing=0.0, scheduler=None, augment=False),
    "smooth": dict(epochs=15, lr=2e-3, weight_decay=0.05, label_smoothing=0.1, scheduler=None, augment=False),
    "cosine": dict(epochs=15, lr=2e-3, weight_decay=0.05, label_smoothing=0.0, scheduler="cosine", augment=False),
    "smooth-cosine": dict(epochs=15, lr=2e-3, weight_decay=0.05, label_smoothing=0.1, scheduler="cosine",
                          augment=False),
    "smooth-onecycle": dict(epochs=15, lr=3e-3, weight_decay=0.05, label_smoothing=0.1, scheduler="onecycle",
                            augment=False),
    "shift-smooth-cosine-30": dict(epochs=30, lr=2e-3, weight_decay=0.05, label_smoothing=0.1,
                                   scheduler="cosine", augment=True),
    "smooth-cosine-25": dict(epochs=25, lr=2e-3, weight_decay=0.05, label_smoothing=0.1, scheduler="cosine",
                             augment=False),
}


def validation_split(train, fraction=0.2, seed=1234):
    """(fit, validation) ArrayDatasets: a stratified `fraction` of each class of `train`."""
    from minidl.data.dataset import ArrayDataset

    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(train.labels):
        rows = np.flatnonzero(train.labels == label)
        held.extend(rng.choice(rows, int(round(fraction * len(rows))), replace=False))
    held = np.sort(np.array(held))
    kept = np.setdiff1d(np.arange(len(train)), held)
    part = lambda rows: ArrayDataset(train.images[rows], train.labels[rows], train.classes, train.name)
    return part(kept), part(held)


def train_and_score(config, split=None):
    """Train `config` with the shared Trainer; with `split` = (fit, validation),
    train on fit and score on validation instead of train/test. Returns the
    last epoch's accuracy on the held-out set."""
    from minidl.training.classifier import ClassifierTask
    from minidl.training.loop import Trainer

    task = ClassifierTask(config)
    if split is not None:
        task.train_set, task.test_set = split
    task.plots, task.log = False, (lambda *a: None)
    with tempfile.TemporaryDirectory() as run_dir:
        result = Trainer(task, config, run_dir, progress=False, log=lambda *a: None).run()
    return result["history"][-1]["test_acc"]


def validate(names):
    from minidl.data import load_dataset
    from minidl.threads import training_threads
    from minidl.training import make_config

    split = validation_split(load_dataset("digits", "train"))
    lines = ["# CNN on digits: candidate recipes on a validation split of the training set", "",
             f"Validation: a stratified fifth of the 1347 training digits ({len(split[1])} images); "
             f"training on the other {len(split[0])}. Seeds 0-2. Load average before the run: "
             + ", ".join(f"{v:.2f}" for v in os.getloadavg()), "",
             "| recipe | overrides | seed 0 | seed 1 | seed 2 | mean | minutes |", "|---|---|---|---|---|---|---|"]
    for name in names:
        start = time.perf_counter()
        with training_threads():
            scores = [train_and_score(dataclasses.replace(make_config("cnn", seed=seed), **CANDIDATES[name]),
                                      split)
                      for seed in range(3)]
        row = (f"| {name} | {CANDIDATES[name]} | " + " | ".join(f"{s:.2%}" for s in scores)
               + f" | {np.mean(scores):.2%} | {(time.perf_counter() - start) / 60:.1f} |")
        print(row, flush=True)
        lines.append(row)
    out = RESULTS / "cnn_digits_validation.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def test():
    from minidl.threads import training_threads
    from minidl.training import make_config

    config = make_config("cnn")
    start = time.perf_counter()
    with training_threads():
        scores = [train_and_score(make_config("cnn", seed=seed)) for seed in range(5)]
    errors = [int(round((1 - s) * 450)) for s in scores]
    lines = ["# CNN on digits: the default recipe on the test set, seeds 0-4", "",
             f"`minidl train cnn` defaults: {config.epochs} epochs, batch {config.batch_size}, "
             f"{config.optimizer} lr {config.lr}, weight decay {config.weight_decay}, "
             f"label smoothing {config.label_smoothing}, scheduler {config.scheduler}, "
             f"augment {config.augment}. Test set: 450 digits. Load average before the run: "
             + ", ".join(f"{v:.2f}" for v in os.getloadavg()), "",
             "| seed | test accuracy | errors |", "|---|---|---|"]
    lines += [f"| {seed} | {s:.2%} | {e} |" for seed, (s, e) in enumerate(zip(scores, errors))]
    lines += ["", f"Median {np.median(scores):.2%}, minimum {min(scores):.2%}; "
              f"{(time.perf_counter() - start) / 5:.1f} s per run."]
    print("\n".join(lines))
    out = RESULTS / "cnn_digits_test.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) < 2 or sys.argv[1] not in ("validate", "test"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "validate":
        validate(sys.argv[2:] or list(CANDIDATES))
    else:
        test()
