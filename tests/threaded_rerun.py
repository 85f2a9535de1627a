"""Rerun a test file in a fresh process with NUMBA_NUM_THREADS=2.

Numba fixes its thread count when its pool first starts, so a test file that
wants its checks repeated on two threads runs itself again in a child pytest
with `marker` set in the environment (the child then skips the rerun)."""
import os
import subprocess
import sys
from pathlib import Path


def rerun_with_two_threads(test_file, marker, expected_passed):
    """Run `test_file` in a child pytest with two Numba threads and `marker`=1
    set; assert that it passed and that `expected_passed` tests ran."""
    here = Path(test_file).resolve()
    env = dict(os.environ, NUMBA_NUM_THREADS="2", **{marker: "1"})
    result = subprocess.run([sys.executable, "-m", "pytest", str(here), "-q", "-p", "no:cacheprovider",
                             "-p", "no:xdist", "--rootdir", str(here.parent.parent)],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{expected_passed} passed" in result.stdout, result.stdout[-2000:]
