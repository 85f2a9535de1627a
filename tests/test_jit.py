"""First use of the kernels: a one-line notice whenever (and only when) a
kernel compiles, and `minidl compile`, which compiles every family with a
progress bar. Each runs in a fresh process; the notice test uses an empty
NUMBA_CACHE_DIR, so its first process must compile and its second must not.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minidl
from minidl.kernels import warmup

PACKAGE_PARENT = str(Path(minidl.__file__).resolve().parents[1])
FIRST = ("import numpy as np, minidl.functional as F; F.gelu(np.linspace(-2, 2, 5)); "
         "F.softmax(np.ones((3, 4), np.float32)); print('ok')")
# the same kernels, now on a read-only, non-contiguous view: must not compile again
AGAIN = ("import numpy as np, minidl.functional as F; F.gelu(np.linspace(-2, 2, 5)); "
         "x = np.broadcast_to(np.ones((4, 1), np.float32), (4, 3)).T; assert not x.flags.writeable; "
         "F.softmax(x); print('ok')")


def _python(code_or_args, **env):
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    environment = dict(os.environ, **env,
                       PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    environment.pop("NUMBA_DISABLE_JIT", None)
    return subprocess.run([sys.executable] + args, env=environment, capture_output=True, text=True,
                          timeout=600)


def test_notice_is_printed_once_when_kernels_compile_and_never_from_the_cache(tmp_path):
    cache = str(tmp_path / "numba-cache")
    first = _python(FIRST, NUMBA_CACHE_DIR=cache)
    assert first.returncode == 0 and first.stdout.strip() == "ok", first.stderr
    assert first.stderr.count(warmup.NOTICE) == 1, first.stderr
    second = _python(AGAIN, NUMBA_CACHE_DIR=cache)
    assert second.returncode == 0 and second.stdout.strip() == "ok", second.stderr
    assert warmup.NOTICE not in second.stderr, second.stderr
    assert os.listdir(cache), "nothing was cached"


def test_minidl_compile_compiles_every_family_with_a_progress_bar():
    result = _python(["-m", "minidl.cli", "compile"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiling minidl kernels" in result.stderr          # tqdm's bar, on stderr
    for family in warmup.FAMILIES:
        assert f"{family} " in result.stdout, result.stdout


def test_every_family_has_a_warmup_and_it_covers_both_dtypes():
    assert set(warmup.FAMILIES) == {"conv", "pooling", "softmax", "attention", "gelu", "layer_norm", "batch_norm", "adam"}
    assert warmup.DTYPES == (__import__("numpy").float32, __import__("numpy").float64)


@pytest.mark.slow
def test_bench_jit_measures_cold_and_warm_in_fresh_processes(tmp_path):
    result = _python(["-m", "minidl.bench.jit", "--no-train", "--families", "gelu,softmax",
                      "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    text = (tmp_path / "jit.md").read_text()
    assert "| gelu |" in text and "| softmax |" in text and "Load average" in text
    assert "warm run printed the compile notice | no" in text        # the cache was used
    import json
    figures = json.loads((tmp_path / "jit.json").read_text())
    cold = figures["families"]["softmax"]
    assert cold["notice"] and cold["float32"] > 0 and cold["cpu_float32"] > 0
    assert figures["warm"]["imported"] + figures["warm"]["first_calls"] < cold["float32"] + cold["float64"]
