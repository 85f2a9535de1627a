"""Training runs: the loop, the run directory it writes, its progress bar and plots.

    from minidl.training import make_config, fit, evaluate_run
    result = fit(make_config("mlp", epochs=5), "runs/my-mlp")
    evaluate_run("runs/my-mlp")          # same test accuracy, from the checkpoint

`minidl train` and `minidl eval` are thin wrappers around `fit` and `evaluate_run`.
"""
from .config import TrainConfig, make_config, make_optimizer, epoch_seed  # noqa: F401
from .run_directory import RunDirectory, default_run_dir  # noqa: F401
from .progress import EpochProgress  # noqa: F401
from .classifier import (  # noqa: F401
    TrainingInterrupted, fit, evaluate, evaluate_run, train_one_epoch, prepare_batch,
)
