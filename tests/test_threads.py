"""minidl.threads: `minidl train` runs BLAS and Numba's kernels on every core,
one pool after the other, with both pools' idle threads asleep.

How "uses both cores" is shown: a `minidl train` run in a fresh process (as a
user starts it, so `import minidl` comes before NumPy's BLAS is loaded)
records, inside its optimizer steps, how many threads Numba's pool and BLAS
may use, and whether Numba's OpenMP threads were started to wait passively.
Both counts must equal what the libraries use by default on this machine
(every core). This reads the configuration, not the clock, so it holds on a
loaded CI machine; the speed it buys is measured in
benchmarks/results/gpt_step.md. A policy that pins BLAS to one thread, or
starts Numba's pool spinning, fails it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minidl

PACKAGE_PARENT = str(Path(minidl.__file__).resolve().parents[1])

SPY = r"""
import json, sys
import minidl                                     # first, as the `minidl` command does
from minidl import cli, optim, threads
from threadpoolctl import threadpool_info
import numba

seen = []
step = optim.Adam.step                            # AdamW inherits it

def recording_step(self):
    if len(seen) < 3:
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        seen.append(dict(numba=numba.get_num_threads(), blas=min(blas), quiet=threads.start_numba_pool_quietly()))
    return step(self)

optim.Adam.step = recording_step
code = cli.main(sys.argv[1:])
print(json.dumps(dict(code=code, seen=seen, default_numba=numba.config.NUMBA_NUM_THREADS,
                      default_blas=threads._blas_default, layer=numba.threading_layer())))
"""


def _user_environment():
    """os.environ without the thread settings of the test processes
    (tests/conftest.py gives each worker one thread per library)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    for name in ("MINIDL_BLAS_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS",
                 "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env.pop(name, None)
    return env


def _train_and_spy(tmp_path, model, extra_env=None):
    env = _user_environment()
    env.update(extra_env or {})
    command = [sys.executable, "-c", SPY, "train", model, "--epochs", "1", "--max-minutes", "0.05",
               "--no-progress", "--out", str(tmp_path / model)]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["cnn", "gpt"])
def test_minidl_train_runs_blas_and_numba_on_every_core(tmp_path, model):
    answer = _train_and_spy(tmp_path, model)
    assert answer["code"] == 0 and answer["seen"], answer
    if os.cpu_count() >= 2:
        assert answer["default_numba"] >= 2 and answer["default_blas"] >= 2, answer
    for seen in answer["seen"]:
        assert seen["numba"] == answer["default_numba"], answer
        assert seen["blas"] == answer["default_blas"], answer
        assert seen["quiet"] is True, answer


def test_minidl_blas_threads_overrides_the_choice(tmp_path):
    answer = _train_and_spy(tmp_path, "cnn", {"MINIDL_BLAS_THREADS": "1"})
    assert answer["code"] == 0
    assert [seen["blas"] for seen in answer["seen"]] == [1] * len(answer["seen"])


def test_blas_stays_on_one_thread_when_numpy_was_loaded_first():
    # OpenBLAS then read its thread timeout before minidl could set it: its idle
    # threads spin, and two spinning pools on the same cores slow each other.
    code = ("import numpy, json\nimport minidl\nfrom minidl import threads\n"
            "print(json.dumps(threads.blas_threads()))")
    env = _user_environment()
    result = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == 1


def test_minidl_blas_threads_must_be_a_positive_integer(monkeypatch):
    from minidl import threads
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("MINIDL_BLAS_THREADS", bad)
        with pytest.raises(ValueError, match="MINIDL_BLAS_THREADS"):
            threads.blas_threads()
