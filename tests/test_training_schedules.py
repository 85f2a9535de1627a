"""`minidl train --scheduler NAME --clip-grad-norm X`: the schedule runs per step,
is saved in the checkpoint and resumes exactly; clipping bounds every step's
gradient norm; a schedule planned for N epochs refuses another length."""
import math

import numpy as np
import pytest

from minidl import cli, optim
from minidl.training import RunDirectory, fit, make_config
from training_helpers import interrupt_at_step

STEPS = 43                       # batches of 32 in an epoch of the 1347 bundled training digits


def assert_same_checkpoints(a_dir, b_dir):
    a, b = RunDirectory(a_dir).load_checkpoint(), RunDirectory(b_dir).load_checkpoint()
    assert a["epoch"] == b["epoch"]
    for name in a["model"]:
        np.testing.assert_array_equal(a["model"][name], b["model"][name], err_msg=name)
    for name in a["optimizer"]:
        np.testing.assert_array_equal(a["optimizer"][name], b["optimizer"][name], err_msg=name)
    assert a["schedulers"] == b["schedulers"] and a["schedulers"]
    assert ([r["test_loss"] for r in RunDirectory(a_dir).load_metrics()]
            == [r["test_loss"] for r in RunDirectory(b_dir).load_metrics()])


def test_cosine_schedule_with_clipping_resumes_exactly_after_ctrl_c(tmp_path, monkeypatch):
    flags = ["--epochs", "3", "--scheduler", "cosine", "--clip-grad-norm", "1.0", "--seed", "2",
             "--no-progress"]
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert cli.main(["train", "mlp", "--out", str(straight)] + flags) == 0
    history = RunDirectory(straight).load_metrics()
    lr0 = make_config("mlp").lr
    for record in history:                               # lr after the epoch's last step
        t = record["epoch"] * STEPS
        assert record["lr"] == pytest.approx(lr0 * (1 + math.cos(math.pi * t / (3 * STEPS))) / 2, abs=1e-12)
    checkpoint = RunDirectory(straight).load_checkpoint()
    assert checkpoint["config"]["scheduler"] == "cosine" and checkpoint["config"]["clip_grad_norm"] == 1.0
    assert checkpoint["schedulers"][0]["last_epoch"] == 3 * STEPS

    interrupt_at_step(monkeypatch, STEPS + 5)                # inside epoch 2
    assert cli.main(["train", "mlp", "--out", str(cut)] + flags) == 130
    monkeypatch.undo()
    assert RunDirectory(cut).load_checkpoint()["schedulers"][0]["last_epoch"] == STEPS
    assert cli.main(["train", "mlp", "--resume", str(cut), "--no-progress"]) == 0
    assert_same_checkpoints(straight, cut)


def test_warmup_one_epoch_plus_resume_equals_two_epochs(tmp_path):
    """The warm-up's length does not depend on --epochs, so --epochs may grow on resume."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--scheduler", "warmup", "--optimizer", "sgd", "--lr", "0.1", "--no-progress"]
    assert cli.main(["train", "mlp", "--epochs", "2", "--out", str(straight)] + common) == 0
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(resumed)] + common) == 0
    assert cli.main(["train", "mlp", "--resume", str(resumed), "--epochs", "2", "--no-progress"]) == 0
    assert_same_checkpoints(straight, resumed)
    assert [r["lr"] for r in RunDirectory(straight).load_metrics()] == pytest.approx([0.1, 0.1])


def test_a_schedule_planned_for_n_epochs_refuses_to_resume_for_more(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "1", "--scheduler", "onecycle", "--out", str(run),
                     "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "mlp", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "planned for 1 epochs" in err


def test_resume_refuses_a_different_schedule(tmp_path):
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    with pytest.raises(SystemExit, match="only --epochs may change"):
        cli.main(["train", "mlp", "--resume", str(run), "--scheduler", "cosine"])


def test_unknown_scheduler_and_bad_clip_values_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "mlp", "--scheduler", "exponential"])
    assert "invalid choice" in capsys.readouterr().err
    assert cli.main(["train", "mlp", "--clip-grad-norm", "0", "--out", str(tmp_path / "r")]) == 1
    assert "clip_grad_norm must be positive" in capsys.readouterr().err


def gradient_norms_seen_by_adam(monkeypatch):
    norms, real = [], optim.Adam.step

    def step(self):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        norms.append(math.sqrt(sum(float(np.sum(np.asarray(g, np.float64) ** 2)) for g in grads)))
        return real(self)

    monkeypatch.setattr(optim.Adam, "step", step)
    return norms


def test_clip_grad_norm_bounds_the_norm_every_step_reaches(tmp_path, monkeypatch):
    quiet = dict(progress=False, log=lambda *a: None, plots=False)
    free = gradient_norms_seen_by_adam(monkeypatch)
    fit(make_config("mlp", epochs=1), tmp_path / "free", **quiet)
    assert max(free) > 0.5                                   # without clipping the bound is exceeded
    monkeypatch.undo()
    clipped = gradient_norms_seen_by_adam(monkeypatch)
    fit(make_config("mlp", epochs=1, clip_grad_norm=0.5), tmp_path / "clipped", **quiet)
    assert len(clipped) == STEPS and max(clipped) <= 0.5 * (1 + 1e-5)
    assert sum(n > 0.499 for n in clipped) >= 1              # and it did clip


def test_a_gan_schedules_both_players(tmp_path):
    from minidl.training.gan import fit_gan

    config = make_config("gan", epochs=1, batch_size=128, scheduler="cosine")
    result = fit_gan(config, tmp_path / "g", progress=False, log=lambda *a: None, quality=False)
    schedulers = RunDirectory(tmp_path / "g").load_checkpoint()["schedulers"]
    assert len(schedulers) == 2 and all(s["last_epoch"] == 1347 // 128 for s in schedulers)
    assert result["history"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
