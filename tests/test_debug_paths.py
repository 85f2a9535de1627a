"""Every debugging path the README promises runs forward AND backward of every
kernel op and agrees with the compiled kernels:

- `minidl.kernels.use("python")`: the loops interpreted, in this process;
- `NUMBA_DISABLE_JIT=1`: Numba compiles nothing, so the default ("numba")
  backend runs its loops as plain Python (a fresh process with the variable
  set, because Numba reads it at import);
- both together.

The cases (tests/kernel_cases.py) are small float64 problems covering conv2d
(padded, strided and dilated), conv_transpose2d, max/avg pooling, softmax and
log_softmax, GELU and attention without a mask, causal, with a bool mask and
with a float mask (whose gradient is checked too).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl

import kernel_cases

HERE = Path(__file__).resolve().parent
TOLERANCE = dict(rtol=1e-9, atol=1e-11)       # float64; backends sum in different orders


@pytest.fixture(scope="module")
def compiled():
    return kernel_cases.compute("numba")


def _assert_agree(results, compiled, label):
    assert set(results) == set(compiled)
    for key, expected in compiled.items():
        assert results[key].shape == expected.shape, f"{label}: {key} shape"
        np.testing.assert_allclose(results[key], expected, **TOLERANCE, err_msg=f"{label}: {key}")


def test_cases_cover_every_kernel_op_with_gradients(compiled):
    ops = {key.split("/")[0] for key in compiled}
    assert {"conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "softmax", "log_softmax",
            "gelu", "sdpa", "sdpa_causal", "sdpa_bool_mask", "sdpa_float_mask"} <= ops
    assert "sdpa_float_mask/grad3" in compiled                 # the mask's gradient
    assert all(np.isfinite(v).all() for v in compiled.values())


def test_python_backend_agrees_with_compiled_kernels(compiled):
    _assert_agree(kernel_cases.compute("python"), compiled, 'kernels.use("python")')


def test_numba_disable_jit_runs_every_kernel_and_agrees(compiled, tmp_path):
    out = tmp_path / "disabled.npz"
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    env = dict(os.environ, NUMBA_DISABLE_JIT="1",
               PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(HERE / "kernel_cases.py"), str(out), "numba", "python"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = np.load(out)
    assert int(saved["disable_jit"]) == 1, "the subprocess did not run with the JIT disabled"
    for backend in ("numba", "python"):
        results = {key.split("/", 1)[1]: saved[key] for key in saved.files if key.startswith(backend + "/")}
        _assert_agree(results, compiled, f'NUMBA_DISABLE_JIT=1, kernels.use("{backend}")')
