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
    assert set(warmup.FAMILIES) == {"conv", "pooling", "softmax", "attention", "gelu", "relu", "layer_norm", "batch_norm", "adam"}
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


@pytest.mark.parametrize("whom", ["process group", "parent only"])
def test_ctrl_c_during_minidl_compile_is_one_line_exit_130_and_leaves_no_worker(tmp_path, whom):
    """Ctrl-C in a terminal reaches the whole process group; `kill -INT` may
    reach the parent only. Either way the command ends at once with its one
    line and exit code 130, and its worker processes end with it."""
    import signal
    import time

    environment = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),   # empty: it must compile
                       PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    environment.pop("NUMBA_DISABLE_JIT", None)
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        # SIGINT as in a terminal: a test run started with SIGINT ignored (a background
        # job of a script, say) passes that on, and Python then installs no handler for it
        child = subprocess.Popen([sys.executable, "-m", "minidl.cli", "compile", "--no-progress"], env=environment,
                                 stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    group = child.pid                                       # a new session: the child leads its own group
    try:
        deadline = time.monotonic() + 120
        while warmup.NOTICE not in log.read_text():         # printed by a worker once it compiles
            assert child.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(1.0)
        if whom == "process group":
            os.killpg(group, signal.SIGINT)
        else:
            os.kill(child.pid, signal.SIGINT)
        returncode = child.wait(timeout=60)
        deadline = time.monotonic() + 30                    # orphans are reaped by init: allow it a moment
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"a process of `minidl compile` outlived it: {whom}")
    finally:
        try:
            os.killpg(group, signal.SIGKILL)                # only if the test failed halfway
        except ProcessLookupError:
            pass
    err = log.read_text()
    assert returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.rstrip().endswith("minidl compile: interrupted") and len(err.splitlines()) <= 6, err


def test_a_worker_that_fails_is_reported_not_waited_for(capfd):
    # a dtype no kernel takes makes both workers fail at their first family; the
    # parent used to wait forever for the results they would never send
    with pytest.raises(RuntimeError, match=r"compiling minidl kernels failed in a worker \(exit code 1\)"):
        warmup.compile_all(dtypes=("no such dtype",), progress=False, processes=2)
    assert "no such dtype" in capfd.readouterr().err           # the worker's own error, on stderr
