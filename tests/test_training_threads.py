"""The training helpers run their steps inside `minidl.threads.training_threads()`
themselves, so a script that calls them (NumPy imported first, as students
write) gets one thread pool at a time without knowing about it; the block
restores BLAS's thread count afterwards, also after an exception, and nests.

What is checked is the configuration (which block is open, how many threads
BLAS may use, read with threadpoolctl), never the clock."""
import json
import os
import subprocess
import sys

import pytest

import minidl as mdl
from minidl import nn, optim, threads
from minidl.data import ArrayDataset, DataLoader, load_dataset
from minidl.training import evaluate, fit, make_config, train_one_epoch
from minidl.training.gan import OptimizerPair, train_step
from minidl.models.gan import GAN, GANConfig

from test_threads import _user_environment

STUDENT_SCRIPT = r"""
import json
import numpy as np                                # first, as a student's script does
import minidl as mdl
from minidl import nn, optim, threads
from minidl.data import ArrayDataset, DataLoader, load_dataset
from minidl.training import evaluate, train_one_epoch
from threadpoolctl import threadpool_info


def blas():
    return min(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


seen = []
original_step = optim.Adam.step


def recording_step(self):
    seen.append(dict(inside=threads.in_training_threads(), blas=blas()))
    return original_step(self)


optim.Adam.step = recording_step
digits = load_dataset("digits", "train")
data = ArrayDataset(digits.images[:96], digits.labels[:96], digits.classes)
mdl.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(4 * 4 * 4, 10))
before = blas()
train_one_epoch(model, DataLoader(data, batch_size=32, shuffle=True, seed=0), optim.Adam(model.parameters()),
                "digits")
after_training = blas()
evaluate(model, data, "digits")
print(json.dumps(dict(before=before, after=after_training, after_evaluation=blas(), seen=seen,
                      chosen=threads.blas_threads())))
"""

BLOCK_SCRIPT = r"""
import json
import minidl
from minidl import threads
from threadpoolctl import threadpool_info


def blas():
    return min(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


record = dict(before=blas(), chosen=threads.blas_threads())
with threads.training_threads():
    record["inside"] = blas()
    with threads.training_threads():
        record["nested"] = blas()
        record["nested_open"] = threads.in_training_threads()
    record["after_nested"] = blas()
    record["still_open"] = threads.in_training_threads()
record["after"] = blas()
record["closed"] = not threads.in_training_threads()
try:
    with threads.training_threads():
        raise KeyError("a step failed")
except KeyError:
    record["after_exception"] = blas()
    record["closed_after_exception"] = not threads.in_training_threads()
print(json.dumps(record))
"""


def _run(script, extra_env=None):
    env = _user_environment()
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_script_that_imports_numpy_first_trains_inside_training_threads():
    answer = _run(STUDENT_SCRIPT)
    assert answer["seen"], answer
    assert all(seen["inside"] for seen in answer["seen"]), answer
    # NumPy loaded first: OpenBLAS's idle threads spin, so BLAS runs one thread while training
    assert answer["chosen"] == 1
    assert all(seen["blas"] == answer["chosen"] for seen in answer["seen"]), answer
    assert answer["after"] == answer["before"] and answer["after_evaluation"] == answer["before"], answer
    if os.cpu_count() >= 2:
        assert answer["before"] >= 2, answer         # so the limit inside was a real change


def test_the_block_sets_the_limit_inside_and_restores_it_after_nesting_and_exceptions():
    # MINIDL_BLAS_THREADS=1 makes the limit inside differ from the default outside
    answer = _run(BLOCK_SCRIPT, {"MINIDL_BLAS_THREADS": "1"})
    assert answer["chosen"] == 1
    assert answer["inside"] == 1 and answer["nested"] == 1 and answer["after_nested"] == 1, answer
    assert answer["nested_open"] and answer["still_open"] and answer["closed"], answer
    assert answer["after"] == answer["before"] and answer["after_exception"] == answer["before"], answer
    assert answer["closed_after_exception"], answer
    if os.cpu_count() >= 2:
        assert answer["before"] >= 2, answer


@pytest.fixture
def steps_record(monkeypatch):
    """Every optimizer step's answer to "inside training_threads()?"."""
    record = []
    original = optim.Adam.step

    def recording_step(self):
        record.append(threads.in_training_threads())
        return original(self)

    monkeypatch.setattr(optim.Adam, "step", recording_step)
    return record


def _tiny_digits(count=64):
    digits = load_dataset("digits", "train")
    return ArrayDataset(digits.images[:count], digits.labels[:count], digits.classes)


def test_train_one_epoch_and_evaluate_open_the_block(steps_record, monkeypatch):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    forwards = []
    original_forward = nn.Sequential.forward

    def recording_forward(self, x):
        forwards.append(threads.in_training_threads())
        return original_forward(self, x)

    monkeypatch.setattr(nn.Sequential, "forward", recording_forward)
    assert not threads.in_training_threads()
    train_one_epoch(model, DataLoader(_tiny_digits(), batch_size=32), optim.Adam(model.parameters()), "digits")
    assert steps_record == [True, True]
    forwards.clear()
    evaluate(model, _tiny_digits(), "digits")
    assert forwards and all(forwards)
    assert not threads.in_training_threads()


def test_fit_runs_every_step_inside_the_block(steps_record, tmp_path):
    fit(make_config("mlp", epochs=1, seed=1), tmp_path / "run", progress=False, log=lambda *a: None,
        plots=False)
    assert steps_record and all(steps_record)
    assert not threads.in_training_threads()


def test_the_gan_step_opens_the_block(steps_record):
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=16))
    real = load_dataset("digits", "train").images[:8] * 2.0 - 1.0
    train_step(model, OptimizerPair(model, 2e-4), real, model.noise(8))
    assert steps_record == [True, True]                 # the discriminator's step, then the generator's
    assert not threads.in_training_threads()


def test_a_helper_that_fails_closes_the_block():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 10))          # digits have 64 pixels: the matmul fails
    with pytest.raises(ValueError):
        train_one_epoch(model, DataLoader(_tiny_digits(), batch_size=32), optim.Adam(model.parameters()),
                        "digits")
    assert not threads.in_training_threads()
