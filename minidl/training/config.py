"""What a training run was asked to do: one dataclass, saved as config.json.

    config = make_config("mlp", dataset="digits", epochs=5)   # registry defaults + overrides
    optimizer = make_optimizer(config, model.parameters())

Every source of randomness is derived from `config.seed`, so the same config
gives the same run, bit for bit, on one machine:
- model initialisation: `mdl.manual_seed(seed)` just before the model is built;
- epoch e (1, 2, ...): the shuffling of the DataLoader and minidl's shared
  generator (dropout, augmentation) are seeded with `epoch_seed(seed, e)`.
Seeding each epoch afresh is what lets `--resume` continue a run exactly: the
epochs after the checkpoint see the same batches as in an uninterrupted run.
"""
import dataclasses
import math
import numbers
import os

import numpy as np

OPTIMIZERS = ("sgd", "adam", "adamw")
FALLBACK_DEFAULTS = dict(epochs=10, batch_size=64, optimizer="adam", lr=1e-3)


@dataclasses.dataclass
class TrainConfig:
    model: str
    dataset: str = "digits"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"        # sgd | adam | adamw
    momentum: float = 0.9          # used by sgd
    weight_decay: float = None     # None: the optimizer's default (0, or 0.01 for adamw)
    seed: int = 0
    augment: bool = False
    data_root: str = None          # where to look for datasets first (see minidl.data)
    eval_batch_size: int = 500     # fixed, so that `minidl eval` repeats the same sums
    kind: str = "classifier"
    scheduler: str = None          # None, or a name of minidl.optim.lr_scheduler.SCHEDULES
    clip_grad_norm: float = None   # clip the gradients' total norm to this before each step
    label_smoothing: float = 0.0   # classifiers: cross-entropy against (1 - e) one-hot + e / classes

    def __post_init__(self):
        self._check_types()
        from ..data.datasets import dataset_key

        # load_dataset reads "DIGITS" as "digits", but the normalisation statistics and
        # the augmentation are looked up by this name: keep it in its one spelling
        self.dataset = dataset_key(self.dataset)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train: unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"train: {name} must be a positive integer, got {getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"train: lr must be positive and finite, got {self.lr!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"train: seed must be a non-negative integer, got {self.seed!r}")
        if self.weight_decay is not None and not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"train: weight_decay must be >= 0 and finite, got {self.weight_decay!r}")
        if not (self.momentum >= 0 and math.isfinite(self.momentum)):
            raise ValueError(f"train: momentum must be >= 0 and finite, got {self.momentum!r}")
        from ..optim.lr_scheduler import SCHEDULES

        if self.scheduler is not None and self.scheduler not in SCHEDULES:
            raise ValueError(f"train: unknown scheduler {self.scheduler!r}; choose from {', '.join(SCHEDULES)}")
        if self.clip_grad_norm is not None and not (self.clip_grad_norm > 0 and math.isfinite(self.clip_grad_norm)):
            raise ValueError(f"train: clip_grad_norm must be positive and finite, got {self.clip_grad_norm!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train: label_smoothing must be in [0, 1), got {self.label_smoothing!r}")

    def _check_types(self):
        """Each field has its type (a hand-edited config.json may not): a ValueError
        naming the field, the value and what was expected, before any use."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.name in OPTIONAL:
                continue
            expected = FIELD_TYPES[field.name]
            if expected is bool:
                fits = isinstance(value, bool)
            elif expected is int:
                fits = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            elif expected is float:
                fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
            elif field.name == "data_root":
                fits = isinstance(value, (str, os.PathLike))
            else:
                fits = isinstance(value, str)
            if not fits:
                text = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[expected]
                also = " or null" if field.name in OPTIONAL else ""
                raise ValueError(f"train: {field.name} must be {text}{also}, got {value!r}")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


FIELD_TYPES = dict(model=str, dataset=str, epochs=int, batch_size=int, lr=float, optimizer=str,
                   momentum=float, weight_decay=float, seed=int, augment=bool, data_root=str,
                   eval_batch_size=int, kind=str, scheduler=str, clip_grad_norm=float,
                   label_smoothing=float)
OPTIONAL = ("weight_decay", "data_root", "scheduler", "clip_grad_norm")   # may be None


def make_config(model, **overrides):
    """The model's registered training defaults, then `overrides` (None = keep the default)."""
    from ..models import model_entry

    entry = model_entry(model)
    values = dict(FALLBACK_DEFAULTS)
    values.update(dict(entry.defaults))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(model=model, kind=entry.kind, **values)


def make_optimizer(config, params):
    """optim.SGD (with config.momentum), Adam or AdamW at config.lr."""
    from .. import optim

    params = list(params)
    decay = config.weight_decay
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=decay or 0.0)
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr, weight_decay=decay or 0.0)
    return optim.AdamW(params, lr=config.lr, weight_decay=1e-2 if decay is None else decay)


def epoch_seed(seed, epoch):
    """A seed for epoch `epoch` of a run seeded `seed` (independent streams per epoch)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])
