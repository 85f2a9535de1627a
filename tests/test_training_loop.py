"""The shared Trainer (minidl.training.loop): a diverging run stops at the step
with a clear message and keeps the last good checkpoint; a time budget stops
like Ctrl-C and resumes exactly; best.npz holds the best epoch; the progress
bar shows the run's ETA; bad run directories give one-line errors."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl import cli
from minidl.training import (RunDirectory, Task, Trainer, TrainingDiverged, evaluate_run, fit,
                             make_config)
from minidl.training import classifier, loop
from minidl.training.loop import RunClock, StepBatches, format_duration, non_finite_weights
from training_helpers import seconds_per_step

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(progress=False, log=lambda *a: None, plots=False)
STEPS = 43                       # batches of 32 in an epoch of the 1347 bundled training digits


def all_finite(checkpoint):
    return all(np.all(np.isfinite(v)) for v in checkpoint["model"].values())


# ---- divergence ----------------------------------------------------------------------
def test_cli_stops_a_diverging_run_at_the_step_with_epoch_step_and_learning_rate(tmp_path, capsys):
    """SGD at lr 1e6: the loss goes 2.37 -> 2.35e11 at step 2 and stays finite for
    the whole epoch; the blow-up rule stops the run there, before any checkpoint."""
    run = tmp_path / "r"
    code = cli.main(["train", "mlp", "--lr", "1e6", "--optimizer", "sgd", "--epochs", "3",
                     "--out", str(run), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    match = re.search(r"diverged at epoch 1, step (\d+) of 43: the loss blew up to (\S+), more than "
                      r"10000 times its first value", err)
    assert match, err
    assert int(match.group(1)) <= 3 and float(match.group(2).rstrip(",")) > 1e4
    assert "learning rate 1e+06" in err and "smaller learning rate" in err and "--lr 1e+05" in err
    assert "no checkpoint was written" in err
    assert not RunDirectory(run).has_checkpoint() and not (run / "best.npz").exists()


def test_divergence_under_a_warmup_schedule_suggests_a_tenth_of_the_asked_rate(tmp_path, capsys):
    """Warmup starts at lr / 10, so the message's current rate (1e+05) differs
    from the asked 1e6; the suggestion divides the asked rate, not the current
    one (which would suggest 1e+04, or inf / 10 for a schedule that overflowed)."""
    run = tmp_path / "r"
    code = cli.main(["train", "mlp", "--lr", "1e6", "--optimizer", "sgd", "--scheduler", "warmup",
                     "--epochs", "2", "--out", str(run), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "diverged at epoch 1" in err, err
    assert re.search(r"learning rate 1\.\d*e\+05", err) or "learning rate 1e+05" in err, err
    assert err.endswith("e.g. --lr 1e+05"), err


def test_cli_divergence_after_a_good_epoch_leaves_its_checkpoint_files_untouched(tmp_path, monkeypatch,
                                                                                 capsys):
    """Fault injection through the command line: the learning rate jumps to 1e6
    after epoch 1; exit code 1, and checkpoint.npz / best.npz / metrics.json are
    byte for byte those of epoch 1."""
    real = classifier.ClassifierTask.evaluate
    def evaluate_then_raise_lr(self, epoch):
        figures = real(self, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = 1e6
        return figures

    real_batches = classifier.ClassifierTask.batches
    kept = {}

    def batches_remembering_epoch_1_files(self, epoch, seed):
        if epoch == 2:                                   # epoch 1 is saved; epoch 2 is about to start
            kept.update({name: (run / name).read_bytes()
                         for name in ("checkpoint.npz", "best.npz", "metrics.json")})
        return real_batches(self, epoch, seed)

    monkeypatch.setattr(classifier.ClassifierTask, "evaluate", evaluate_then_raise_lr)
    monkeypatch.setattr(classifier.ClassifierTask, "batches", batches_remembering_epoch_1_files)
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "3",
                     "--out", str(run), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(r"diverged at epoch 2, step \d+ of 43: the loss (blew up|is (nan|inf))", err), err
    assert "keeps the checkpoint of epoch 1" in err and "--lr 0.005" in err   # a tenth of the --lr asked for
    assert sorted(kept) == ["best.npz", "checkpoint.npz", "metrics.json"]
    for name, before in kept.items():
        assert (run / name).read_bytes() == before, name
    directory = RunDirectory(run)
    for name in ("checkpoint.npz", "best.npz"):
        checkpoint = directory.load_checkpoint(name)
        assert checkpoint["epoch"] == 1 and all_finite(checkpoint), name
    assert [r["epoch"] for r in directory.load_metrics()] == [1]
    # and `minidl eval` reproduces epoch 1's recorded accuracy from what was kept
    monkeypatch.undo()
    assert cli.main(["eval", str(run)]) == 0
    assert "reproduced exactly" in capsys.readouterr().out


def test_cli_divergence_prints_no_runtime_warnings_in_a_real_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "minidl.cli", "train", "mlp", "--lr", "1e6",
                             "--optimizer", "sgd", "--out", str(tmp_path / "r"), "--no-progress"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr
    assert "diverged at epoch" in result.stderr


def test_a_run_that_diverges_in_epoch_2_keeps_the_finite_checkpoint_of_epoch_1(tmp_path, monkeypatch):
    """Raise the learning rate to 1e6 after epoch 1's evaluation (fault injection):
    epoch 2 blows up, and checkpoint.npz and best.npz still hold epoch 1's weights."""
    real = classifier.ClassifierTask.evaluate

    def evaluate_then_raise_lr(self, epoch):
        figures = real(self, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = 1e6
        return figures

    monkeypatch.setattr(classifier.ClassifierTask, "evaluate", evaluate_then_raise_lr)
    config = make_config("mlp", epochs=3, optimizer="sgd", lr=0.05)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step \d+ of 43: the loss (blew up|is (nan|inf))") as info:
        fit(config, tmp_path / "r", **QUIET)
    assert "keeps the checkpoint of epoch 1" in str(info.value)
    run = RunDirectory(tmp_path / "r")
    for name in ("checkpoint.npz", "best.npz"):
        checkpoint = run.load_checkpoint(name)
        assert checkpoint["epoch"] == 1 and all_finite(checkpoint), name
    assert [r["epoch"] for r in run.load_metrics()] == [1]


def test_weights_that_are_not_finite_are_never_checkpointed(tmp_path, monkeypatch):
    """A finite loss but a NaN weight at the end of epoch 2: the run stops naming
    the weight; the checkpoint of epoch 1 stays."""
    real = classifier.ClassifierTask.evaluate

    def poison_in_epoch_2(self, epoch):
        if epoch == 2:
            next(iter(self.model.parameters())).data.flat[0] = np.nan
        return real(self, epoch)

    monkeypatch.setattr(classifier.ClassifierTask, "evaluate", poison_in_epoch_2)
    config = make_config("mlp", epochs=3)
    with pytest.raises(TrainingDiverged, match="weight") as info:
        fit(config, tmp_path / "r", **QUIET)
    assert "epoch 2" in str(info.value)
    checkpoint = RunDirectory(tmp_path / "r").load_checkpoint()
    assert checkpoint["epoch"] == 1 and all_finite(checkpoint)


@pytest.mark.parametrize("values, found", [([np.inf, -np.inf], "bad"), ([np.nan, 1.0], "bad"),
                                           ([3e38, 3e38], None)])        # the sum overflows, the values are finite
def test_first_non_finite_finds_its_array_without_a_runtime_warning(values, found):
    """SGD at --lr 1e308 made weights of +inf and -inf; their sum printed
    "RuntimeWarning: invalid value encountered in reduce" above the divergence line."""
    import warnings

    arrays = [("fine", np.ones(3, np.float32)), ("bad", np.array(values, np.float32))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loop.first_non_finite(arrays) == found


def test_non_finite_weights_names_parameters_and_buffers():
    from minidl import nn

    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    assert non_finite_weights(model) == []
    model[0].bias.data[1] = np.inf
    model[1].running_var.data[0] = np.nan
    assert non_finite_weights(model) == ["0.bias", "1.running_var"]


# ---- time budget -----------------------------------------------------------------------
def test_time_budget_inside_the_first_epoch_keeps_nothing_and_says_so(tmp_path, monkeypatch):
    seconds_per_step(monkeypatch, 1.0)                         # 43 s per epoch
    messages = []
    result = fit(make_config("mlp", epochs=3), tmp_path / "r", progress=False, log=messages.append,
                 plots=False, max_minutes=0.5)                 # 30 s: runs out in epoch 1
    assert result["stopped"] == "time budget" and result["history"] == []
    assert messages[-1] == (f"time budget of 0.5 minutes reached during epoch 1: no epoch was finished, "
                            f"so {tmp_path / 'r'} holds no checkpoint.")   # not "keeps the checkpoint of epoch 0"
    assert not RunDirectory(tmp_path / "r").has_checkpoint()


def test_time_budget_stops_like_ctrl_c_and_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    config = make_config("mlp", epochs=3, seed=4)
    full = fit(config, tmp_path / "full", **QUIET)

    seconds_per_step(monkeypatch, 1.0)
    messages = []
    # 100 s: epochs 1 and 2 take 86 s; epoch 3 would take 43 s more, so it is not started
    stopped = fit(config, tmp_path / "cut", progress=False, log=messages.append, plots=False,
                  max_minutes=100 / 60)
    assert stopped["stopped"] == "time budget"
    assert [r["epoch"] for r in stopped["history"]] == [1, 2]
    stop = next(m for m in messages if "time budget" in m)
    assert "epoch 3 was not started" in stop and f"minidl train mlp --resume {tmp_path / 'cut'}" in stop
    assert RunDirectory(tmp_path / "cut").load_checkpoint()["epoch"] == 2

    monkeypatch.undo()
    resumed = fit(config, tmp_path / "cut", resume=True, **QUIET)
    assert [r["test_loss"] for r in resumed["history"]] == [r["test_loss"] for r in full["history"]]
    for (name, a), (_, b) in zip(full["model"].state_dict().items(), resumed["model"].state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("file", ["best.npz", "metrics.json", "checkpoint.npz"])
def test_ctrl_c_while_an_epoch_is_saved_loses_nothing_on_resume(tmp_path, monkeypatch, file):
    """Ctrl-C while epoch 2's files are written: the resumed run ends with every
    epoch's record, the weights and best.npz of an uninterrupted run. (Written
    checkpoint first, an interrupt during best.npz or metrics.json left a
    checkpoint of epoch 2 beside the records of epoch 1: epoch 2's record was lost.)"""
    config = make_config("mlp", epochs=3, seed=4)
    full = fit(config, tmp_path / "full", **QUIET)
    hit = []
    save_checkpoint, save_metrics = RunDirectory.save_checkpoint, RunDirectory.save_metrics

    def checkpoint_or_ctrl_c(self, model, optimizer, epoch, config, schedulers=(), name="checkpoint.npz"):
        if (name, epoch) == (file, 2):
            hit.append(name)
            raise KeyboardInterrupt
        return save_checkpoint(self, model, optimizer, epoch, config, schedulers, name=name)

    def metrics_or_ctrl_c(self, epochs):
        if (file, epochs[-1]["epoch"]) == ("metrics.json", 2):
            hit.append(file)
            raise KeyboardInterrupt
        return save_metrics(self, epochs)

    monkeypatch.setattr(RunDirectory, "save_checkpoint", checkpoint_or_ctrl_c)
    monkeypatch.setattr(RunDirectory, "save_metrics", metrics_or_ctrl_c)
    with pytest.raises(loop.TrainingInterrupted):
        fit(config, tmp_path / "cut", **QUIET)
    assert hit == [file]
    monkeypatch.undo()

    resumed = fit(config, tmp_path / "cut", resume=True, **QUIET)
    records = RunDirectory(tmp_path / "cut").load_metrics()
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["test_loss"] for r in records] == [r["test_loss"] for r in full["history"]]
    for (name, a), (_, b) in zip(full["model"].state_dict().items(), resumed["model"].state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert (RunDirectory(tmp_path / "cut").load_checkpoint("best.npz")["epoch"]
            == RunDirectory(tmp_path / "full").load_checkpoint("best.npz")["epoch"])


def test_ctrl_c_while_metrics_json_is_replaced_keeps_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    """The .partial file written before the rename was left in the run directory."""
    from minidl.training import run_directory

    run = RunDirectory(tmp_path / "r").create()
    run.save_metrics([{"epoch": 1}])

    def ctrl_c(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_directory.os, "replace", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run.save_metrics([{"epoch": 1}, {"epoch": 2}])
    monkeypatch.undo()
    assert sorted(p.name for p in run.path.iterdir()) == ["metrics.json"]
    assert run.load_metrics() == [{"epoch": 1}]


def test_time_budget_inside_a_later_epoch_drops_it_and_restores_the_kept_weights(tmp_path, monkeypatch):
    """1 s per step in epoch 1, then 2 s: epoch 2 starts (43 s < 57 s left) but the
    100 s run out inside it; the result's model is the checkpoint's (epoch 1)."""
    now = seconds_per_step(monkeypatch, lambda step: 1.0 if step <= STEPS else 2.0)
    messages = []
    result = fit(make_config("mlp", epochs=3, seed=4), tmp_path / "mid", progress=False,
                 log=messages.append, plots=False, max_minutes=100 / 60)
    assert result["stopped"] == "time budget" and 100 < now[0] < STEPS + 2 * STEPS
    assert any("reached during epoch 2" in m for m in messages)
    checkpoint = RunDirectory(tmp_path / "mid").load_checkpoint()
    assert checkpoint["epoch"] == 1
    for name, value in result["model"].state_dict().items():
        np.testing.assert_array_equal(value, checkpoint["model"][name], err_msg=name)
    assert result["final"]["acc"] == result["history"][0]["test_acc"]


def test_cli_max_minutes_exits_0_with_the_resume_command(tmp_path, monkeypatch, capsys):
    seconds_per_step(monkeypatch, 1.0)
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "4", "--max-minutes", "1.5", "--out", str(run),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "time budget of 1.5 minutes" in out and "epoch 3 was not started" in out
    assert f"minidl train mlp --resume {run}" in out
    assert RunDirectory(run).load_checkpoint()["epoch"] == 2
    assert (run / "curves.png").is_file()                      # the plots of the kept epochs


def test_max_minutes_must_be_positive(tmp_path, capsys):
    assert cli.main(["train", "mlp", "--max-minutes", "0", "--out", str(tmp_path / "r")]) == 1
    assert "max_minutes must be positive" in capsys.readouterr().err


# ---- best checkpoint ---------------------------------------------------------------------
def test_best_npz_holds_the_epoch_with_the_best_test_accuracy(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "4", "--lr", "0.03", "--out", str(run), "--no-progress"]) == 0
    history = RunDirectory(run).load_metrics()
    accuracies = [r["test_acc"] for r in history]
    best_epoch = history[int(np.argmax(accuracies))]["epoch"]
    best = RunDirectory(run).load_checkpoint("best.npz")
    last = RunDirectory(run).load_checkpoint()
    assert best["epoch"] == best_epoch and last["epoch"] == 4
    capsys.readouterr()
    assert cli.main(["eval", str(run), "--best"]) == 0               # reproduces that epoch's figure
    out = capsys.readouterr().out
    assert f"epoch {best_epoch} (best.npz)" in out and "reproduced exactly" in out
    assert evaluate_run(run, log=lambda *a: None, best=True)["acc"] == max(accuracies)


@pytest.mark.parametrize("accuracies, best_epoch", [([0.5, 0.9, 0.7], 2), ([0.5, 0.9, 0.9], 2),
                                                    ([0.9, 0.5, 0.9], 1)])
def test_best_npz_is_only_replaced_by_a_better_epoch(tmp_path, monkeypatch, accuracies, best_epoch):
    """Injected test accuracies: best.npz keeps the first epoch that reached the
    best one (a later tie does not replace it)."""
    figures = iter(accuracies)
    real = classifier.ClassifierTask.evaluate

    def scripted(self, epoch):
        return dict(real(self, epoch), test_acc=next(figures))

    monkeypatch.setattr(classifier.ClassifierTask, "evaluate", scripted)
    result = fit(make_config("mlp", epochs=3), tmp_path / "r", **QUIET)
    assert result["best_epoch"] == best_epoch
    assert RunDirectory(tmp_path / "r").load_checkpoint("best.npz")["epoch"] == best_epoch


def test_eval_best_of_a_run_without_best_npz_fails_in_one_line(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    (run / "best.npz").unlink()
    capsys.readouterr()
    assert cli.main(["eval", str(run), "--best"]) == 1
    assert "no best checkpoint" in capsys.readouterr().err


# ---- progress and ETA --------------------------------------------------------------------
def test_format_duration():
    assert format_duration(12) == "0:12"
    assert format_duration(754) == "12:34"
    assert format_duration(4000) == "1:06:40"


def test_run_clock_extrapolates_the_measured_step_rate_over_all_remaining_steps(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(loop, "clock", lambda: now[0])
    eta = RunClock(steps_per_epoch=10, epochs_left=3)          # 30 steps to do
    assert eta.eta_seconds() is None
    now[0] += 60.0                                             # the first step compiles: 60 s
    eta.step()
    assert eta.eta_seconds() is None                           # one step: no rate yet
    for _ in range(4):
        now[0] += 2.0
        eta.step()
    assert eta.eta_seconds() == pytest.approx(25 * 2.0)        # 25 steps left at 2 s, the first step not counted
    now[0] += 5.0                                              # a slow step counts from the second on
    eta.step()
    assert eta.eta_seconds() == pytest.approx(24 * (13.0 / 5))


def test_the_progress_bar_shows_the_run_eta(tmp_path, capsys):
    fit(make_config("mlp", epochs=1), tmp_path / "r", progress=True, log=lambda *a: None, plots=False)
    err = capsys.readouterr().err
    assert "ETA=" in err and "samples_per_s=" in err and "loss=" in err


# ---- run directories and paths -----------------------------------------------------------
def one_line_error(capsys):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_out_that_is_an_existing_file_is_one_line(tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(existing), "--no-progress"]) == 1
    assert "is an existing file" in one_line_error(capsys)
    assert existing.read_text() == "mine"
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(existing / "run"), "--no-progress"]) == 1
    assert "cannot write the run directory" in one_line_error(capsys)


def test_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    if os.geteuid() == 0:
        target = Path("/sys/kernel")                             # read-only even for root
    else:
        target = tmp_path / "locked"
        target.mkdir()
        target.chmod(0o500)
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(target), "--no-progress"]) == 1
    assert "cannot write the run directory" in one_line_error(capsys)


def test_out_that_holds_another_run_is_refused_without_resume(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    before = (run / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert cli.main(["train", "mlp", "--epochs", "1", "--seed", "9", "--out", str(run), "--no-progress"]) == 1
    assert "already holds a run" in one_line_error(capsys)
    assert (run / "checkpoint.npz").read_bytes() == before


@pytest.mark.parametrize("problem", ["missing", "file", "bad-json", "no-model", "truncated-checkpoint"])
def test_eval_sample_and_resume_with_bad_paths_fail_in_one_line(tmp_path, capsys, problem):
    run = tmp_path / "run"
    if problem == "file":
        run.write_text("x")
    elif problem in ("bad-json", "no-model"):
        run.mkdir()
        (run / "config.json").write_text("{not json" if problem == "bad-json" else json.dumps({"epochs": 2}))
    elif problem == "truncated-checkpoint":
        assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
        data = (run / "checkpoint.npz").read_bytes()
        (run / "checkpoint.npz").write_bytes(data[: len(data) // 2])
        capsys.readouterr()
    for command in (["eval", str(run)], ["sample", str(run)],
                    ["train", "mlp", "--resume", str(run), "--no-progress"]):
        if problem == "truncated-checkpoint" and command[0] == "sample":
            continue                                               # a classifier: sample says so (exit 2)
        assert cli.main(command) == 1, (problem, command)
        one_line_error(capsys)


# ---- the skeleton works for any task --------------------------------------------------------
class Quadratic(Task):
    """Minimise (w - 3)^2 with SGD: a task written only with the plug-in points.
    Each step multiplies the distance |w - 3| by (1 - 2 lr)."""

    metric, maximize = "distance", False

    def __init__(self, config):
        from minidl import nn, optim
        import minidl as mdl

        self.config = config
        mdl.manual_seed(config.seed)
        self.model = nn.Linear(1, 1, bias=False)
        self.optimizer = optim.SGD(self.model.parameters(), lr=config.lr)

    def batches(self, epoch, seed):
        return StepBatches(5, lambda: None)

    def train_step(self, batch):
        w = self.model.weight
        loss = ((w - 3.0) * (w - 3.0)).sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.update(self.optimizer)
        return dict(loss=loss.item())

    def evaluate(self, epoch):
        return dict(distance=float(abs(self.model.weight.data[0, 0] - 3.0)))


def test_a_new_task_gets_checkpoints_best_npz_and_resume_from_the_trainer(tmp_path):
    config = make_config("mlp", epochs=3, lr=0.05)
    result = Trainer(Quadratic(config), config, tmp_path / "q", progress=False, log=lambda *a: None).run()
    distances = [r["distance"] for r in result["history"]]
    assert distances == sorted(distances, reverse=True) and distances[-1] < 0.5 * distances[0]
    assert [r["steps"] for r in result["history"]] == [5, 5, 5]
    assert RunDirectory(tmp_path / "q").load_checkpoint("best.npz")["epoch"] == 3
    more = make_config("mlp", epochs=4, lr=0.05)
    resumed = Trainer(Quadratic(more), more, tmp_path / "q", resume=True, progress=False,
                      log=lambda *a: None).run()
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3, 4]
    assert math.isclose(resumed["history"][-1]["distance"], distances[-1] * 0.9 ** 5, rel_tol=1e-3)


class SizedQuadratic(Quadratic):
    """Quadratic whose 5 steps report batches of 1, 2, 3, 4 and 5 samples and a
    step figure equal to the step number, and which records the seed of each epoch."""

    def __init__(self, config):
        super().__init__(config)
        self.seeds, self.step_number = {}, 0

    def batches(self, epoch, seed):
        self.seeds[epoch] = seed                 # (the Trainer also asks for epoch 1's length first)
        self.step_number = 0
        return StepBatches(5, lambda: None)

    def train_step(self, batch):
        figures = super().train_step(batch)
        self.step_number += 1
        return dict(figures, step_number=float(self.step_number), size=self.step_number)


def test_epoch_means_weight_each_step_by_its_batch_size_and_each_epoch_has_its_own_seed(tmp_path):
    from minidl.training.config import epoch_seed

    config = make_config("mlp", epochs=3, lr=0.05, seed=4)
    task = SizedQuadratic(config)
    result = Trainer(task, config, tmp_path / "q", progress=False, log=lambda *a: None).run()
    for record in result["history"]:
        # sum of k * k over k = 1..5 divided by the 15 samples (not by the 5 steps)
        assert record["step_number"] == pytest.approx(55 / 15, rel=1e-12)
        assert record["steps"] == 5
    assert task.seeds == {epoch: epoch_seed(4, epoch) for epoch in (1, 2, 3)}
    assert len(set(task.seeds.values())) == 3


class PoisonedQuadratic(Quadratic):
    """Quadratic with a fault planted at step `at` of epoch 1: a NaN gradient, an
    infinite weight after the update, or a loss multiplied by `scale`."""

    def __init__(self, config, fault, at=3, scale=1.0):
        super().__init__(config)
        self.fault, self.at, self.scale, self.step = fault, at, scale, 0

    def train_step(self, batch):
        self.step += 1
        figures = super().train_step(batch)
        if self.step == self.at:
            if self.fault == "gradient":
                self.model.weight.grad[...] = np.nan
            elif self.fault == "weight":
                self.model.weight.data[...] = np.inf
            elif self.fault == "loss":
                figures["loss"] *= self.scale
        return figures


@pytest.mark.parametrize("fault, message", [
    ("gradient", r"epoch 1, step 3 of 5: the gradient of weight is not finite"),
    ("weight", r"epoch 1, step 3 of 5: weight is not finite after the update"),
])
def test_non_finite_gradients_and_weights_stop_the_run_at_their_step(tmp_path, fault, message):
    config = make_config("mlp", epochs=2, lr=0.05)
    trainer = Trainer(PoisonedQuadratic(config, fault), config, tmp_path / "q", progress=False,
                      log=lambda *a: None)
    with pytest.raises(TrainingDiverged, match=message) as info:
        trainer.run()
    assert info.value.epoch == 1 and info.value.step == 3
    assert "learning rate 0.05" in str(info.value) and "--lr 0.005" in str(info.value)
    assert not RunDirectory(tmp_path / "q").has_checkpoint()


def test_a_finite_loss_that_blows_up_stops_the_run_and_a_smaller_jump_does_not(tmp_path):
    """The first loss of Quadratic is (w0 - 3)^2 ~ 9; x 1e5 at step 3 is past the
    rule's 10,000 x max(1, first loss); x 1000 is not (and the run finishes)."""
    config = make_config("mlp", epochs=1, lr=0.05)
    task = PoisonedQuadratic(config, "loss", scale=1e5)
    with pytest.raises(TrainingDiverged, match=r"step 3 of 5: the loss blew up to .* more than 10000 "
                                               r"times its first value"):
        Trainer(task, config, tmp_path / "a", progress=False, log=lambda *a: None).run()
    task = PoisonedQuadratic(config, "loss", scale=1e3)
    result = Trainer(task, config, tmp_path / "b", progress=False, log=lambda *a: None).run()
    assert [r["epoch"] for r in result["history"]] == [1]
    task = PoisonedQuadratic(config, "loss", scale=1e5)
    task.blowup_factor = None                                   # a task may turn the rule off
    result = Trainer(task, config, tmp_path / "c", progress=False, log=lambda *a: None).run()
    assert [r["epoch"] for r in result["history"]] == [1]


def test_the_blowup_rule_compares_with_at_least_1_so_a_small_first_loss_is_no_trap(tmp_path):
    """A resumed, nearly converged run starts at a tiny loss: a loss of 100 then is
    not a blow-up (10,000 x max(1, 1e-6) = 10,000)."""
    config = make_config("mlp", epochs=1, lr=0.05)
    task = Quadratic(config)
    task.model.weight.data[...] = 3.0 - 1e-3                    # first loss 1e-6
    real_step = task.train_step
    calls = []

    def step(batch):
        figures = real_step(batch)
        calls.append(1)
        if len(calls) == 2:
            figures["loss"] = 100.0
        return figures

    task.train_step = step
    result = Trainer(task, config, tmp_path / "q", progress=False, log=lambda *a: None).run()
    assert [r["epoch"] for r in result["history"]] == [1]
