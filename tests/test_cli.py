"""The `minidl` command line: train/eval/resume on digits, sample, gradcheck, data, bench, help."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from minidl import cli, functional
from minidl.autograd.function import Function
from minidl.training import RunDirectory
from training_helpers import interrupt_at_step

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("train", "eval", "sample", "bench", "gradcheck", "data"):
        assert command in text


def test_console_module_runs_as_a_program():
    result = subprocess.run([sys.executable, "-m", "minidl.cli", "train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--resume" in result.stdout and "MODEL" in result.stdout


def test_unknown_model_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "no-such-model"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_train_mlp_on_digits_beats_logistic_regression_and_eval_reproduces_it(tmp_path, capsys):
    """The MLP's defaults must do at least as well as plain logistic regression,
    96.9% on the same digits split: below that the hidden layer adds nothing."""
    run = tmp_path / "mlp"
    assert cli.main(["train", "mlp", "--out", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    history = json.loads((run / "metrics.json").read_text())["epochs"]
    config = json.loads((run / "config.json").read_text())
    assert len(history) == config["epochs"] and config["dataset"] == "digits"
    assert history[-1]["test_acc"] >= 0.969, f"mlp on digits: {history[-1]['test_acc']:.2%} < 96.9%"
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "seconds", "samples_per_s"):
        assert key in history[-1]
    for name in ("checkpoint.npz", "curves.png", "confusion_matrix.png", "misclassified.png"):
        assert (run / name).stat().st_size > 0, name
    assert not (run / "filters.png").exists()         # the MLP's first layer is not a Conv2d

    assert cli.main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "reproduced exactly" in out
    assert f"{history[-1]['test_acc']:.2%}" in out


def test_eval_reports_a_difference_with_exit_code_1(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["epochs"][-1]["test_acc"] -= 0.01             # pretend the record says otherwise
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert cli.main(["eval", str(run)]) == 1
    assert "DIFFERENT" in capsys.readouterr().out


def test_two_epochs_equal_one_epoch_plus_resume(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli.main(["train", "mlp", "--epochs", "2", "--seed", "3", "--out", str(straight), "--no-progress"]) == 0
    assert cli.main(["train", "mlp", "--epochs", "1", "--seed", "3", "--out", str(resumed), "--no-progress"]) == 0
    assert cli.main(["train", "mlp", "--resume", str(resumed), "--epochs", "2", "--no-progress"]) == 0
    a = RunDirectory(straight).load_checkpoint()
    b = RunDirectory(resumed).load_checkpoint()
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        np.testing.assert_array_equal(a["model"][name], b["model"][name], err_msg=name)
    for name in a["optimizer"]:
        np.testing.assert_array_equal(a["optimizer"][name], b["optimizer"][name], err_msg=name)
    curve = [r["test_loss"] for r in RunDirectory(resumed).load_metrics()]
    assert curve == [r["test_loss"] for r in RunDirectory(straight).load_metrics()]


def test_resume_refuses_a_changed_hyper_parameter(tmp_path):
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    with pytest.raises(SystemExit, match="only --epochs may change"):
        cli.main(["train", "mlp", "--resume", str(run), "--lr", "0.5"])
    # the same dataset in another spelling is not a change
    assert cli.main(["train", "mlp", "--resume", str(run), "--dataset", "DIGITS", "--epochs", "2",
                     "--no-progress"]) == 0
    assert RunDirectory(run).load_checkpoint()["epoch"] == 2


def test_ctrl_c_exits_130_and_prints_the_resume_command(tmp_path, monkeypatch, capsys):
    interrupt_at_step(monkeypatch, 43 + 1)               # the first step of epoch 2 (43 batches of 32)
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "3", "--out", str(run), "--no-progress"]) == 130
    out = capsys.readouterr().out
    assert f"minidl train mlp --resume {run}" in out
    assert RunDirectory(run).load_checkpoint()["epoch"] == 1


class _Terminated(Exception):
    """What the test's own SIGTERM handler raises when the run does not handle it."""


def test_sigterm_stops_like_ctrl_c_keeps_the_last_epoch_and_restores_the_handler(tmp_path, monkeypatch, capsys):
    """SIGTERM (kill, timeout, a scheduler) ended the process on the spot, with
    no message and possibly a temporary file left in the run directory."""
    import os
    import signal

    from minidl.training import classifier

    real, calls = classifier.ClassifierTask.train_step, []

    def train_step(self, batch):
        calls.append(1)
        if len(calls) == 43 + 1:                          # the first step of epoch 2
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, batch)

    def terminated(signum, frame):
        raise _Terminated

    monkeypatch.setattr(classifier.ClassifierTask, "train_step", train_step)
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        run = tmp_path / "r"
        assert cli.main(["train", "mlp", "--epochs", "3", "--out", str(run), "--no-progress"]) == 130
        assert signal.getsignal(signal.SIGTERM) is terminated
    finally:
        signal.signal(signal.SIGTERM, previous)
    out = capsys.readouterr().out
    assert "interrupted during epoch 2" in out and f"minidl train mlp --resume {run}" in out
    assert RunDirectory(run).load_checkpoint()["epoch"] == 1
    assert sorted(p.name for p in run.iterdir()) == ["best.npz", "checkpoint.npz", "config.json", "metrics.json"]


CHILD_WITH_CTRL_C = """
import os, signal, sys
from minidl import cli
from minidl.training import classifier

# Ctrl-C as in a terminal: a process started with SIGINT ignored (from a background
# job of a script, say) keeps it ignored, and Python then installs no handler for it
signal.signal(signal.SIGINT, signal.default_int_handler)
real, calls = classifier.ClassifierTask.train_step, []

def train_step(self, batch):
    calls.append(1)
    if len(calls) == int(os.environ["CTRL_C_AT_STEP"]):
        os.kill(os.getpid(), signal.SIGINT)             # what the terminal sends on Ctrl-C
    return real(self, batch)

classifier.ClassifierTask.train_step = train_step
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_real_sigint_in_a_process_keeps_epoch_1_and_resume_matches_an_uninterrupted_run(tmp_path):
    """The README's promise end to end, with a real signal in a real process:
    exit code 130, the resume command, no traceback; resuming gives the weights
    of an uninterrupted run."""
    import os

    run, straight = tmp_path / "run", tmp_path / "straight"
    env = dict(os.environ, CTRL_C_AT_STEP=str(43 + 5), PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-c", CHILD_WITH_CTRL_C, "train", "mlp", "--epochs", "2",
                             "--seed", "5", "--out", str(run), "--no-progress"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
    assert "interrupted during epoch 2" in result.stdout and f"minidl train mlp --resume {run}" in result.stdout
    assert RunDirectory(run).load_checkpoint()["epoch"] == 1

    resumed = subprocess.run([sys.executable, "-m", "minidl.cli", "train", "mlp", "--resume", str(run),
                              "--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert cli.main(["train", "mlp", "--epochs", "2", "--seed", "5", "--out", str(straight), "--no-progress"]) == 0
    a, b = RunDirectory(straight).load_checkpoint(), RunDirectory(run).load_checkpoint()
    assert a["epoch"] == b["epoch"] == 2
    for name in a["model"]:
        np.testing.assert_array_equal(a["model"][name], b["model"][name], err_msg=name)


def test_eval_of_a_directory_without_a_run_fails_clearly(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path)]) == 1
    assert "config.json" in capsys.readouterr().err


@pytest.mark.parametrize("model, kind", [("mlp", "classifier"), ("unet", "segmenter")])
def test_sample_on_a_classifier_run_says_it_is_not_generative(tmp_path, capsys, model, kind):
    """A segmenter's run was called "a classifier"."""
    RunDirectory(tmp_path).create().save_config({"model": model, "dataset": "digits"})
    assert cli.main(["sample", str(tmp_path)]) == 2
    assert f"holds a {model!r} run, a {kind}, not a generative model" in capsys.readouterr().err


def test_gradcheck_command_passes_correct_ops(capsys):
    assert cli.main(["gradcheck", "add", "mul", "tanh"]) == 0
    out = capsys.readouterr().out
    for op in ("add", "mul", "tanh"):
        assert any(line.startswith(op) and " pass " in line for line in out.splitlines()), op


class _WrongTanh(Function):
    """tanh with a backward missing the square: d/dx tanh = 1 - tanh, which is wrong."""

    def forward(self, a):
        self.out = np.tanh(a)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out)


def test_gradcheck_command_catches_a_wrong_backward(monkeypatch, capsys):
    monkeypatch.setattr(functional, "tanh", lambda x: _WrongTanh.apply(x))
    assert cli.main(["gradcheck", "tanh", "exp"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("tanh") and "FAIL" in line and "analytic" in line for line in lines)
    assert any(line.startswith("exp") and " pass " in line for line in lines)


def test_gradcheck_command_without_names_checks_every_differentiable_op(capsys):
    import inspect

    from minidl.gradcheck_table import NOT_DIFFERENTIABLE

    assert cli.main(["gradcheck"]) == 0
    lines = capsys.readouterr().out.splitlines()
    passed = {line.split()[0] for line in lines[1:-1] if line.split()[1] == "pass"}
    public = {name for name, value in vars(functional).items()
              if not name.startswith("_") and inspect.isfunction(value)}
    assert public - set(NOT_DIFFERENTIABLE) <= passed, sorted(public - set(NOT_DIFFERENTIABLE) - passed)
    assert lines[-1] == "all checked ops pass"


class _WrongAmax(Function):
    """max over dim 1 whose backward sends the gradient to the first column, not the argmax."""

    def forward(self, a):
        self.shape = a.shape
        return a.max(axis=1)

    def backward(self, grad):
        out = np.zeros(self.shape)
        out[:, 0] = grad
        return out


def test_gradcheck_command_catches_a_wrong_reduction_backward(monkeypatch, capsys):
    monkeypatch.setattr(functional, "amax", lambda x, dim=None, keepdim=False: _WrongAmax.apply(x))
    assert cli.main(["gradcheck", "amax", "sum"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("amax") and "FAIL" in line for line in lines)
    assert any(line.startswith("sum") and " pass " in line for line in lines)


def test_gradcheck_command_rejects_unknown_op_names(capsys):
    assert cli.main(["gradcheck", "frobnicate"]) == 1
    assert "frobnicate" in capsys.readouterr().err


def test_data_info_finds_the_bundled_digits(capsys):
    assert cli.main(["data", "info"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("digits"))
    assert "found" in line and "(1347, 1, 8, 8)" in line


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_data_info_tells_damaged_files_from_missing_ones(tmp_path, capsys, verbose):
    """A dataset whose files are there but corrupt was listed as "not found"."""
    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / name).write_bytes(b"junk")
    assert cli.main(["data", "info", "--root", str(tmp_path / "data"), *verbose]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("mnist "))
    if verbose:
        assert lines[at] == "mnist          found but unreadable"
        assert "train-images-idx3-ubyte.gz: bad magic number" in lines[at + 1]
    else:
        assert lines[at] == "mnist          found but unreadable (-v says why)"


def test_data_download_calls_minidl_data_download(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(mdl.data, "download", lambda name, root=None: calls.append((name, root)))
    assert cli.main(["data", "download", "fashion-mnist", "--root", str(tmp_path)]) == 0
    assert calls == [("fashion-mnist", str(tmp_path))]


def test_bench_passes_its_arguments_to_the_runner(monkeypatch, tmp_path):
    from minidl.bench import runner

    calls = []
    monkeypatch.setattr(runner, "run", lambda names, **kw: calls.append((names, kw)))
    assert cli.main(["bench", "conv", "pool", "--processes", "2", "--quick", "--out", str(tmp_path)]) == 0
    assert calls == [(["conv", "pool"], dict(processes=2, quick=True, out_dir=str(tmp_path)))]


@pytest.mark.parametrize("where", ["read-only", "a file"])
def test_bench_refuses_an_unwritable_out_before_running_a_suite(monkeypatch, tmp_path, capsys, where):
    """An existing directory that cannot be written was found out only when the
    first suite, minutes later, wrote its table."""
    from minidl.bench import runner

    calls = []
    monkeypatch.setattr(runner, "run", lambda names, **kw: calls.append(names))
    if where == "a file":
        out = tmp_path / "results.md"
        out.write_text("")
    else:
        out = _unwritable_directory(tmp_path)
    assert cli.main(["bench", "conv", "--quick", "--out", str(out)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"minidl bench: --out {out}: cannot write the results there ("), err
    assert calls == []


def test_generator_models_dispatch_to_their_trainer_and_sampler(monkeypatch, tmp_path):
    from minidl import models

    calls = []

    def trainer(config, run_dir, resume=False, progress=True, log=print, max_minutes=None):
        calls.append(("train", config.model, config.epochs, config.lr, str(run_dir), resume))
        RunDirectory(run_dir).create().save_config(config.to_dict())

    def sampler(run_dir, args):
        calls.append(("sample", str(run_dir), args.num))
        return 0

    entry = models.ModelEntry("toy-gen", lambda shape, classes: None, kind="generator",
                              defaults=(("epochs", 4), ("lr", 0.01)), trainer=trainer, sampler=sampler)
    monkeypatch.setitem(models.REGISTRY, "toy-gen", entry)
    run = tmp_path / "g"
    assert cli.main(["train", "toy-gen", "--out", str(run), "--no-progress"]) == 0
    assert cli.main(["sample", str(run), "--num", "3"]) == 0
    assert calls == [("train", "toy-gen", 4, 0.01, str(run), False), ("sample", str(run), 3)]
    assert cli.main(["eval", str(run)]) == 2                  # eval is for classifiers


def test_every_registered_model_names_its_builder_trainer_and_sampler():
    from minidl import models
    from minidl.training import classifier

    for name in models.available_models():
        entry = models.model_entry(name)
        assert entry.builder.__module__.startswith("minidl.models."), name      # builders live in models/
        assert callable(entry.trainer) and entry.trainer.__module__.startswith("minidl.training."), name
        if entry.kind == "generator":
            assert callable(entry.sampler), name
    assert models.model_entry("cnn").trainer is classifier.fit


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    RunDirectory(tmp_path).create().save_config({"model": "mlp", "dataset": "digits", "epochs": 2})
    assert cli.main(["train", "mlp", "--resume", str(tmp_path), "--no-progress"]) == 1
    assert "has not finished an epoch" in capsys.readouterr().err


# ---- fault injection: what a user can get wrong ends in a clear message, never a traceback ----
def _one_line(err):
    err = err.strip()
    assert err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["--batch-size", "-3"], "batch_size must be a positive integer, got -3"),
    (["--lr", "-1"], "lr must be positive and finite, got -1.0"),
    (["--lr", "0"], "lr must be positive and finite, got 0.0"),
    (["--lr", "nan"], "lr must be positive and finite, got nan"),
    (["--lr", "inf"], "lr must be positive and finite, got inf"),
    (["--clip-grad-norm", "-1"], "clip_grad_norm must be positive"),
    (["--clip-grad-norm", "inf"], "clip_grad_norm must be positive and finite, got inf"),
    (["--seed", "-1"], "seed must be a non-negative integer, got -1"),
    (["--weight-decay", "-1"], "weight_decay must be >= 0 and finite, got -1.0"),
    (["--weight-decay", "nan"], "weight_decay must be >= 0 and finite, got nan"),
    (["--label-smoothing", "1.5"], "label_smoothing must be in [0, 1), got 1.5"),
    (["--max-minutes", "-2"], "max_minutes must be positive"),
    (["--dataset", "no-such-data"], "unknown dataset 'no-such-data'"),
])
def test_bad_training_values_exit_1_with_one_line_and_no_run_directory(tmp_path, capsys, args, message):
    run = tmp_path / "run"
    assert cli.main(["train", "mlp", *args, "--out", str(run), "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and err.startswith("minidl train:") and message in err, err
    assert not (run / "checkpoint.npz").exists()


@pytest.mark.parametrize("args", [["--lr", "abc"], ["--scheduler", "bogus"], ["--optimizer", "rmsprop"],
                                  ["--epochs", "2.5"]])
def test_malformed_arguments_are_refused_by_the_parser_with_exit_code_2(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "mlp", *args, "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[0]}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option", ["--resume", "--out"])
def test_an_empty_run_directory_is_refused_not_taken_as_no_option(tmp_path, capsys, monkeypatch, option):
    """`--resume "$RUN"` with RUN unset started a new 20-epoch run in runs/."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "mlp", option, "", "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == f"minidl train: {option} needs a run directory, got an empty path", err
    assert list(tmp_path.iterdir()) == []


def test_resume_with_another_out_directory_is_refused_and_changes_nothing(finished_mlp_run, tmp_path, capsys):
    """--out was ignored: the run in --resume was continued in place, nothing went to --out."""
    run = _copy_run(finished_mlp_run, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert cli.main(["train", "mlp", "--resume", str(run), "--out", str(tmp_path / "branch"), "--epochs", "2",
                     "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == (f"minidl train: --out {tmp_path / 'branch'} and --resume {run}: a resumed run continues "
                   "in its own directory; to branch off, copy the run directory and resume the copy"), err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert not (tmp_path / "branch").exists()


@pytest.mark.parametrize("lost", ["epochs", "dataset"])
def test_resume_of_a_config_without_a_setting_is_refused_by_name(finished_mlp_run, tmp_path, capsys, lost):
    """config.json without "epochs" resumed to TrainConfig's generic 10 epochs (not the
    run's own), without "dataset" on the digits, without a word; --epochs may stand
    in for the lost epochs."""
    run = _copy_run(finished_mlp_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    del config[lost]
    (run / "config.json").write_text(json.dumps(config))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert cli.main(["train", "mlp", "--resume", str(run), "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f'minidl train: {run / "config.json"} has no "{lost}" entry: is it damaged?'), err
    assert ("--epochs N" in err) == (lost == "epochs"), err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    if lost == "epochs":                              # the total given: the run goes on to it
        assert cli.main(["train", "mlp", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
        assert [r["epoch"] for r in RunDirectory(run).load_metrics()] == [1, 2]


def test_a_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, capsys, monkeypatch):
    from minidl.data import load_dataset

    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "empty"))
    try:
        load_dataset("mnist", "train", root=tmp_path / "empty")
        pytest.skip("MNIST is installed on this machine, so it cannot be missing")
    except FileNotFoundError:
        pass
    run = tmp_path / "run"
    assert cli.main(["train", "cnn", "--dataset", "mnist", "--data-root", str(tmp_path / "empty"),
                     "--out", str(run), "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("minidl train: dataset 'mnist' not found"), err
    assert str(tmp_path / "empty") in err and "minidl data download mnist" in err
    assert not run.exists()


def test_a_corrupt_dataset_file_names_the_file_and_the_problem(tmp_path, capsys):
    import gzip

    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(root / name, "wb") as fh:
            fh.write(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05")      # an image header cut short
    assert cli.main(["train", "mlp", "--dataset", "mnist", "--data-root", str(tmp_path / "data"),
                     "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and "read_idx" in err and "train-images-idx3-ubyte.gz" in err, err


def test_test_images_of_another_size_than_the_training_images_are_refused_before_training(tmp_path, capsys):
    """The run trained a whole epoch, then failed in the first evaluation with a
    shape error of a linear layer that named no dataset."""
    from minidl.data import write_idx

    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, side in (("train", 6), ("t10k", 5)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (20, side, side), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(20, dtype=np.uint8) % 10)
    run = tmp_path / "run"
    assert cli.main(["train", "mlp", "--dataset", "mnist", "--data-root", str(tmp_path / "data"),
                     "--out", str(run), "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == ("minidl train: the mnist training images are (1, 6, 6) (C, H, W) but its test images are "
                   "(1, 5, 5); both splits must have one size"), err
    assert not run.exists()


def test_an_out_directory_inside_a_read_only_place_is_one_line(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        parent = Path("/proc/self")                 # nothing can be created there, even by root
    else:
        parent = tmp_path / "locked"
        parent.mkdir()
        parent.chmod(0o500)
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(parent / "deeper" / "run"),
                     "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and "cannot write the run directory" in err, err


def test_a_diverging_run_through_the_real_command_exits_1_and_writes_no_checkpoint(tmp_path):
    run = tmp_path / "r"
    result = subprocess.run([sys.executable, "-m", "minidl.cli", "train", "cnn", "--lr", "1e6",
                             "--optimizer", "sgd", "--out", str(run), "--no-progress"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr
    assert "diverged at epoch 1, step" in result.stderr and "learning rate 1e+06" in result.stderr
    assert "Try a smaller learning rate, e.g. --lr 1e+05" in result.stderr
    assert not (run / "checkpoint.npz").exists() and not (run / "best.npz").exists()


# ---- fault injection on a finished run: damaged files end in one line and exit 1 ----
@pytest.fixture(scope="module")
def finished_mlp_run(tmp_path_factory):
    """A one-epoch mlp run on the bundled digits (trained once for the tests below)."""
    run = tmp_path_factory.mktemp("finished") / "mlp"
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    return run


def _copy_run(source, tmp_path):
    import shutil

    return Path(shutil.copytree(source, tmp_path / "copy"))


def _rewrite_checkpoint(run, change):
    """Load checkpoint.npz as plain arrays, let `change` edit the dict, write it back."""
    path = run / "checkpoint.npz"
    with np.load(path) as archive:
        entries = dict(archive)
    change(entries)
    np.savez(path, **entries)


def _first_weight(entries):
    return next(k for k in sorted(entries) if k.startswith("model.") and k.endswith("weight"))


@pytest.mark.parametrize("command", [["eval"], ["train", "mlp", "--epochs", "2", "--no-progress", "--resume"]])
@pytest.mark.parametrize("damage, message", [
    (lambda e: e.__setitem__(_first_weight(e), e[_first_weight(e)].astype(np.int32)),
     "dtype int32 in the state_dict, but float32 in the model"),
    (lambda e: e.__setitem__(_first_weight(e), e[_first_weight(e)].astype(np.float64)),
     "dtype float64 in the state_dict, but float32 in the model"),
    (lambda e: e.__setitem__(_first_weight(e), e[_first_weight(e)][:-1]), "in the state_dict, but"),
    (lambda e: e.pop(_first_weight(e)), "missing key"),
    (lambda e: e.__setitem__("model.extra", np.zeros(3, np.float32)), "unexpected key 'extra'"),
    (lambda e: e[_first_weight(e)].__setitem__((0, 0), np.nan), "holds NaN or infinite values"),
    (lambda e: e.__setitem__("epoch", np.array("one")), "'epoch' must be a non-negative integer"),
    (lambda e: e.__setitem__("epoch", np.array([1, 2])), "'epoch' must be a non-negative integer"),
    (lambda e: e.pop("optimizer.0"), "entries are damaged"),
    (lambda e: e.__setitem__("optimizer_layout", np.frombuffer(b"{not json", np.uint8)), "entries are damaged"),
    (lambda e: e.pop("config"), "not a minidl training checkpoint (no 'config' entry)"),
    (lambda e: e.__setitem__("config", np.frombuffer(b"[1]", np.uint8)),
     "entries are damaged (ValueError: 'config' holds [1], not config.json's object)"),
    (lambda e: e.__setitem__("schedulers_layout", np.frombuffer(b"[1]", np.uint8)),
     "entries are damaged (ValueError: 'schedulers_layout' holds [1], not a list of schedulers' states)"),
])
def test_a_damaged_checkpoint_is_refused_in_one_line(finished_mlp_run, tmp_path, capsys, command, damage, message):
    run = _copy_run(finished_mlp_run, tmp_path)
    _rewrite_checkpoint(run, damage)
    before = (run / "checkpoint.npz").read_bytes()
    assert cli.main([*command, str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and err.startswith(f"minidl {command[0]}:") and message in err, err
    assert (run / "checkpoint.npz").read_bytes() == before        # a failed resume never overwrites it


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:len(data) // 2], "truncated"),
    (lambda data: b"not a zip at all", "not a zip archive"),
    (lambda data: b"", "not a zip archive"),
])
def test_a_truncated_or_foreign_checkpoint_file_is_one_line(finished_mlp_run, tmp_path, capsys, damage, message):
    run = _copy_run(finished_mlp_run, tmp_path)
    path = run / "checkpoint.npz"
    path.write_bytes(damage(path.read_bytes()))
    assert cli.main(["eval", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and "checkpoint.npz" in err and message in err, err


def test_a_pickled_object_in_a_checkpoint_is_refused(finished_mlp_run, tmp_path, capsys):
    run = _copy_run(finished_mlp_run, tmp_path)
    _rewrite_checkpoint(run, lambda e: e.__setitem__("model.payload", np.array([{"x": 1}], dtype=object)))
    assert cli.main(["eval", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "'model.payload' holds an object array" in err and "refusing" in err, err


@pytest.mark.parametrize("change, message", [
    ({"lr": "fast"}, "lr must be a number, got 'fast'"),
    ({"epochs": 2.5}, "epochs must be an integer, got 2.5"),
    ({"batch_size": None}, "batch_size must be an integer, got None"),
    ({"seed": "a"}, "seed must be an integer, got 'a'"),
    ({"augment": "yes"}, "augment must be true or false, got 'yes'"),
    ({"dataset": 7}, "dataset must be a string, got 7"),
    ({"scheduler": 5}, "scheduler must be a string or null, got 5"),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
])
@pytest.mark.parametrize("command", [["eval"], ["train", "mlp", "--no-progress", "--resume"]])
def test_a_hand_edited_config_with_a_wrong_type_is_one_line(finished_mlp_run, tmp_path, capsys,
                                                            change, message, command):
    run = _copy_run(finished_mlp_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config.update(change)
    (run / "config.json").write_text(json.dumps(config))
    assert cli.main([*command, str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and err.startswith(f"minidl {command[0]}: train: {message}"), err


def test_resume_with_fewer_epochs_than_finished_is_refused_and_changes_nothing(tmp_path, capsys):
    """It rewrote config.json to 1 epoch beside a checkpoint of epoch 2 and exited 0."""
    run = tmp_path / "r"
    assert cli.main(["train", "mlp", "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert cli.main(["train", "mlp", "--resume", str(run), "--epochs", "1", "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == (f"minidl train: {run} has already finished 2 epochs; --epochs must be at least 2 "
                   "(more to continue training), got 1"), err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_dataset_name_spelled_otherwise_trains_exactly_the_same_run(finished_mlp_run, tmp_path):
    """load_dataset reads "DIGITS" as "digits"; the run must then also normalise
    its images as digits (it trained on raw pixels and reached another accuracy)."""
    run = tmp_path / "run"
    assert cli.main(["train", "mlp", "--dataset", "DIGITS", "--epochs", "1", "--out", str(run),
                     "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["dataset"] == "digits"
    figures = [{k: r[k] for k in ("train_loss", "test_loss", "test_acc")} for r in RunDirectory(run).load_metrics()]
    expected = [{k: r[k] for k in ("train_loss", "test_loss", "test_acc")}
                for r in RunDirectory(finished_mlp_run).load_metrics()]
    assert figures == expected


@pytest.mark.parametrize("command", [["eval"], ["train", "cnn", "--no-progress", "--epochs", "2", "--resume"]])
def test_a_config_naming_another_model_than_the_checkpoint_is_one_clear_line(finished_mlp_run, tmp_path, capsys,
                                                                             command):
    """It failed in load_state_dict with a line listing every missing key and shape."""
    run = _copy_run(finished_mlp_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(dict(config, model="cnn")))
    assert cli.main([*command, str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == (f"minidl {command[0]}: {run / 'config.json'} names the model 'cnn', but "
                   f"{run / 'checkpoint.npz'} holds the weights of a 'mlp' run: was config.json edited or "
                   "copied from another run?"), err


@pytest.mark.parametrize("change, said, trained", [
    ({"batch_size": 64}, "batch_size 64", "batch_size 32"),
    ({"seed": 3, "lr": 0.1}, "lr 0.1, seed 3", "lr 0.003, seed 0"),
])
def test_resume_refuses_a_config_json_edited_since_the_checkpoint(finished_mlp_run, tmp_path, capsys, change,
                                                                   said, trained):
    """A hand-edited batch size or seed in config.json was taken up by --resume
    without a word: the resumed epochs then differ from an uninterrupted run."""
    run = _copy_run(finished_mlp_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(dict(config, **change)))
    before = (run / "checkpoint.npz").read_bytes()
    assert cli.main(["train", "mlp", "--epochs", "2", "--no-progress", "--resume", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == (f"minidl train: {run / 'config.json'} says {said}, but {run / 'checkpoint.npz'} was trained "
                   f"with {trained}; a resumed run keeps its settings (only --epochs may change)"), err
    assert (run / "checkpoint.npz").read_bytes() == before


@pytest.mark.parametrize("model", [["mlp"], {"name": "mlp"}, 3, None])
@pytest.mark.parametrize("command", [["eval"], ["sample"], ["explain"], ["train", "mlp", "--no-progress", "--resume"]])
def test_a_config_whose_model_is_not_a_name_is_one_line(finished_mlp_run, tmp_path, capsys, model, command):
    """`"model": ["mlp"]` ended in a TypeError traceback (unhashable type: 'list')."""
    run = _copy_run(finished_mlp_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(dict(config, model=model)))
    assert cli.main([*command, str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == (f"minidl {command[0]}: {run / 'config.json'}: \"model\" must be a model's name "
                   f"(a string), got {model!r}"), err


@pytest.mark.parametrize("text", ["[1, 2]", '{"epochs": 3}', '{"epochs": [1]}'])
def test_damaged_metrics_are_one_line_on_resume(finished_mlp_run, tmp_path, capsys, text):
    run = _copy_run(finished_mlp_run, tmp_path)
    (run / "metrics.json").write_text(text)
    assert cli.main(["train", "mlp", "--epochs", "2", "--no-progress", "--resume", str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "metrics.json does not hold minidl metrics" in err, err


EVAL, RESUME = ["eval"], ["train", "mlp", "--epochs", "2", "--no-progress", "--resume"]


@pytest.mark.parametrize("command, records, message", [
    (command, records, message) for command in (EVAL, RESUME) for records, message in [
        ([{"epoch": "1", "test_acc": 0.9}], "a record's \"epoch\" must be a positive integer, got '1'"),
        ([{"epoch": True, "test_acc": 0.9}], "a record's \"epoch\" must be a positive integer, got True"),
        ([{"epoch": 1, "test_acc": "high"}], "epoch 1's 'test_acc' must be a number (or a list of numbers), "
                                             "got 'high'"),
        ([{"epoch": 1, "test_iou": [0.5, "x"]}], "epoch 1's 'test_iou' must be a number (or a list of numbers), "
                                                 "got [0.5, 'x']"),
    ]] + [(EVAL, [{"epoch": 1, "train_loss": 0.3}], "the record of epoch 1 has no 'test_acc'")])
def test_metrics_records_of_the_wrong_type_are_one_line(finished_mlp_run, tmp_path, capsys, command, records,
                                                         message):
    """Records with a text epoch or figure, or without the test accuracy eval
    compares with, ended in TypeError and KeyError tracebacks."""
    run = _copy_run(finished_mlp_run, tmp_path)
    (run / "metrics.json").write_text(json.dumps({"epochs": records}))
    assert cli.main([*command, str(run)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == f"minidl {command[0]}: {run / 'metrics.json'}: {message}; is it damaged?", err


def test_resume_over_records_that_lost_their_figures_finishes_and_adds_the_new_epochs(finished_mlp_run, tmp_path,
                                                                                       capsys):
    """Records holding only their epoch (or null figures) ended the resumed run,
    after its epochs were trained and saved, in KeyError tracebacks (the curves,
    then the best epoch and seconds per epoch of the closing line)."""
    run = _copy_run(finished_mlp_run, tmp_path)
    (run / "metrics.json").write_text(json.dumps({"epochs": [{"epoch": 1, "test_acc": None}]}))
    assert cli.main(["train", "mlp", "--epochs", "2", "--no-progress", "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    records = RunDirectory(run).load_metrics()
    assert [r["epoch"] for r in records] == [1, 2] and records[1]["test_acc"] > 0.5
    assert f"best epoch 2 ({records[1]['test_acc']:.2%}, best.npz)" in out, out


@pytest.mark.parametrize("args, message", [(["--num", "0"], "--num must be a positive integer, got 0"),
                                           (["--num", "-2"], "--num must be a positive integer, got -2"),
                                           (["--length", "-1"], "--length must be >= 0, got -1")])
def test_sample_refuses_a_bad_count_before_loading_anything(tmp_path, capsys, args, message):
    assert cli.main(["sample", str(tmp_path / "no-run"), *args]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == f"minidl sample: {message}", err


GPT_SHAPE = dict(vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=128, dropout=0.0)


@pytest.mark.parametrize("shape", [None, [4, 4], dict(GPT_SHAPE, n_layer="4"), dict(GPT_SHAPE, extra=1),
                                   {k: v for k, v in GPT_SHAPE.items() if k != "dropout"}])
def test_sample_of_a_gpt_run_whose_config_lost_the_model_shape_is_one_line(tmp_path, capsys, shape):
    """config.json's "gpt" entry is the only record of the model's shape; without
    it (or with a wrong one) `minidl sample` ended in a KeyError or TypeError traceback."""
    config = {"model": "gpt", "dataset": "shakespeare"}
    if shape is not None:
        config["gpt"] = shape
    RunDirectory(tmp_path).create().save_config(config)
    assert cli.main(["sample", str(tmp_path)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == (f"minidl sample: {tmp_path / 'config.json'}: the \"gpt\" entry must give the model's shape as "
                   f"numbers (vocab_size, block_size, n_layer, n_head, n_embd, dropout), got {shape!r}"), err


def test_eval_of_a_generative_run_exits_2_with_the_reason_on_stderr(tmp_path, capsys):
    RunDirectory(tmp_path).create().save_config({"model": "gan", "dataset": "digits"})
    assert cli.main(["eval", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "a generative model" in captured.err and "minidl sample" in captured.err and captured.out == ""


@pytest.mark.parametrize("args, message", [
    (["explain", "RUN", "--num", "0"], "--num must be a positive integer, got 0"),
    (["explain", "RUN", "--num", "-3"], "--num must be a positive integer, got -3"),
    (["explain", "RUN", "--fraction", "2"], "--fraction must be between 0 and 1"),
    (["explain", "RUN", "--fraction", "-0.1"], "--fraction must be between 0 and 1"),
    (["explain", "RUN", "--fraction", "0"], "--fraction must be between 0 and 1"),
    (["complete", "RUN", "--num", "0"], "--num must be a positive integer, got 0"),
    (["complete", "RUN", "--samples", "-1"], "--samples must be a positive integer, got -1"),
    (["complete", "RUN", "--temperature", "0"], "--temperature must be > 0, got 0.0"),
    (["complete", "RUN", "--temperature", "nan"], "--temperature must be > 0, got nan"),
    (["bench", "overhead", "--quick", "--processes", "0"], "--processes must be a positive integer, got 0"),
])
def test_out_of_range_options_are_one_line_and_write_nothing(finished_mlp_run, tmp_path, capsys, args, message):
    run = _copy_run(finished_mlp_run, tmp_path)
    before = sorted(p.name for p in run.iterdir())
    args = [str(run) if a == "RUN" else a for a in args]
    if args[0] == "bench":
        args += ["--out", str(tmp_path / "bench")]
    assert cli.main(args) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == f"minidl {args[0]}: {message}" or (err.startswith(f"minidl {args[0]}: ") and message in err), err
    assert sorted(p.name for p in run.iterdir()) == before
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize("model, args, message", [
    ("gan", ["--label-smoothing", "0.1"], "--label-smoothing applies to classifiers; gan is a generator"),
    ("unet", ["--label-smoothing", "0.1"], "--label-smoothing applies to classifiers; unet is a segmenter"),
    ("gpt", ["--augment"], "--augment applies to classifiers and segmenters; gpt is a generator"),
    ("dcgan", ["--no-augment"], "--augment applies to classifiers and segmenters; dcgan is a generator"),
])
def test_an_option_the_model_would_ignore_is_refused(tmp_path, capsys, model, args, message):
    run = tmp_path / "run"
    assert cli.main(["train", model, *args, "--out", str(run), "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err == f"minidl train: {message}", err
    assert not run.exists()


def test_a_batch_larger_than_a_drop_last_training_set_is_one_line(tmp_path, capsys):
    """The GAN drops an incomplete last batch: with batch_size above the 1347
    training digits no batch is left (this ended in a KeyError traceback)."""
    run = tmp_path / "run"
    assert cli.main(["train", "gan", "--batch-size", "100000", "--epochs", "1", "--out", str(run),
                     "--no-progress"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "an epoch of gan has no batches: batch_size 100000" in err, err
    assert not (run / "checkpoint.npz").exists()


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("command, where", [
    (["eval", "RUN"], "minidl.training.evaluate_run"),
    (["compile", "--no-progress"], "minidl.kernels.warmup.compile_all"),
    (["gradcheck", "add"], "minidl.gradcheck_table.run_gradcheck_table"),
    (["train", "mlp", "--out", "NEW", "--no-progress"], "minidl.training.classifier.load_data"),
])
def test_ctrl_c_outside_the_epochs_is_one_line_and_exit_code_130(finished_mlp_run, tmp_path, capsys, monkeypatch,
                                                                 command, where):
    """Ctrl-C while a command evaluates, compiles, checks or loads its data (it
    ended in a KeyboardInterrupt traceback)."""
    monkeypatch.setattr(where, _ctrl_c)
    run = _copy_run(finished_mlp_run, tmp_path)
    command = [{"RUN": str(run), "NEW": str(tmp_path / "new")}.get(a, a) for a in command]
    try:
        code = cli.main(command)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped cli.main (a traceback for the user)")
    assert code == 130
    err = _one_line(capsys.readouterr().err)
    assert err == f"minidl {command[0]}: interrupted", err
    assert not (tmp_path / "new").exists()


# ---- --out of explain / sample / complete is checked before any work ----
def _unwritable_directory(tmp_path):
    """A directory no file can be created in (for root too: /proc/self refuses everyone)."""
    import os

    if os.geteuid() == 0:
        return Path("/proc/self")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked


@pytest.mark.parametrize("where, message", [
    ("missing", "the directory {parent} does not exist"),
    ("read-only", "cannot write in {parent}"),
    ("a directory", "is a directory; give a file name"),
])
@pytest.mark.parametrize("command", ["explain", "sample", "complete"])
def test_an_unwritable_out_path_is_refused_before_any_work(finished_mlp_run, tmp_path, capsys, monkeypatch,
                                                           command, where, message):
    """The check comes first: the command's own work (monkeypatched to record
    that it ran) never starts, nothing is written, and the one line names the
    option and the path."""
    from minidl import completion, explain, models

    started = []
    monkeypatch.setattr(explain, "explain_run", lambda *a, **k: started.append("explain"))
    monkeypatch.setattr(completion, "complete_run", lambda *a, **k: started.append("complete"))
    monkeypatch.setattr(models, "model_entry", lambda name: started.append("sample"))
    run = _copy_run(finished_mlp_run, tmp_path)
    before = sorted(p.name for p in run.iterdir())
    if where == "missing":
        out = tmp_path / "no-such-dir" / "grid.png"
    elif where == "read-only":
        out = _unwritable_directory(tmp_path) / "grid.png"
    else:
        out = tmp_path
    assert cli.main([command, str(run), "--out", str(out)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"minidl {command}: --out {out}"), err
    assert message.format(parent=out.parent) in err, err
    assert started == []
    assert sorted(p.name for p in run.iterdir()) == before
    assert not out.exists() or out.is_dir()
    assert not (tmp_path / "no-such-dir").exists()
    if where == "read-only":
        assert not any(p.name.startswith(".minidl-write-test") for p in out.parent.iterdir())


@pytest.mark.parametrize("command, report", [(["explain"], "explain.json"),
                                             (["complete", "--classifier", "CNN"], "completion.json")])
def test_a_run_directory_that_cannot_take_the_report_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                                                command, report):
    """explain and complete (with a classifier) always write their report into
    the run directory, even with --out elsewhere: a read-only run directory was
    found out after the whole test set had been measured."""
    from minidl import completion, explain

    started = []
    monkeypatch.setattr(explain, "explain_run", lambda *a, **k: started.append("explain"))
    monkeypatch.setattr(completion, "complete_run", lambda *a, **k: started.append("complete"))
    run = _unwritable_directory(tmp_path)
    args = [command[0], str(run), *command[1:], "--out", str(tmp_path / "grid.png")]
    assert cli.main([str(tmp_path) if a == "CNN" else a for a in args]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"minidl {command[0]}: {run}: cannot write {report} in the run directory ("), err
    assert started == [] and not (tmp_path / "grid.png").exists()


def test_a_writable_out_path_reaches_the_sampler_unchanged(monkeypatch, tmp_path):
    from minidl import models

    seen = []
    entry = models.ModelEntry("toy-gen", lambda shape, classes: None, kind="generator",
                              trainer=lambda *a, **k: None, sampler=lambda run_dir, args: seen.append(args.out))
    monkeypatch.setitem(models.REGISTRY, "toy-gen", entry)
    RunDirectory(tmp_path / "run").create().save_config({"model": "toy-gen"})
    out = tmp_path / "samples.png"
    assert cli.main(["sample", str(tmp_path / "run"), "--out", str(out)]) == 0
    assert seen == [str(out)] and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]          # the probe file is gone
