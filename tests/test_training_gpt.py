"""The GPT training loop behind `minidl train gpt|pixel-gpt` and `minidl sample`:
the two tasks' data (character windows, digit pixel sequences), the bigram
baseline, the CLI end to end in a temporary directory, resume, and the
class-recognition measure of generated digits."""
import collections
import json
import math

import numpy as np
import pytest

import minidl as mdl
from minidl import cli, nn
from minidl.models.gpt import GPT, GPTConfig
from minidl.training import gpt as gpt_training
from minidl.training.gpt import LEVELS, CharacterTask, PixelTask


@pytest.fixture
def small_models(monkeypatch):
    """Shrink the registry's GPTs so a CLI run takes seconds, and run 2 steps an epoch."""
    monkeypatch.setitem(gpt_training.MODEL_SIZES, "gpt", (1, 2, 16))
    monkeypatch.setitem(gpt_training.MODEL_SIZES, "pixel-gpt", (1, 2, 16))
    monkeypatch.setenv("MINIDL_GPT_STEPS", "2")


# ---- data -------------------------------------------------------------------------
def test_quantise_by_hand():
    images = np.array([0.0, 0.16, 0.17, 0.49, 0.84, 1.0, -0.2, 1.3])
    assert LEVELS == 4
    np.testing.assert_array_equal(PixelTask.quantise(images), [0, 0, 1, 1, 3, 3, 0, 3])


def test_pixel_sequences_round_trip():
    task = PixelTask()
    data = task.train_images
    sequences = task.sequences(data)                                   # (N, 65)
    assert sequences.shape == (len(data), 65) and task.block_size == 64
    np.testing.assert_array_equal(sequences[:, 0], LEVELS + data.labels)
    images = task.images_from(sequences)                               # (N, 1, 8, 8)
    assert images.shape == data.images.shape and images.dtype == np.float32
    np.testing.assert_array_equal(task.quantise(images).reshape(len(data), 64), sequences[:, 1:])
    assert np.max(np.abs(images - data.images)) <= 0.5 / (LEVELS - 1) + 1e-6   # within half a level
    inputs, targets = task.batch(5, np.random.default_rng(0))
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    assert np.all(inputs[:, 0] >= LEVELS)                              # every row starts with a class


def test_character_windows_are_shifted_text():
    task = CharacterTask(block_size=16)
    inputs, targets = task.batch(4, np.random.default_rng(1))
    assert inputs.shape == targets.shape == (4, 16)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    text = task.decode(np.concatenate([inputs[0], targets[0, -1:]]))
    assert text in task.decode(task.train)                             # a real stretch of the play
    assert task.eval_windows.shape == (gpt_training.EVAL_WINDOWS, 17)


def test_bigram_baseline_matches_counting_pairs():
    task = CharacterTask(block_size=16)
    train = task.decode(task.train)
    pairs = collections.Counter(zip(train, train[1:]))
    firsts = collections.Counter(train[:-1])
    V = task.vocab_size
    total = 0.0
    for window in task.eval_windows:
        chars = task.decode(window)
        for a, b in zip(chars, chars[1:]):
            total -= math.log((pairs[(a, b)] + 1) / (firsts[a] + V))
    expected = total / (task.eval_windows.shape[0] * 16)
    assert task.bigram_loss() == pytest.approx(expected, rel=1e-12)
    assert 2.0 < expected < math.log(V)                                # better than uniform


def test_steps_per_epoch_from_the_environment(monkeypatch):
    monkeypatch.delenv("MINIDL_GPT_STEPS", raising=False)
    assert gpt_training.default_steps_per_epoch() == gpt_training.STEPS_PER_EPOCH
    monkeypatch.setenv("MINIDL_GPT_STEPS", "7")
    assert gpt_training.default_steps_per_epoch() == 7
    for bad in ("0", "-3", "two"):
        monkeypatch.setenv("MINIDL_GPT_STEPS", bad)
        with pytest.raises(ValueError, match="MINIDL_GPT_STEPS"):
            gpt_training.default_steps_per_epoch()


# ---- the CLI end to end ---------------------------------------------------------
def test_cli_train_gpt_then_sample(tmp_path, small_models, capsys):
    run = tmp_path / "gpt"
    assert cli.main(["train", "gpt", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    for name in ("checkpoint.npz", "config.json", "metrics.json", "curves.png", "attention.png",
                 "samples_epoch_001.txt"):
        assert (run / name).stat().st_size > 0, name
    record = json.loads((run / "metrics.json").read_text())
    record = record[-1] if isinstance(record, list) else record["epochs"][-1]
    assert record["epoch"] == 1 and math.isfinite(record["validation_loss"])
    assert record["bigram_validation_loss"] == pytest.approx(CharacterTask(64).bigram_loss())
    capsys.readouterr()

    command = ["sample", str(run), "--length", "40", "--prompt", "HAMLET", "--seed", "3"]
    assert cli.main(command) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("HAMLET") and len(text) == 46
    assert set(text) <= set(CharacterTask(64).vocabulary)
    assert cli.main(command) == 0
    assert capsys.readouterr().out.rstrip("\n") == text                # same seed, same text
    with pytest.raises(SystemExit, match="never saw"):
        cli.main(["sample", str(run), "--prompt", "\u00e9t\u00e9"])


def test_cli_train_pixel_gpt_then_sample_writes_an_image(tmp_path, small_models):
    run = tmp_path / "pixels"
    assert cli.main(["train", "pixel-gpt", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    assert (run / "samples_epoch_001.png").stat().st_size > 0
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_sample_into_a_missing_directory_fails_in_one_line(tmp_path, small_models, capsys):
    run = tmp_path / "gpt"
    assert cli.main(["train", "gpt", "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    target = tmp_path / "no" / "such" / "dir" / "sample.txt"
    assert cli.main(["sample", str(run), "--length", "5", "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err and str(target) in err
    assert f"the directory {target.parent} does not exist" in err
    assert not target.parent.exists()


def test_best_npz_keeps_the_epoch_with_the_lowest_validation_loss(tmp_path, small_models):
    from minidl.training import RunDirectory

    run = tmp_path / "gpt"
    assert cli.main(["train", "gpt", "--epochs", "3", "--out", str(run), "--no-progress"]) == 0
    history = RunDirectory(run).load_metrics()
    lowest = min(history, key=lambda r: r["validation_loss"])["epoch"]
    assert RunDirectory(run).load_checkpoint("best.npz")["epoch"] == lowest


def test_gpt_rejects_another_dataset(tmp_path, small_models):
    assert cli.main(["train", "gpt", "--dataset", "fashion-mnist", "--epochs", "1",
                     "--out", str(tmp_path / "x"), "--no-progress"]) == 1


@pytest.mark.slow
def test_two_epochs_equal_one_plus_resume(tmp_path, small_models):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli.main(["train", "gpt", "--epochs", "2", "--out", str(straight), "--no-progress"]) == 0
    assert cli.main(["train", "gpt", "--epochs", "1", "--out", str(resumed), "--no-progress"]) == 0
    assert cli.main(["train", "gpt", "--epochs", "2", "--resume", str(resumed), "--no-progress"]) == 0
    a, b = mdl.load(straight / "checkpoint.npz"), mdl.load(resumed / "checkpoint.npz")
    model_keys = [k for k in a if "model" in k]
    assert model_keys and a.keys() == b.keys()
    for key in model_keys:
        np.testing.assert_array_equal(a[key], b[key])


# ---- pixel-gpt judged by a classifier ----------------------------------------------
class FixedAnswer(nn.Module):
    """A stand-in classifier that calls every image the same digit."""

    def __init__(self, digit):
        super().__init__()
        self.digit = digit

    def forward(self, images):
        logits = np.zeros((images.shape[0], 10), dtype=np.float32)
        logits[:, self.digit] = 1.0
        return mdl.tensor(logits)


def test_class_recognition_counts_per_requested_class():
    mdl.manual_seed(0)
    task = PixelTask()
    model = GPT(GPTConfig(vocab_size=task.vocab_size, block_size=64, n_layer=1, n_head=1, n_embd=8))
    rates = gpt_training.class_recognition(model, task, FixedAnswer(3), per_class=1)
    assert rates == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.slow
def test_default_gpt_beats_the_bigram_baseline_by_a_margin(tmp_path, monkeypatch):
    """`minidl train gpt` with its defaults (8 epochs of 100 AdamW steps) must
    predict held-out Shakespeare better than counting character pairs: its
    validation loss at least MARGIN nats below the bigram model's on the same
    windows. A model that only learned pair statistics would tie the baseline."""
    MARGIN = 0.4                      # nats; measured: 1.838 vs 2.451 (seed 0)
    monkeypatch.delenv("MINIDL_GPT_STEPS", raising=False)
    run = tmp_path / "gpt"
    assert cli.main(["train", "gpt", "--out", str(run), "--no-progress"]) == 0
    record = json.loads((run / "metrics.json").read_text())["epochs"][-1]
    figure = (f"gpt: validation loss {record['validation_loss']:.3f} nats, "
              f"bigram baseline {record['bigram_validation_loss']:.3f}, after {record['epoch']} epochs")
    print(figure)
    assert record["validation_loss"] <= record["bigram_validation_loss"] - MARGIN, figure
