"""The training package: run directories and checkpoints, the progress
accumulator, the classifier loop (modes, no_grad, determinism), resume after Ctrl-C."""
import json

import numpy as np
import pytest
import scipy.special

import minidl as mdl
from minidl import models, nn, optim
from minidl.data import ArrayDataset, DataLoader
from minidl.training import (EpochProgress, RunDirectory, TrainingInterrupted, default_run_dir,
                             epoch_seed, evaluate, fit, make_config, make_optimizer, train_one_epoch)
from minidl.training import classifier
from minidl.training.run_directory import array_to_text, flatten_state, text_to_array, unflatten_state
from training_helpers import interrupt_at_step


# ---- run directory ----------------------------------------------------------------
def test_text_survives_as_uint8_array():
    text = 'config {"lr": 0.001} \u00e9\u4e2d'
    array = text_to_array(text)
    assert array.dtype == np.uint8
    assert array_to_text(array) == text


def test_nested_state_round_trips_with_key_types_and_arrays():
    state = {"state": {0: {"step": 3, "exp_avg": np.arange(4.0)}, 1: {}},
             "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False, "name": None}]}
    layout, arrays = flatten_state(state, "opt")
    json.dumps(layout)                                      # layout must be plain JSON
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    back = unflatten_state(json.loads(json.dumps(layout)), arrays)
    assert list(back["state"]) == [0, 1]                    # int keys stay ints
    assert back["state"][0]["step"] == 3
    np.testing.assert_array_equal(back["state"][0]["exp_avg"], np.arange(4.0))
    assert back["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["param_groups"][0]["nesterov"] is False and back["param_groups"][0]["name"] is None


def test_flatten_state_refuses_objects_it_cannot_store():
    with pytest.raises(TypeError, match="object"):
        flatten_state({"x": object()}, "opt")


def _tiny_model_and_optimizer(seed=0):
    mdl.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    return model, optim.Adam(model.parameters(), lr=0.01)


def _step(model, optimizer, x, y):
    optimizer.zero_grad()
    mdl.functional.cross_entropy(model(mdl.tensor(x)), mdl.tensor(y)).backward()
    optimizer.step()


def test_checkpoint_restores_weights_optimizer_state_epoch_and_config(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 2, 2)).astype(np.float32), rng.integers(0, 3, 8)
    model, optimizer = _tiny_model_and_optimizer(0)
    for _ in range(3):
        _step(model, optimizer, x, y)
    run = RunDirectory(tmp_path / "run").create()
    run.save_checkpoint(model, optimizer, 7, {"model": "tiny", "lr": 0.01})

    restored, restored_opt = _tiny_model_and_optimizer(seed=1)    # different initial weights
    checkpoint = run.load_checkpoint()
    assert checkpoint["epoch"] == 7 and checkpoint["config"] == {"model": "tiny", "lr": 0.01}
    restored.load_state_dict(checkpoint["model"])
    restored_opt.load_state_dict(checkpoint["optimizer"])
    for (name, a), (_, b) in zip(model.state_dict().items(), restored.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # the same next step on both: only equal if Adam's moments and step count came back
    _step(model, optimizer, x, y)
    _step(restored, restored_opt, x, y)
    for a, b in zip(model.parameters(), restored.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_resume_returns_the_checkpoint_epoch_and_only_the_metrics_up_to_it(tmp_path):
    """metrics.json may hold an epoch the checkpoint does not (a run stopped between
    the two writes): resume keeps only the records of the epochs the weights saw."""
    model, optimizer = _tiny_model_and_optimizer(0)
    run = RunDirectory(tmp_path / "run").create()
    run.save_checkpoint(model, optimizer, 2, {"model": "tiny"})
    run.save_metrics([{"epoch": 1, "loss": 3.0}, {"epoch": 2, "loss": 2.0}, {"epoch": 3, "loss": 1.0}])
    done, records = run.resume(*_tiny_model_and_optimizer(1))
    assert done == 2 and records == [{"epoch": 1, "loss": 3.0}, {"epoch": 2, "loss": 2.0}]


def test_resume_refuses_a_checkpoint_with_another_number_of_schedulers(tmp_path):
    from minidl.optim.lr_scheduler import StepLR

    model, optimizer = _tiny_model_and_optimizer(0)
    run = RunDirectory(tmp_path / "run").create()
    run.save_checkpoint(model, optimizer, 1, {"model": "tiny"})              # no scheduler
    model, optimizer = _tiny_model_and_optimizer(0)
    with pytest.raises(ValueError, match="holds 0 learning-rate schedulers, this run has 1"):
        run.resume(model, optimizer, [StepLR(optimizer, step_size=2)])


def test_loading_a_missing_checkpoint_says_no_epoch_finished(tmp_path):
    with pytest.raises(FileNotFoundError, match="not finished an epoch"):
        RunDirectory(tmp_path).load_checkpoint()


def test_metrics_and_config_round_trip(tmp_path):
    run = RunDirectory(tmp_path / "r").create()
    records = [dict(epoch=1, train_loss=0.5, test_acc=0.9), dict(epoch=2, train_loss=0.25, test_acc=0.95)]
    run.save_metrics(records)
    run.save_config({"model": "mlp", "seed": 3})
    assert run.load_metrics() == records
    assert run.load_config() == {"model": "mlp", "seed": 3}
    assert RunDirectory(tmp_path / "empty").load_metrics() == []


def test_default_run_dir_names_model_dataset_and_is_unique(tmp_path):
    first = default_run_dir("mlp", "digits", root=tmp_path)
    assert first.name.startswith("mlp-digits-") and first.parent == tmp_path
    first.mkdir()
    assert default_run_dir("mlp", "digits", root=tmp_path) != first


# ---- config ---------------------------------------------------------------------------
def test_make_config_takes_registry_defaults_then_overrides():
    defaults = dict(models.model_entry("mlp").defaults)
    config = make_config("mlp", lr=0.5, epochs=None)
    assert config.lr == 0.5 and config.epochs == defaults["epochs"]
    with pytest.raises(ValueError, match="optimizer"):
        make_config("mlp", optimizer="rmsprop")
    with pytest.raises(ValueError, match="epochs"):
        make_config("mlp", epochs=0)


@pytest.mark.parametrize("name, cls", [("sgd", optim.SGD), ("adam", optim.Adam), ("adamw", optim.AdamW)])
def test_make_optimizer_builds_the_named_optimizer_at_the_given_lr(name, cls):
    model, _ = _tiny_model_and_optimizer()
    optimizer = make_optimizer(make_config("mlp", optimizer=name, lr=0.125), model.parameters())
    assert type(optimizer) is cls and optimizer.param_groups[0]["lr"] == 0.125


@pytest.mark.parametrize("name, weight_decay, expected", [("sgd", None, 0.0), ("adam", None, 0.0),
                                                          ("adamw", None, 1e-2), ("adamw", 0.0, 0.0),
                                                          ("sgd", 0.25, 0.25), ("adam", 0.5, 0.5)])
def test_make_optimizer_passes_weight_decay_and_the_sgd_momentum(name, weight_decay, expected):
    """weight_decay None means the optimizer's own default (AdamW's 0.01); SGD gets config.momentum."""
    model, _ = _tiny_model_and_optimizer()
    config = make_config("mlp", optimizer=name, weight_decay=weight_decay)
    group = make_optimizer(config, model.parameters()).param_groups[0]
    assert group["weight_decay"] == expected
    if name == "sgd":
        assert group["momentum"] == config.momentum == 0.9


def test_epoch_seeds_differ_between_epochs_and_runs_but_repeat():
    seeds = {epoch_seed(s, e) for s in range(3) for e in range(1, 4)}
    assert len(seeds) == 9
    assert epoch_seed(1, 2) == epoch_seed(1, 2)


# ---- progress --------------------------------------------------------------------------
def test_progress_weights_the_loss_by_batch_size():
    with EpochProgress(2, "test", enabled=False) as progress:
        progress.update(3, 1.0, 2)
        progress.update(1, 5.0, 1)
    assert progress.loss == pytest.approx((3 * 1.0 + 1 * 5.0) / 4)
    assert progress.accuracy == 0.75 and progress.seen == 4
    assert progress.samples_per_second > 0


# ---- the loop -------------------------------------------------------------------------
class Spy(nn.Module):
    """Records, at each forward, whether it was in training mode and grad mode."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, mdl.is_grad_enabled()))
        return self.fc(x.reshape(x.shape[0], -1))


def _tiny_dataset(n=20):
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.random((n, 1, 2, 2), dtype=np.float32), rng.integers(0, 3, n),
                        classes=["a", "b", "c"], name="tiny")


def test_training_runs_in_train_mode_and_evaluation_in_eval_mode_without_a_graph():
    model, data = Spy(), _tiny_dataset()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, DataLoader(data, batch_size=8), optimizer, "tiny")
    assert model.seen and all(mode == (True, True) for mode in model.seen)
    model.seen.clear()
    result = evaluate(model, data, "tiny", batch_size=8)
    assert model.seen and all(mode == (False, False) for mode in model.seen)
    assert result["total"] == 20 and result["predictions"].shape == (20,)
    assert result["correct"] == int(np.sum(result["predictions"] == data.labels))


def test_evaluate_is_repeatable_and_matches_a_direct_computation():
    mdl.manual_seed(0)
    model, data = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.5)), _tiny_dataset()
    first, second = evaluate(model, data, "tiny", 7), evaluate(model, data, "tiny", 7)
    np.testing.assert_array_equal(first["predictions"], second["predictions"])
    logits = data.images.reshape(20, 4) @ model[1].weight.data.T + model[1].bias.data   # dropout is off in eval
    np.testing.assert_array_equal(first["predictions"], np.argmax(logits, axis=1))
    # the loss is the mean over all 20 samples, although the batches hold 7, 7 and 6
    logits64 = logits.astype(np.float64)
    log_softmax = logits64 - scipy.special.logsumexp(logits64, axis=1, keepdims=True)
    expected_loss = -np.mean(log_softmax[np.arange(20), data.labels])
    assert first["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert first["correct"] == int(np.sum(np.argmax(logits, axis=1) == data.labels))
    assert first["acc"] == first["correct"] / 20


def test_the_classifier_step_counts_the_samples_it_got_right_before_the_update():
    mdl.manual_seed(3)
    model, data = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), _tiny_dataset(12)
    logits = data.images.reshape(12, 4) @ model[1].weight.data.T + model[1].bias.data
    expected = int(np.sum(np.argmax(logits, axis=1) == data.labels))
    loss, correct = classifier.classifier_step(model, optim.SGD(model.parameters(), lr=0.1),
                                               mdl.tensor(data.images), mdl.tensor(data.labels), "tiny")
    assert correct == expected
    log_softmax = logits.astype(np.float64) - scipy.special.logsumexp(logits.astype(np.float64), axis=1,
                                                                      keepdims=True)
    assert loss == pytest.approx(-np.mean(log_softmax[np.arange(12), data.labels]), rel=1e-5)


def test_same_seed_gives_the_same_run_bit_for_bit(tmp_path):
    config = make_config("mlp", epochs=2, seed=5)
    quiet = dict(progress=False, log=lambda *a: None, plots=False)
    a = fit(config, tmp_path / "a", **quiet)
    b = fit(config, tmp_path / "b", **quiet)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert [r[key] for r in a["history"]] == [r[key] for r in b["history"]]
    for (_, x), (_, y) in zip(a["model"].state_dict().items(), b["model"].state_dict().items()):
        np.testing.assert_array_equal(x, y)
    c = fit(make_config("mlp", epochs=1, seed=6), tmp_path / "c", **quiet)
    assert c["history"][0]["train_loss"] != a["history"][0]["train_loss"]


def test_ctrl_c_keeps_the_last_epoch_and_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    quiet = dict(progress=False, log=lambda *a: None, plots=False)
    config = make_config("mlp", epochs=3, seed=2)
    full = fit(config, tmp_path / "full", **quiet)

    steps = len(full["history"]) and full["history"][0]["steps"]
    interrupt_at_step(monkeypatch, 2 * steps + 5)                   # inside epoch 3
    messages = []
    with pytest.raises(TrainingInterrupted) as info:
        fit(config, tmp_path / "cut", progress=False, log=messages.append, plots=False)
    assert info.value.epoch == 2
    assert "--resume" in messages[-1]
    assert RunDirectory(tmp_path / "cut").load_checkpoint()["epoch"] == 2
    monkeypatch.undo()

    resumed = fit(config, tmp_path / "cut", resume=True, **quiet)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    assert [r["test_loss"] for r in resumed["history"]] == [r["test_loss"] for r in full["history"]]
    for (name, x), (_, y) in zip(full["model"].state_dict().items(), resumed["model"].state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_a_conv_first_model_gets_filter_and_feature_map_plots(tmp_path, monkeypatch):
    def tiny_cnn(input_shape, num_classes):
        channels, height, width = input_shape
        return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * height * width, num_classes))

    monkeypatch.setitem(models.REGISTRY, "tiny-cnn", models.ModelEntry("tiny-cnn", tiny_cnn))
    fit(make_config("tiny-cnn", epochs=1), tmp_path / "run", progress=False, log=lambda *a: None)
    for name in ("curves", "confusion_matrix", "misclassified", "filters", "feature_maps"):
        assert (tmp_path / "run" / f"{name}.png").stat().st_size > 1000, name


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_the_classifier_step_trains_on_the_configured_label_smoothing(smoothing):
    """The loss of ClassifierTask's step equals smoothed cross-entropy written out
    in NumPy: -(1 - e) log p[y] - e * mean over classes of log p."""
    config = make_config("mlp", label_smoothing=smoothing, batch_size=16)
    task = classifier.ClassifierTask(config)
    task.clip_grad_norm = None
    images, labels = next(iter(task.batches(1, seed=3)))
    with mdl.no_grad():
        logits = task.model(classifier.prepare_batch(images, "digits")).data.astype(np.float64)
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))                 # (B, classes)
    y = np.asarray(getattr(labels, "data", labels))
    expected = np.mean(-(1 - smoothing) * log_p[np.arange(len(y)), y] - smoothing * log_p.mean(axis=1))
    figures = task.train_step((images, labels))
    assert figures["loss"] == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_outside_0_to_1_is_refused():
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        make_config("mlp", label_smoothing=1.0)
