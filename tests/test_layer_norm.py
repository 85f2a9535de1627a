"""layer_norm's kernels (minidl/kernels/layer_norm.py): the compiled loops,
the same loops interpreted and the NumPy twin against float64 formulas
written here and against each other, forward and all three gradients, over
drawn row counts (across the backward's row blocks, with a shorter last
one), widths, dtypes and offsets; against PyTorch where installed; bad input
refused before a kernel runs; inputs never modified.

Tolerances: float64 to 1e-12 relative to the largest value; float32 to 2e-6 of
it for the output and 2e-5 for the gradients (statistics and sums accumulate in
float64, each element's arithmetic is float32; the weight and bias gradients
sum up to 70 rows).
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.kernels import layer_norm as kernel
from minidl.kernels.layer_norm import layer_norm_backward, layer_norm_forward

BACKENDS = ("numba", "numpy", "python")
EPS = 1e-5


def formulas(x, weight, bias, grad, eps=EPS):
    """Forward and gradients in float64, written out per row (shares no code with minidl)."""
    x, weight, bias, grad = (np.asarray(a, np.float64) for a in (x, weight, bias, grad))
    rows, m = x.shape
    out, grad_x = np.empty_like(x), np.empty_like(x)
    grad_weight, grad_bias = np.zeros(m), np.zeros(m)
    for r in range(rows):
        mu = sum(x[r]) / m
        var = sum((v - mu) ** 2 for v in x[r]) / m
        inv_std = 1 / np.sqrt(var + eps)
        x_hat = (x[r] - mu) * inv_std
        out[r] = x_hat * weight + bias
        gh = grad[r] * weight
        grad_x[r] = inv_std * (gh - gh.mean() - x_hat * (gh * x_hat).mean())
        grad_weight += grad[r] * x_hat
        grad_bias += grad[r]
    return out, grad_x, grad_weight, grad_bias


def run(backend, x, weight, bias, grad):
    with kernels.use(backend):
        out, mean, inv_std = layer_norm_forward(x, weight, bias, EPS)
        return (out,) + tuple(layer_norm_backward(grad, x, weight, mean, inv_std))


def assert_close(got, want, dtype, what, forward, terms=1.0):
    """Relative to the largest value, or to `terms`, the largest term grad_x is the
    difference of (inv_std |grad * weight|: a constant row has inv_std = 1/sqrt(eps))."""
    scale = max(1.0, float(np.abs(want).max()), terms)
    tol = (2e-6 if forward else 2e-5) if dtype == np.float32 else 1e-12
    assert got.dtype == dtype, what
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


@st.composite
def cases(draw):
    rows = draw(st.sampled_from([1, 2, 5, kernel.ROW_BLOCK - 1, kernel.ROW_BLOCK, kernel.ROW_BLOCK + 1, 70]))
    m = draw(st.integers(1, 40))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    offset = draw(st.sampled_from([0.0, 20.0, 1e3]))             # activations far from 0: no E[x^2] - E[x]^2
    x = (rng.standard_normal((rows, m)) * 3 + offset).astype(dtype)
    weight, bias = (rng.standard_normal(m).astype(dtype) for _ in range(2))
    grad = rng.standard_normal((rows, m)).astype(dtype)
    return x, weight, bias, grad


@given(case=cases())
def test_every_backend_matches_the_formulas(case):
    x, weight, bias, grad = case
    before = [a.copy() for a in case]
    want = formulas(x, weight, bias, grad)
    x64 = x.astype(np.float64)
    inv_std = 1 / np.sqrt(x64.var(axis=1) + EPS)
    terms = float(np.max(inv_std[:, None] * np.abs(grad * weight)))
    for backend in BACKENDS:
        got = run(backend, x, weight, bias, grad)
        for what, g, w in zip(("out", "grad_x", "grad_weight", "grad_bias"), got, want):
            assert_close(g, w, x.dtype, f"{backend}: {what}", forward=what == "out",
                         terms=terms if what == "grad_x" else 1.0)
    for a, b in zip(case, before):
        np.testing.assert_array_equal(a, b)                       # the caller's arrays untouched


def test_the_statistics_returned_are_the_rows_mean_and_inverse_std():
    x = np.array([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    for backend in BACKENDS:
        with kernels.use(backend):
            out, mean, inv_std = layer_norm_forward(x, np.ones(4), np.zeros(4), 0.25)
        np.testing.assert_allclose(mean, [3.0, 5.0], rtol=1e-15)
        np.testing.assert_allclose(inv_std, [1 / np.sqrt(3.5 + 0.25), 1 / np.sqrt(0.25)], rtol=1e-15)
        np.testing.assert_allclose(out[1], 0.0, atol=0)           # a constant row: x_hat = 0
        np.testing.assert_allclose(out[0], (x[0] - 3) / np.sqrt(3.75), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_op_against_pytorch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 37, 2, 24)) + 4).astype(dtype)
    weight, bias = (rng.standard_normal((2, 24)).astype(dtype) for _ in range(2))
    grad = rng.standard_normal(x.shape).astype(dtype)
    tensors = [mdl.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    out = F.layer_norm(tensors[0], (2, 24), tensors[1], tensors[2], eps=1e-3)
    out.backward(grad)
    reference = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    torch_out = torch.nn.functional.layer_norm(reference[0], (2, 24), reference[1], reference[2], eps=1e-3)
    torch_out.backward(torch.tensor(grad))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, torch_out.detach().numpy(), rtol=tol, atol=tol)
    for mine, theirs in zip(tensors, reference):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=tol * 10, atol=tol * 10)


def test_op_without_weight_or_bias_and_with_non_contiguous_input():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 40)).T                            # (40, 6), a transposed view
    grad = rng.standard_normal((40, 6))
    t = mdl.tensor(x, requires_grad=True)
    F.layer_norm(t, 6).backward(grad)
    want_out, want_grad, _, _ = formulas(x, np.ones(6), np.zeros(6), grad)
    np.testing.assert_allclose(F.layer_norm(mdl.tensor(x), 6).data, want_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.grad, want_grad, rtol=1e-12, atol=1e-12)


def test_float16_and_mixed_dtypes_take_the_numpy_twin():
    x = np.random.default_rng(5).standard_normal((3, 8))
    half = F.layer_norm(mdl.tensor(x.astype(np.float16)), 8)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.data, formulas(x, np.ones(8), np.zeros(8), x)[0], atol=5e-3)
    mixed = F.layer_norm(mdl.tensor(x.astype(np.float32)), 8, mdl.tensor(np.full(8, 2.0)))   # float64 weight
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed.data, 2 * formulas(x, np.ones(8), np.zeros(8), x)[0], rtol=1e-5, atol=1e-5)


x32 = np.zeros((4, 3), np.float32)
ones3 = np.ones(3, np.float32)


@pytest.mark.parametrize("call, message", [
    (lambda: layer_norm_forward(np.zeros(3, np.float32), ones3, ones3, 1e-5), r"expected x of shape \(rows, M\)"),
    (lambda: layer_norm_forward(np.zeros((4, 0), np.float32), ones3[:0], ones3[:0], 1e-5), r"M >= 1"),
    (lambda: layer_norm_forward(x32.astype(np.int32), ones3, ones3, 1e-5), r"float32 or float64"),
    (lambda: layer_norm_forward(x32, np.ones(4, np.float32), ones3, 1e-5), r"vector 0 must have shape \(3,\)"),
    (lambda: layer_norm_forward(x32, ones3, np.ones(3), 1e-5), r"vector 1 must have shape \(3,\) and dtype float32"),
    (lambda: layer_norm_backward(np.zeros((4, 2), np.float32), x32, ones3, np.zeros(4), np.ones(4)),
     r"grad must have shape \(4, 3\)"),
    (lambda: layer_norm_backward(x32, x32, ones3, np.zeros(3), np.zeros(4)), r"mean must have shape \(4,\)"),
    (lambda: layer_norm_backward(x32, x32, ones3, np.zeros(4), np.zeros(4, np.float32)),
     r"inv_std must have shape \(4,\) and dtype float64"),
])
def test_kernel_entry_points_refuse_what_they_cannot_handle(call, message):
    for backend in BACKENDS:
        with kernels.use(backend), pytest.raises(ValueError, match=r"layer_norm_(forward|backward): ") as info:
            call()
        assert re.search(message, str(info.value)), str(info.value)


def test_float32_rows_far_from_zero_keep_float32_precision_in_the_backward():
    """The backward recomputes x_hat with the mean split in two float32 numbers,
    as the forward does (module docstring): rows at 1000 with standard
    deviation 0.4 give gradients within float32 rounding of the float64
    formulas. With the float32 mean alone, x_hat would be shifted by up to
    3e-5 / 0.4 ~ 1e-4, and grad_x and grad_weight with it."""
    rng = np.random.default_rng(4)
    x = (1000.0 + 0.4 * rng.standard_normal((24, 16))).astype(np.float32)
    weight = rng.standard_normal(16).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    grad = rng.standard_normal((24, 16)).astype(np.float32)
    want = formulas(x, weight, bias, grad)
    for backend in BACKENDS:
        got = run(backend, x, weight, bias, grad)
        for what, g, w in zip(("out", "grad_x", "grad_weight", "grad_bias"), got, want):
            error = np.abs(g.astype(np.float64) - w).max() / np.abs(w).max()
            assert error < 1e-5, f"{backend}: {what} off by {error:.1e} of its largest value"


TWO_THREAD_CHILD = """
import numba, numpy as np
from minidl.kernels.layer_norm import layer_norm_backward, layer_norm_forward
from minidl.threads import numba_threads
assert numba.get_num_threads() == 2
rng = np.random.default_rng(0)
x = rng.standard_normal((131072, 8)).astype(np.float32)   # 4096 row blocks of 8 columns
weight, bias = rng.standard_normal(8).astype(np.float32), np.zeros(8, np.float32)
grad = rng.standard_normal(x.shape).astype(np.float32)
out, mean, inv_std = layer_norm_forward(x, weight, bias, 1e-5)
x_hat = (x.astype(np.float64) - mean[:, None]) * inv_std[:, None]
want_weight, want_bias = (grad * x_hat).sum(axis=0), grad.astype(np.float64).sum(axis=0)
with numba_threads(1):
    one = layer_norm_backward(grad, x, weight, mean, inv_std)
for _ in range(50):
    two = layer_norm_backward(grad, x, weight, mean, inv_std)
    for a, b in zip(one, two):
        assert np.array_equal(a, b), "two threads gave another result than one"
    np.testing.assert_allclose(two[1], want_weight, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(two[2], want_bias, rtol=1e-5, atol=1e-3)
"""


def test_weight_and_bias_gradients_on_two_threads_equal_one_thread():
    """Each row block sums its rows into its own line, so two threads never add
    into the same numbers: in a child with two Numba threads, fifty backward
    passes over 4096 row blocks of narrow rows (where two threads adding into
    one shared line would lose updates often) give the one-thread result bit
    for bit, and the float64 sums."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", TWO_THREAD_CHILD], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_compiled_float32_backward_sums_each_row_in_float64():
    """The backward's row sums (of gh = grad * weight and gh * x_hat) run in
    float64 for float32 rows (module docstring): a row whose gh holds 2**25
    and -2**25 at two equal x values, and small terms between them, sums to
    the small terms exactly; a float32 sum loses them next to 2**25, and the
    small entries of grad_x with them. Against the float64 formulas."""
    rng = np.random.default_rng(6)
    rows, m = 4, 40
    x = rng.standard_normal((rows, m)).astype(np.float32)
    x[:, -1] = x[:, 0]                                  # equal x_hat: the big gh * x_hat cancel too
    weight = np.ones(m, np.float32)
    grad = rng.standard_normal((rows, m)).astype(np.float32)
    grad[:, 0], grad[:, -1] = 2.0 ** 25, -2.0 ** 25
    want_grad_x = formulas(x, weight, np.zeros(m, np.float32), grad)[1]
    got_grad_x = run("numba", x, weight, np.zeros(m, np.float32), grad)[1]
    inner = slice(1, m - 1)                             # the entries with small gradients
    np.testing.assert_allclose(got_grad_x[:, inner], want_grad_x[:, inner], rtol=1e-4, atol=1e-4)
