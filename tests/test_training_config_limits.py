"""TrainConfig refuses every value a run cannot use, and accepts the edge values it can."""
import math

import pytest

from minidl.training.config import TrainConfig

REFUSED = [
    ("lr", 0.0), ("lr", -1e-3), ("lr", math.inf), ("lr", math.nan),
    ("momentum", -0.1), ("momentum", math.inf), ("momentum", math.nan),
    ("weight_decay", -1e-4), ("weight_decay", math.inf), ("weight_decay", math.nan),
    ("clip_grad_norm", 0.0), ("clip_grad_norm", -1.0), ("clip_grad_norm", math.inf),
    ("label_smoothing", -0.01), ("label_smoothing", 1.0), ("label_smoothing", 1.5),
    ("seed", -1), ("seed", 1.5), ("seed", True),
    ("epochs", 0), ("batch_size", 0), ("eval_batch_size", 0),
    ("optimizer", "adagrad"), ("scheduler", "sometimes"),
]

ACCEPTED = [
    ("lr", 1e-12), ("lr", 10.0), ("momentum", 0.0), ("momentum", 0.99),
    ("weight_decay", 0.0), ("weight_decay", None), ("clip_grad_norm", 1e-6), ("clip_grad_norm", None),
    ("label_smoothing", 0.0), ("label_smoothing", 0.6), ("label_smoothing", 0.999),
    ("seed", 0), ("epochs", 1), ("batch_size", 1), ("optimizer", "sgd"), ("optimizer", "adamw"),
]


@pytest.mark.parametrize("name, value", REFUSED)
def test_a_value_a_run_cannot_use_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=name):
        TrainConfig("cnn", **{name: value})


@pytest.mark.parametrize("name, value", ACCEPTED)
def test_edge_values_a_run_can_use_are_kept(name, value):
    config = TrainConfig("cnn", **{name: value})
    assert getattr(config, name) == value


@pytest.mark.parametrize("spelling", ["Fashion_MNIST", "FASHION-MNIST", "fashion_mnist"])
def test_a_dataset_name_is_kept_in_its_one_spelling(spelling):
    assert TrainConfig("cnn", dataset=spelling).dataset == "fashion-mnist"
