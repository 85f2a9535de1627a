"""`python benchmarks/cnn_fashion_mnist.py EPOCHS`, the script the README names
for the Fashion-MNIST figures, runs and writes the table it promises: one row
per epoch with wall and CPU seconds and the load, the load before and after
the run, and the thread counts `minidl train` itself would use."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]         # the checkout: the script puts it first on sys.path
SCRIPT = ROOT / "benchmarks" / "cnn_fashion_mnist.py"


def _run(*args):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], env=environment,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.parametrize("args", [(), ("three",), ("0",), ("3", "--out")])
def test_bad_arguments_print_the_usage_and_train_nothing(args):
    result = _run(*args)
    assert result.returncode != 0
    assert "python benchmarks/cnn_fashion_mnist.py 3" in result.stderr       # the usage (the docstring)


def _training_threads():
    """Numba and BLAS threads inside `training_threads()` in a fresh process, as `minidl train` has them."""
    code = ("from minidl.threads import training_threads, blas_threads\n"
            "import numba\n"
            "with training_threads():\n"
            "    print(numba.get_num_threads(), blas_threads())\n")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return tuple(int(n) for n in result.stdout.split())


@pytest.mark.slow
def test_one_epoch_writes_the_table_with_load_and_threads(tmp_path):
    from minidl.data import load_dataset
    try:
        load_dataset("fashion-mnist", "test")
    except FileNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not installed ({str(error).splitlines()[0]})")
    result = _run(1, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    text = (tmp_path / "cnn_fashion_mnist_1.md").read_text()
    assert (tmp_path / "fashion-mnist-1" / "checkpoint.npz").is_file()
    rows = re.findall(r"^\| 1 \| ([0-9.]+) \| ([0-9.]+)% \| ([0-9.]+)% \| (\d+) \| (\d+) \| ([0-9.]+) \|$", text, re.M)
    assert len(rows) == 1, text
    loss, train_acc, test_acc, wall, cpu, load = map(float, rows[0])
    assert 0 < loss < 3 and 70 < test_acc <= 100 and wall > 0 and cpu > 0, text   # one epoch learns
    assert re.search(r"Load average \(1, 5, 15 min\) before the run: [0-9.]+, [0-9.]+, [0-9.]+; "
                     r"after: [0-9.]+, [0-9.]+, [0-9.]+;", text), text
    numba_threads, blas = _training_threads()
    assert f"Threads: Numba {numba_threads} threads, BLAS {blas}." in text, text
