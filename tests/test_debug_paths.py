"""Every debugging path the README promises runs forward AND backward of every
kernel op and agrees with the compiled kernels:

- `minidl.kernels.use("python")`: the loops interpreted, in this process;
- `NUMBA_DISABLE_JIT=1`: Numba compiles nothing, so the default ("numba")
  backend runs its loops as plain Python (a fresh process with the variable
  set, because Numba reads it at import);
- both together.

The cases (tests/kernel_cases.py) are small float64 problems covering conv2d
(padded, strided and dilated), conv_transpose2d, max/avg pooling, softmax and
log_softmax, GELU, layer_norm, batch_norm (training and eval) and attention without a mask, causal, with a bool mask and
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
            "gelu", "relu", "layer_norm", "batch_norm", "batch_norm_eval", "sdpa", "sdpa_causal", "sdpa_bool_mask", "sdpa_float_mask"} <= ops
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


def _line_of(path, text):
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("mode", ["NUMBA_DISABLE_JIT=1", 'kernels.use("python")'])
def test_pdb_stops_on_a_line_inside_a_kernel_loop(mode, tmp_path):
    """What the README shows: a debugger breakpoint on a line of a kernel's loop
    is reached, and the loop's variables can be printed there."""
    kernel_file = Path(minidl.__file__).resolve().parent / "kernels" / "pooling.py"
    line = _line_of(kernel_file, "out[p, i, j] = best")
    script = tmp_path / "my_script.py"
    use = 'kernels.use("python")' if mode.startswith("kernels") else 'kernels.use("numba")'
    script.write_text("import numpy as np\nimport minidl.functional as F\nfrom minidl import kernels\n"
                      f"with {use}:\n"
                      "    y = F.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)\n"
                      "print('result', y.data.ravel().tolist())\n")
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    env.pop("NUMBA_DISABLE_JIT", None)
    if mode.startswith("NUMBA"):
        env["NUMBA_DISABLE_JIT"] = "1"
    commands = f"break {kernel_file}:{line}\ncontinue\np ('at', i, j, float(best))\nclear 1\ncontinue\nquit\n"
    result = subprocess.run([sys.executable, "-m", "pdb", str(script)], input=commands, env=env,
                            capture_output=True, text=True, timeout=300)
    assert f"pooling.py({line})" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert "('at', 0, 0, 5.0)" in result.stdout, result.stdout[-2000:]       # first window's max
    assert "result [5.0, 7.0, 13.0, 15.0]" in result.stdout


def test_breakpoint_in_an_edited_kernel_stops_there_with_the_jit_disabled(tmp_path):
    """The README's recipe on a copy of the package: add breakpoint() inside a
    kernel loop, run with NUMBA_DISABLE_JIT=1, and the debugger stops there."""
    import shutil
    source = Path(minidl.__file__).resolve().parent
    copy = tmp_path / "checkout" / "minidl"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    kernel_file = copy / "kernels" / "pooling.py"
    text = kernel_file.read_text()
    anchor = "                out[p, i, j] = best\n"
    assert text.count(anchor) == 1
    kernel_file.write_text(text.replace(anchor, "                breakpoint()\n" + anchor))
    script = tmp_path / "my_script.py"
    script.write_text("import numpy as np\nimport minidl.functional as F\n"
                      "y = F.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)\n"
                      "print('result', y.data.ravel().tolist())\n")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(copy.parent))
    env.pop("PYTHONBREAKPOINT", None)
    result = subprocess.run([sys.executable, str(script)], input="p ('at', i, j, float(best))\ncontinue\n" * 4,
                            env=env, capture_output=True, text=True, timeout=300)
    assert "(Pdb)" in result.stdout and "('at', 0, 0, 5.0)" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert "result [5.0, 7.0, 13.0, 15.0]" in result.stdout
