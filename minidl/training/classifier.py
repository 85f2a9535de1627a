"""Training and evaluating an image classifier: the loop behind `minidl train` and `minidl eval`.

One epoch of training, for every mini-batch:

    logits = model(images)                       # (B, classes), model.train() mode
    loss = F.cross_entropy(logits, labels)       # mean over the batch
    optimizer.zero_grad(); loss.backward(); optimizer.step()

Evaluation runs the model in eval mode (dropout off, batch norm on its running
statistics) under `mdl.no_grad()` (no graph is recorded), over the test set in
its fixed order and fixed batches, so it gives the same numbers every time.

Images go through `prepare_batch` on their way in: the optional augmentation
(random shift, flips for clothes) on the raw [0, 1] pixels, then normalisation
with the dataset's training mean and std.
"""
import time

import numpy as np

import minidl as mdl
from .. import functional as F
from ..autograd.tensor import Tensor
from ..data import DataLoader, load_dataset, transforms
from ..models import build_model
from .config import TrainConfig, epoch_seed, make_optimizer
from .plots import save_run_plots
from .progress import EpochProgress
from .run_directory import RunDirectory


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the checkpoint of the last finished epoch is kept."""

    def __init__(self, run_dir, epoch):
        super().__init__(f"training interrupted after epoch {epoch}; run directory {run_dir}")
        self.run_dir, self.epoch = run_dir, epoch


def prepare_batch(images, dataset_name, augment=False, rng=None):
    """Raw pixels (B, C, H, W) in [0, 1] -> the model's input: optional
    augmentation, then normalisation with the dataset's statistics."""
    images = np.asarray(getattr(images, "data", images))          # (B, C, H, W)
    if augment:
        images = transforms.augment(images, dataset_name, rng if rng is not None else mdl.random.generator())
    if dataset_name in transforms.NORMALIZATION:
        images = transforms.normalize_dataset(images, dataset_name)
    return Tensor(images.astype(np.float32, copy=False))


def train_one_epoch(model, loader, optimizer, dataset_name, augment=False, progress=None):
    """One pass over `loader`; returns the EpochProgress with loss/accuracy/throughput."""
    model.train()
    progress = progress or EpochProgress(len(loader), "train", enabled=False)
    for images, labels in loader:
        inputs = prepare_batch(images, dataset_name, augment)      # (B, C, H, W)
        logits = model(inputs)                                     # (B, classes)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        correct = int(np.sum(np.argmax(logits.data, axis=1) == labels.data))
        progress.update(len(labels), loss.item(), correct)
    return progress


def evaluate(model, dataset, dataset_name, batch_size=500):
    """Mean loss, accuracy and every prediction on `dataset`, in eval mode under no_grad."""
    model.eval()
    total_loss, predictions = 0.0, []
    with mdl.no_grad():
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
    return train, test


def new_model(config, train_set):
    """The model of `config`, initialised from `config.seed`."""
    mdl.manual_seed(config.seed)
    return build_model(config.model, train_set.images.shape[1:], len(train_set.classes))


def epoch_line(config, record):
    return (f"{config.model} | {config.dataset} | epoch {record['epoch']}/{config.epochs} | "
            f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.2%} | "
            f"test loss {record['test_loss']:.4f} acc {record['test_acc']:.2%} | "
            f"{record['seconds']:.1f} s, {record['samples_per_s']:,.0f} samples/s")


def fit(config, run_dir, resume=False, progress=True, log=print, plots=True):
    """Train `config` in `run_dir` (see minidl.training.run_directory); with
    `resume`, continue from its checkpoint up to `config.epochs`. `plots=False`
    skips the final plots (tests that only need the numbers).

    Returns a dict: history (one record per epoch), final (the last test
    evaluation), run_dir. Ctrl-C raises TrainingInterrupted after saying how
    to resume; the checkpoint of the last finished epoch stays valid.
    """
    run = RunDirectory(run_dir).create()
    train_set, test_set = load_data(config)
    model = new_model(config, train_set)
    optimizer = make_optimizer(config, model.parameters())
    done, history = 0, []
    if resume:
        done, history = run.resume(model, optimizer)
        log(f"resuming {run.path} from epoch {done} of {config.epochs}")
    run.save_config(config.to_dict())

    epoch = done
    try:
        for epoch in range(done + 1, config.epochs + 1):
            seed = epoch_seed(config.seed, epoch)
            mdl.manual_seed(seed)                          # dropout, augmentation
            loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, seed=seed)
            with EpochProgress(len(loader), f"epoch {epoch}/{config.epochs}", progress) as bar:
                train_one_epoch(model, loader, optimizer, config.dataset, config.augment, bar)
                seconds = bar.seconds
            test = evaluate(model, test_set, config.dataset, config.eval_batch_size)
            record = dict(epoch=epoch, train_loss=bar.loss, train_acc=bar.accuracy,
                          test_loss=test["loss"], test_acc=test["acc"],
                          seconds=seconds, samples_per_s=bar.seen / seconds)
            history.append(record)
            run.save_checkpoint(model, optimizer, epoch, config.to_dict())
            run.save_metrics(history)
            log(epoch_line(config, record))
    except KeyboardInterrupt:
        finished = run.load_checkpoint()["epoch"] if run.has_checkpoint() else 0
        log(f"\ninterrupted during epoch {epoch}: {run.path} keeps the checkpoint of epoch {finished}.")
        if finished:
            log(f"continue with:  minidl train {config.model} --resume {run.path}")
        raise TrainingInterrupted(run.path, finished) from None

    final = evaluate(model, test_set, config.dataset, config.eval_batch_size)
    if plots:
        save_run_plots(run, model, history, test_set, final["predictions"], config.dataset)
    log(f"{config.model} on {config.dataset}: test accuracy {final['acc']:.2%} "
        f"({final['correct']}/{final['total']}) after {config.epochs} epochs; "
        f"{np.mean([r['seconds'] for r in history]) if history else 0:.2f} s/epoch; run directory {run.path}")
    return dict(history=history, final=final, run_dir=run.path, model=model)


def evaluate_run(run_dir, log=print):
    """Rebuild the model of `run_dir` from config.json + checkpoint.npz and
    evaluate it on the test set. Returns the evaluation dict plus
    `recorded_acc`, the test accuracy metrics.json holds for that epoch."""
    run = RunDirectory(run_dir)
    config = TrainConfig.from_dict(run.load_config())
    checkpoint = run.load_checkpoint()
    train_set, test_set = load_data(config)
    model = new_model(config, train_set)
    model.load_state_dict(checkpoint["model"])
    result = evaluate(model, test_set, config.dataset, config.eval_batch_size)
    recorded = [r["test_acc"] for r in run.load_metrics() if r["epoch"] == checkpoint["epoch"]]
    result.update(epoch=checkpoint["epoch"], config=config, recorded_acc=recorded[0] if recorded else None)
    log(f"{config.model} on {config.dataset}, epoch {checkpoint['epoch']}: test loss {result['loss']:.4f}, "
        f"accuracy {result['acc']:.2%} ({result['correct']}/{result['total']})")
    if result["recorded_acc"] is not None:
        same = result["recorded_acc"] == result["acc"]
        log(f"metrics.json recorded {result['recorded_acc']:.2%} for this epoch: "
            + ("reproduced exactly" if same else "DIFFERENT"))
    return result
