"""Rerun a test file in a fresh process: with NUMBA_NUM_THREADS=2, or with
its kernels compiled with index checks (NUMBA_BOUNDSCHECK=1).

Numba fixes its thread count when its pool first starts, and its compile
options when a kernel first compiles, so a test file that wants its checks
repeated that way runs itself again in a child pytest with `marker` set in
the environment (the child then skips the rerun)."""
import os
import subprocess
import sys
from pathlib import Path


def _child_pytest(test_file, marker, settings, node="", extra=(), markers=""):
    """Run pytest on `test_file` (its test `node` only, if given; `extra`
    arguments after it) in a child process with the environment variables
    `settings` and `marker`=1; assert that it exited cleanly; return its output.
    `markers`: the child's -m expression ("" for every test it names, slow
    or not, whatever the default in setup.cfg)."""
    here = Path(test_file).resolve()
    env = dict(os.environ, **settings, **{marker: "1"})
    target = f"{here}::{node}" if node else str(here)
    result = subprocess.run([sys.executable, "-m", "pytest", target, "-m", markers, *extra, "-q",
                             "-p", "no:cacheprovider",
                             "-p", "no:xdist", "--rootdir", str(here.parent.parent)],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def rerun_with_two_threads(test_file, marker, expected_passed):
    """Run `test_file` in a child pytest with two Numba threads and `marker`=1
    set; assert that it passed and that `expected_passed` tests ran. The child
    runs the tests the default run does (not those marked slow: in these files
    they are the bounds-check reruns, which need no second thread count)."""
    output = _child_pytest(test_file, marker, {"NUMBA_NUM_THREADS": "2"}, markers="not slow")
    assert f"{expected_passed} passed" in output, output[-2000:]


def rerun_with_bounds_check(test_file, marker, keyword, cache_dir, expected_passed):
    """Run the tests of `test_file` matching `keyword` in a child pytest whose
    kernels are compiled with NUMBA_BOUNDSCHECK=1 into `cache_dir` (so no
    cached, unchecked machine code is reused) and `marker`=1 set: any index
    outside its array raises there. Assert that it passed and that
    `expected_passed` tests ran."""
    output = _child_pytest(test_file, marker, {"NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(cache_dir)},
                           extra=("-k", keyword))
    assert f"{expected_passed} passed" in output, output[-2000:]


def in_two_thread_child(test_file, test_name, marker):
    """For a test that compares thread counts: True when this process can run
    two Numba threads (or is the child started here). Otherwise runs
    `test_file::test_name` (one parametrization, or all of a test) in a child pytest with
    NUMBA_NUM_THREADS=2 and `marker`=1, asserts that it passed, and returns
    False: the caller then returns, its check done in the child. (The test
    processes run one Numba thread, which `numba_threads(2)` cannot raise.)"""
    import numba
    if numba.config.NUMBA_NUM_THREADS >= 2 or os.environ.get(marker):
        return True
    output = _child_pytest(test_file, marker, {"NUMBA_NUM_THREADS": "2"}, node=test_name)
    assert " passed" in output and " skipped" not in output, output[-2000:]
    return False
