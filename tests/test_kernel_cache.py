"""Numba's on-disk cache must follow edits of the files a kernel CALLS, not
only of the file that defines it (minidl/kernels/cache_check.py)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import minidl
from minidl.kernels import cache_check

PACKAGE = Path(minidl.__file__).resolve().parent

# softmax.py's loops call the exp of fast_exp.py; the script prints the
# package it imported and a float32 and a float64 softmax of one row.
SCRIPT = """
import numpy as np
import minidl
from minidl.kernels.softmax import softmax_forward
row = [[0.0, -3.0, -1.0, -7.5]]
print(minidl.__file__)
for dtype in (np.float32, np.float64):
    print(repr(softmax_forward(np.array(row, dtype=dtype)).tolist()))
"""

# A planted change in fast_exp.py alone: ln 2 replaced by 0.5 in the range
# reduction, which makes every exp(x) with x <= -0.35 wrong.
PLANT = "\nLN2_HI = 0.5\nLN2_HI_32 = np.float32(0.5)\n"


def run_copy(copy, cache):
    env = dict(os.environ, PYTHONPATH=str(copy), NUMBA_CACHE_DIR=str(cache))
    env.pop("NUMBA_DISABLE_JIT", None)
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=copy,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    imported, *values = result.stdout.strip().splitlines()
    assert Path(imported).resolve().is_relative_to(copy), imported
    return values, result.stderr


def test_editing_a_called_file_recompiles_the_kernels_that_call_it(tmp_path):
    copy, cache = tmp_path / "checkout", tmp_path / "numba-cache"
    shutil.copytree(PACKAGE, copy / "minidl", ignore=shutil.ignore_patterns("__pycache__"))
    fast_exp = copy / "minidl" / "kernels" / "fast_exp.py"
    assert "LN2_HI_32" in fast_exp.read_text() and "LN2_HI =" in fast_exp.read_text()

    first, _ = run_copy(copy, cache)
    cached = sorted(p.name for p in cache.rglob("softmax.*.nbi"))
    assert cached, f"no cached softmax kernel under {cache}"
    again, stderr = run_copy(copy, cache)                  # unchanged sources: loaded, not compiled
    assert again == first
    assert "compiling minidl kernels" not in stderr
    assert sorted(p.name for p in cache.rglob("softmax.*.nbi")) == cached

    fast_exp.write_text(fast_exp.read_text() + PLANT)      # softmax.py itself is untouched
    planted, stderr = run_copy(copy, cache)
    assert "compiling minidl kernels" in stderr
    for before, after in zip(first, planted):
        assert before != after, ("the cached softmax kept the exp of the unedited "
                                 f"fast_exp.py: {after}")


def test_only_minidl_kernel_files_are_deleted(tmp_path):
    names = ["softmax.softmax_forward_loops-93.py311.nbi",
             "softmax.softmax_forward_loops-93.py311.1.nbc",
             "conv_fast.backward_kernel-10.py311.nbi",
             "someone_else.kernel-3.py311.nbi",       # not a minidl kernel module
             "softmax.py",                            # not a cache file
             cache_check.STAMP_NAME]
    for name in names:
        (tmp_path / name).write_text("x")
    found = sorted(p.name for p in cache_check.cached_kernel_files(tmp_path))
    assert found == sorted(names[:3])


def test_the_digest_follows_every_kernel_file():
    digest = cache_check.sources_digest()
    assert len(digest) == 64 and digest == cache_check.sources_digest()
    names = {p.name for p in cache_check.kernel_modules()}
    assert {"fast_exp.py", "softmax.py", "conv_fast.py", "cache_check.py"} <= names


def test_the_stamp_matches_the_sources_after_import():
    stamp = cache_check.cache_directory() / cache_check.STAMP_NAME
    assert stamp.read_text().strip() == cache_check.sources_digest()
