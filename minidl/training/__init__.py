"""Training runs: one shared loop (Trainer), the tasks it runs, the run directory it writes.

    from minidl.training import make_config, fit, evaluate_run
    result = fit(make_config("mlp", epochs=5), "runs/my-mlp")
    evaluate_run("runs/my-mlp")          # same test accuracy, from the checkpoint

`minidl train` and `minidl eval` are thin wrappers around the registry's
trainers (`fit`, `gpt.fit_gpt`, `gan.fit_gan`) and `evaluate_run`. Each
trainer is a Task (its step and its evaluation) run by `loop.Trainer`, which
owns the run directory, progress, Ctrl-C, time budget, divergence stop,
best checkpoint and schedules; see minidl/training/loop.py to add a task.
"""
from .. import models  # noqa: F401  (the registry imports the trainers below; load it first)
from .config import TrainConfig, make_config, make_optimizer, epoch_seed  # noqa: F401
from .run_directory import RunDirectory, default_run_dir  # noqa: F401
from .progress import EpochProgress  # noqa: F401
from .loop import Task, Trainer, TrainingDiverged, TrainingInterrupted  # noqa: F401
from .classifier import (  # noqa: F401
    ClassifierTask, fit, evaluate, evaluate_run, train_one_epoch, prepare_batch,
)
