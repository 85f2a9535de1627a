"""The parallel kernels, run on two threads, against independent references.

The test process itself runs every library on one thread (tests/conftest.py),
so here each case runs in a child process started with NUMBA_NUM_THREADS=2.
The child runs the public ops (minidl.functional) on inputs large enough for
the kernels to split the work, and reports two things:

- the results, compared here with float64 references that share no code
  with minidl (tests/reference_math.py: scipy.signal for convolution, NumPy
  window slices for pooling, scipy.special for softmax, the textbook
  formulas for attention);
- which threads did the work: the CPU time each thread of the child spent
  while the forward (or the backward) ran, read from /proc/self/task. Split
  work shows up as two threads each with a good share of the CPU time; a
  kernel that ran as one block shows one.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import reference_math as ref

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                reason="per-thread CPU times are read from /proc (Linux)")

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = {"float32": dict(rtol=2e-4, atol=2e-4), "float64": dict(rtol=1e-9, atol=1e-9)}


# ---- child side ------------------------------------------------------------------------
def thread_cpu_seconds():
    """{thread id: user + system CPU seconds} for every thread of this process."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()   # fields after "(name)"
        except OSError:                                           # thread ended meanwhile
            continue
        seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks_per_second   # utime + stime
    return seconds


def threads_that_worked(step, cpu_seconds=0.3, max_calls=5000):
    """Call step() until the process has spent `cpu_seconds` of CPU; return how
    many threads each did at least a quarter as much of it as the busiest one."""
    step()                                                # warm-up: JIT cache load, workspaces
    before = thread_cpu_seconds()
    for _ in range(max_calls):
        step()
        after = thread_cpu_seconds()
        spent = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
        if sum(spent.values()) >= cpu_seconds:
            break
    busiest = max(spent.values())
    return sum(1 for s in spent.values() if s >= 0.25 * busiest and s > 0.02)


def child_main(case_name, out_path):
    """Run one case on two threads; save its results and thread counts to out_path."""
    import numba

    import minidl as mdl
    mdl.kernels.use("numba")
    inputs, run = CASES[case_name]()
    tensors = [mdl.tensor(a, requires_grad=True) for a in inputs]
    out = run(*tensors)
    grad_out = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    out.backward(grad_out, retain_graph=True)
    results = {"out": out.data, "grad_out": grad_out}
    results.update({f"grad{i}": t.grad.copy() for i, t in enumerate(tensors)})

    forward_threads = threads_that_worked(lambda: run(*tensors))
    backward_threads = threads_that_worked(lambda: out.backward(grad_out, retain_graph=True))
    np.savez(out_path, **results)
    with open(out_path + ".json", "w") as report:
        json.dump({"numba_threads": numba.get_num_threads(), "forward_threads": forward_threads,
                   "backward_threads": backward_threads}, report)


def run_on_two_threads(case_name, tmp_path):
    """Run child_main in a fresh interpreter with two Numba threads (BLAS on one)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2", OMP_NUM_THREADS="2",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([HERE] + [p for p in [env.get("PYTHONPATH")] if p])
    out_path = str(tmp_path / "results.npz")
    code = f"import test_parallel_split as t; t.child_main({case_name!r}, {out_path!r})"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out_path + ".json") as report:
        threads = json.load(report)
    with np.load(out_path) as results:
        return dict(results), threads


# ---- cases: inputs and the op, as run by the child ---------------------------------
def _rng_arrays(dtype, *shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _conv(dtype, stride, groups):
    import minidl.functional as F
    # 7 samples (uneven blocks), 16x32x32 in, 16 out channels: 2-16 M multiply-adds
    # per call, above the size at which the kernels split samples over threads
    x, w, b = _rng_arrays(dtype, (7, 16, 32, 32), (16, 16 // groups, 3, 3), (16,))
    return [x, w, b], lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=1, groups=groups)


def _conv_transpose(dtype):
    import minidl.functional as F
    x, w, b = _rng_arrays(dtype, (7, 16, 16, 16), (16, 8, 4, 4), (8,))  # DCGAN-like upsampling
    return [x, w, b], lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1)


def _distinct(dtype, shape):
    """Values with no ties (a max-pool window has one clear winner)."""
    rng = np.random.default_rng(0)
    return [(rng.permutation(int(np.prod(shape))).reshape(shape) * 1e-3).astype(dtype)]


def _pool(dtype, kind):
    import minidl.functional as F
    shape = (8, 16, 48, 48)                               # 295k elements: above the split size
    inputs = _distinct(dtype, shape) if kind == "max" else _rng_arrays(dtype, shape)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    return inputs, lambda x: pool(x, 3, stride=2, padding=1)   # overlapping windows


def _softmax(dtype, log):
    import minidl.functional as F
    (x,) = _rng_arrays(dtype, (512, 1024))
    x *= 3
    return [x], lambda x: (F.log_softmax if log else F.softmax)(x, dim=-1)


def _attention(dtype):
    import minidl.functional as F
    q, k, v = _rng_arrays(dtype, (2, 4, 100, 16), (2, 4, 130, 16), (2, 4, 130, 16))
    return [q, k, v], lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _gelu(dtype):
    import minidl.functional as F
    (x,) = _rng_arrays(dtype, (64, 64, 128))             # 524k elements: 32 blocks of gelu_fast.BLOCK
    x *= 3
    return [x], F.gelu


def _relu(dtype):
    import minidl.functional as F
    (x,) = _rng_arrays(dtype, (64, 64, 128))             # 524k elements: 32 blocks of relu.BLOCK
    return [x], F.relu


def _layer_norm(dtype):
    import minidl.functional as F
    x, weight, bias = _rng_arrays(dtype, (4099, 96), (96,), (96,))   # 393k elements; 129 row blocks, the last short
    x += 5
    return [x, weight, bias], lambda x, w, b: F.layer_norm(x, 96, w, b)


CASES = {}
for _dtype in ("float32", "float64"):
    CASES[f"conv_stride1_{_dtype}"] = lambda d=_dtype: _conv(d, 1, 1)
    CASES[f"conv_stride2_groups2_{_dtype}"] = lambda d=_dtype: _conv(d, 2, 2)
    CASES[f"conv_transpose_{_dtype}"] = lambda d=_dtype: _conv_transpose(d)
    CASES[f"max_pool_{_dtype}"] = lambda d=_dtype: _pool(d, "max")
    CASES[f"avg_pool_{_dtype}"] = lambda d=_dtype: _pool(d, "avg")
    CASES[f"softmax_{_dtype}"] = lambda d=_dtype: _softmax(d, False)
    CASES[f"log_softmax_{_dtype}"] = lambda d=_dtype: _softmax(d, True)
    CASES[f"attention_causal_{_dtype}"] = lambda d=_dtype: _attention(d)
    CASES[f"gelu_{_dtype}"] = lambda d=_dtype: _gelu(d)
    CASES[f"relu_{_dtype}"] = lambda d=_dtype: _relu(d)
    CASES[f"layer_norm_{_dtype}"] = lambda d=_dtype: _layer_norm(d)


# ---- parent side: the references ---------------------------------------------------
def _expected(case_name, inputs, grad_out):
    if case_name.startswith("conv_transpose"):
        x, w, b = inputs
        out = ref.conv_transpose2d(x, w, b, stride=(2, 2), padding=(1, 1))
        return [out, *ref.conv_transpose2d_grads(x, w, grad_out, stride=(2, 2), padding=(1, 1))]
    if case_name.startswith("conv"):
        x, w, b = inputs
        stride, groups = ((2, 2), 2) if "stride2" in case_name else ((1, 1), 1)
        options = dict(stride=stride, padding=(1, 1), groups=groups)
        return [ref.conv2d(x, w, b, **options), *ref.conv2d_grads(x, w, grad_out, **options)]
    if "pool" in case_name:
        (x,) = inputs
        geometry = ((3, 3), (2, 2), (1, 1))
        if case_name.startswith("max"):
            return [ref.max_pool2d(x, *geometry), ref.max_pool2d_grad(x, grad_out, *geometry)]
        return [ref.avg_pool2d(x, *geometry), ref.avg_pool2d_grad(x, grad_out, *geometry)]
    if "softmax" in case_name:
        (x,) = inputs
        log = case_name.startswith("log")
        return [ref.softmax(x, log), ref.softmax_grad(x, grad_out, log)]
    if case_name.startswith("layer_norm"):
        x, weight, bias = (a.astype(np.float64) for a in inputs)
        g = results_grad = grad_out.astype(np.float64)
        mean = x.mean(axis=1, keepdims=True)
        inv_std = 1 / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + 1e-5)
        x_hat = (x - mean) * inv_std                      # the textbook formulas, in float64
        gh = results_grad * weight
        grad_x = inv_std * (gh - gh.mean(axis=1, keepdims=True) - x_hat * (gh * x_hat).mean(axis=1, keepdims=True))
        return [x_hat * weight + bias, grad_x, (g * x_hat).sum(axis=0), g.sum(axis=0)]
    if case_name.startswith("relu"):
        (x,) = inputs
        return [np.where(x > 0, x, 0.0), np.where(x > 0, grad_out, 0.0)]     # np.where, no minidl code
    if case_name.startswith("gelu"):
        (x,) = inputs
        return [ref.gelu(x), ref.gelu_grad(x, grad_out)]
    q, k, v = inputs
    out, _ = ref.attention(q, k, v, causal=True)
    return [out, *ref.attention_grads(q, k, v, grad_out, causal=True)]


# float32 covers the splitting quickly; the float64 twins run in the full suite
SLOW_CASES = {name for name in CASES if name.endswith("float64")}


@pytest.mark.parametrize("case_name", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_CASES else name for name in CASES])
def test_work_is_split_over_two_threads_and_matches_independent_reference(case_name, tmp_path):
    results, threads = run_on_two_threads(case_name, tmp_path)
    assert threads["numba_threads"] == 2, "the child should have started with two Numba threads"
    assert threads["forward_threads"] >= 2, f"forward ran on one thread only: {threads}"
    assert threads["backward_threads"] >= 2, f"backward ran on one thread only: {threads}"

    inputs, _ = CASES[case_name]()                        # the same inputs, rebuilt here
    expected = _expected(case_name, inputs, results["grad_out"])
    got = [results["out"]] + [results[f"grad{i}"] for i in range(len(inputs))]
    tolerance = TOLERANCE[case_name.rsplit("_", 1)[1]]
    for name, a, b in zip(["out"] + [f"grad of input {i}" for i in range(len(inputs))], got, expected):
        assert a.shape == b.shape, f"{name}: shape {a.shape}, expected {b.shape}"
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=tolerance["atol"] * scale,
                                   err_msg=f"{case_name}: {name}")
