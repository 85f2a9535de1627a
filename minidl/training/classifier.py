"""Training and evaluating an image classifier: `minidl train mlp|cnn|lenet|vit` and `minidl eval`.

ClassifierTask plugs into the shared Trainer (minidl.training.loop), which owns
the run directory, progress, Ctrl-C, time budget, divergence stop and best.npz.
Its step, for every mini-batch:

    logits = model(images)                       # (B, classes), model.train() mode
    loss = F.cross_entropy(logits, labels)       # mean over the batch
    optimizer.zero_grad(); loss.backward(); optimizer.step()

Evaluation runs the model in eval mode (dropout off, batch norm on its running
statistics) under `mdl.no_grad()` (no graph is recorded), over the test set in
its fixed order and fixed batches, so it gives the same numbers every time.

Images go through `prepare_batch` on their way in: the optional augmentation
(random shift, flips for clothes) on the raw [0, 1] pixels, then normalisation
with the dataset's training mean and std. best.npz follows the test accuracy.
"""
import numpy as np

import minidl as mdl
from .. import functional as F
from ..autograd.tensor import Tensor
from ..data import DataLoader, load_dataset, transforms
from ..threads import training_threads
from .config import TrainConfig, make_optimizer
from .loop import Task, Trainer, TrainingInterrupted  # noqa: F401  (TrainingInterrupted re-exported)
from .plots import save_run_plots
from .progress import EpochProgress
from .run_directory import BEST, CHECKPOINT, RunDirectory


def prepare_batch(images, dataset_name, augment=False, rng=None):
    """Raw pixels (B, C, H, W) in [0, 1] -> the model's input: optional
    augmentation, then normalisation with the dataset's statistics."""
    images = np.asarray(getattr(images, "data", images))          # (B, C, H, W)
    if augment:
        images = transforms.augment(images, dataset_name, rng if rng is not None else mdl.random.generator())
    if dataset_name in transforms.NORMALIZATION:
        images = transforms.normalize_dataset(images, dataset_name)
    return Tensor(images.astype(np.float32, copy=False))


def classifier_step(model, optimizer, images, labels, dataset_name, augment=False, update=None,
                    label_smoothing=0.0):
    """One optimisation step on a batch; returns (mean loss, number correct).
    `update(optimizer)` replaces optimizer.step() (the Trainer clips there)."""
    inputs = prepare_batch(images, dataset_name, augment)          # (B, C, H, W)
    logits = model(inputs)                                         # (B, classes)
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    optimizer.zero_grad()
    loss.backward()
    if update is None:
        optimizer.step()
    else:
        update(optimizer)
    correct = int(np.sum(np.argmax(logits.data, axis=1) == np.asarray(getattr(labels, "data", labels))))
    return loss.item(), correct


def train_one_epoch(model, loader, optimizer, dataset_name, augment=False, progress=None):
    """One pass over `loader` (without the Trainer: no run directory, no
    checks); returns the EpochProgress with loss/accuracy/throughput."""
    model.train()
    progress = progress or EpochProgress(len(loader), "train", enabled=False)
    with training_threads():               # one thread pool at a time (minidl/threads.py)
        for images, labels in loader:
            loss, correct = classifier_step(model, optimizer, images, labels, dataset_name, augment)
            progress.update(len(labels), loss, correct)
    return progress


def evaluate(model, dataset, dataset_name, batch_size=500):
    """Mean loss, accuracy and every prediction on `dataset`, in eval mode under no_grad."""
    model.eval()
    total_loss, predictions = 0.0, []
    with mdl.no_grad(), training_threads():
        for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            logits = model(prepare_batch(images, dataset_name))    # (B, classes)
            total_loss += float(F.cross_entropy(logits, labels).item()) * len(labels)
            predictions.append(np.argmax(logits.data, axis=1))
    predictions = np.concatenate(predictions)                      # (N,)
    correct = int(np.sum(predictions == dataset.labels))
    return dict(loss=total_loss / len(dataset), acc=correct / len(dataset), correct=correct,
                total=len(dataset), predictions=predictions)


def load_data(config):
    """(train, test) ArrayDatasets of config.dataset."""
    train = load_dataset(config.dataset, "train", root=config.data_root)
    test = load_dataset(config.dataset, "test", root=config.data_root)
    if train.images.shape[1:] != test.images.shape[1:]:      # else the first evaluation fails, an epoch later
        raise ValueError(f"the {config.dataset} training images are {train.images.shape[1:]} (C, H, W) but "
                         f"its test images are {test.images.shape[1:]}; both splits must have one size")
    return train, test


def new_model(config, train_set):
    """The model of `config`, initialised from `config.seed`."""
    from ..models import build_model

    mdl.manual_seed(config.seed)
    return build_model(config.model, train_set.images.shape[1:], len(train_set.classes))


class ClassifierTask(Task):
    """Image classification for the Trainer: cross-entropy steps, test accuracy as metric."""

    losses = ("loss",)
    metric, maximize = "test_acc", True

    def __init__(self, config):
        self.config = config
        self.train_set, self.test_set = load_data(config)
        self.model = new_model(config, self.train_set)
        self.optimizer = make_optimizer(config, self.model.parameters())

    def batches(self, epoch, seed):
        return DataLoader(self.train_set, batch_size=self.config.batch_size, shuffle=True, seed=seed)

    def train_step(self, batch):
        images, labels = batch
        loss, correct = classifier_step(self.model, self.optimizer, images, labels, self.config.dataset,
                                        self.config.augment, update=self.update,
                                        label_smoothing=self.config.label_smoothing)
        return dict(loss=loss, accuracy=correct / len(labels), size=len(labels))

    def evaluate(self, epoch):
        test = evaluate(self.model, self.test_set, self.config.dataset, self.config.eval_batch_size)
        return dict(test_loss=test["loss"], test_acc=test["acc"])

    def epoch_record(self, means, evaluation):
        return dict(train_loss=means["loss"], train_acc=means["accuracy"], **evaluation)

    def summary(self, record):
        return (f"{self.config.model} | {self.config.dataset} | epoch {record['epoch']}/{self.config.epochs} | "
                f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.2%} | "
                f"test loss {record['test_loss']:.4f} acc {record['test_acc']:.2%} | "
                f"{record['seconds']:.1f} s, {record['samples_per_s']:,.0f} samples/s")

    def finish(self, run, history):
        config = self.config
        final = evaluate(self.model, self.test_set, config.dataset, config.eval_batch_size)
        if self.plots:
            save_run_plots(run, self.model, history, self.test_set, final["predictions"], config.dataset)
        # resumed records come from metrics.json, where a figure may be missing (or null)
        scored = [r for r in history if r.get("test_acc") is not None]
        best = max(scored, key=lambda r: r["test_acc"]) if scored else None
        seconds = [r["seconds"] for r in history if r.get("seconds") is not None]
        self.log(f"{config.model} on {config.dataset}: test accuracy {final['acc']:.2%} "
                 f"({final['correct']}/{final['total']}) after {history[-1]['epoch'] if history else 0} "
                 f"epochs; {np.mean(seconds) if seconds else 0:.2f} s/epoch"
                 + (f"; best epoch {best['epoch']} ({best['test_acc']:.2%}, best.npz)" if best else "")
                 + f"; run directory {run.path}")
        return dict(final=final)


def fit(config, run_dir, resume=False, progress=True, log=print, plots=True, max_minutes=None):
    """Train `config` in `run_dir` with the shared Trainer (minidl.training.loop);
    with `resume`, continue from its checkpoint up to `config.epochs`.
    `plots=False` skips the final plots (tests that only need the numbers).

    Returns a dict: history (one record per epoch), final (the last test
    evaluation), model, run_dir, best_epoch, stopped. Ctrl-C raises
    TrainingInterrupted after saying how to resume; a diverging step (see
    minidl.training.loop) raises TrainingDiverged; the checkpoint of the last
    finished epoch stays valid.
    """
    task = ClassifierTask(config)
    task.plots, task.log = plots, log
    return Trainer(task, config, run_dir, resume=resume, progress=progress, log=log,
                   max_minutes=max_minutes).run()


def evaluate_run(run_dir, log=print, best=False):
    """Rebuild the model of `run_dir` from config.json + checkpoint.npz (best.npz
    with `best`) and evaluate it on the test set. Returns the evaluation dict
    plus `recorded_acc`, the test accuracy metrics.json holds for that epoch."""
    run = RunDirectory(run_dir)
    config = TrainConfig.from_dict(run.load_config())
    checkpoint = run.load_checkpoint(BEST if best else CHECKPOINT)
    train_set, test_set = load_data(config)
    model = new_model(config, train_set)
    model.load_state_dict(checkpoint["model"])
    result = evaluate(model, test_set, config.dataset, config.eval_batch_size)
    result.update(epoch=checkpoint["epoch"], config=config, recorded_acc=run.recorded(checkpoint["epoch"], "test_acc"))
    log(f"{config.model} on {config.dataset}, epoch {checkpoint['epoch']}{' (best.npz)' if best else ''}: test loss {result['loss']:.4f}, "
        f"accuracy {result['acc']:.2%} ({result['correct']}/{result['total']})")
    if result["recorded_acc"] is not None:
        same = result["recorded_acc"] == result["acc"]
        log(f"metrics.json recorded {result['recorded_acc']:.2%} for this epoch: "
            + ("reproduced exactly" if same else "DIFFERENT"))
    return result
