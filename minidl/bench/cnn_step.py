"""Benchmark suite: one training step of the Keras-example CNN (28x28 images,
batch 32, Adam) in minidl and in the same model written in PyTorch.

    minidl bench cnn_step                      # the table, in benchmarks/results/cnn_step.md
    python -m minidl.bench.cnn_step --quick    # batch 8 (smoke test)

A step is forward, cross-entropy, zero_grad, backward, Adam's step and
`loss.item()` on the next mini-batch of Fashion-MNIST (random 28x28 images
if it is not installed), the same batches in the same order on both sides.
The networks and the first-step check come from `minidl.bench.cnn_epoch`:
torch starts from minidl's initial weights, and `check_same_step` checks that
the first step's losses agree, so the two sides do the same work.

Each library runs at its defaults, in its own fresh process (the harness
builds a step only in the process that times it): PyTorch with its own
thread count (one per core), minidl with the thread policy `minidl train`
uses (minidl/threads.py). The table prints each process's thread counts.
Ratios are against torch (above 1: minidl is slower).

The "work" is the multiply-add flops of forward + backward (2x forward):
3 * 2 * batch * (multiply-adds of one image's forward pass).
"""
import itertools
import sys

from . import cnn_epoch
from .harness import BuiltOnFirstCall, Case, has_torch, step_suite_main
from ..threads import set_training_threads

STANDARD = [("28x28 B32 Adam (Keras-example CNN)", 32)]
QUICK = [("28x28 B8 Adam", 8)]
IMAGES = 4096            # a slice of the training set: enough distinct batches
LR = 2e-3


def forward_macs():
    """Multiply-adds of one 28x28 image through the CNN."""
    conv1 = 26 * 26 * 32 * 1 * 9           # 1 -> 32, 28 -> 26
    conv2 = 11 * 11 * 64 * 32 * 9          # after pooling 26 -> 13, 13 -> 11
    conv3 = 3 * 3 * 64 * 64 * 9            # after pooling 11 -> 5, 5 -> 3
    dense = 576 * 64 + 64 * 10
    return conv1 + conv2 + conv3 + dense


def _data(batch):
    images, labels, _ = cnn_epoch.load_images(limit=IMAGES)
    return images, labels, cnn_epoch.batch_order(len(images), batch, len(images) // batch)


def _counting(step_at):
    """A zero-argument step: step_at(0), step_at(1), ... on successive calls."""
    counter = itertools.count()
    return lambda: step_at(next(counter))


def minidl_as_trained(batch):
    """minidl's step with the threads `minidl train` uses, set for this process."""
    set_training_threads()
    images, labels, batches = _data(batch)
    _, step_at = cnn_epoch.minidl_trainer(images, labels, batches, LR)
    return _counting(step_at)


def torch_as_default(batch):
    """torch's step at its defaults, from minidl's initial weights."""
    images, labels, batches = _data(batch)
    model, _ = cnn_epoch.minidl_trainer(images, labels, batches, LR)   # builds weights only
    return _counting(cnn_epoch.torch_trainer(images, labels, batches, LR, model))


def check_same_step(quick=False):
    """The first step's losses of minidl and the torch twin agree. Needs torch."""
    for label, batch in (QUICK if quick else STANDARD):
        ours, theirs = minidl_as_trained(batch)(), torch_as_default(batch)()
        if abs(ours - theirs) > 1e-4 * max(1.0, abs(theirs)):
            raise AssertionError(f"cnn_step {label}: first loss minidl {ours} vs torch {theirs}")


def cases(quick=False):
    for label, batch in (QUICK if quick else STANDARD):
        implementations = {"minidl": BuiltOnFirstCall(lambda b=batch: minidl_as_trained(b), ("numba", "blas"))}
        if has_torch():
            implementations["torch"] = BuiltOnFirstCall(lambda b=batch: torch_as_default(b), ("torch",))
        yield Case("cnn train step", label, implementations, work=3 * 2 * batch * forward_macs(),
                   baseline="torch" if "torch" in implementations else "")


def main(argv):
    step_suite_main("cnn_step", check_same_step, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
