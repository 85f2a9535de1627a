"""GELU's kernels (minidl/kernels/gelu.py, gelu_fast.py) and the gelu op:
the fast loops, the readable loops (interpreted) and the NumPy twin against
SciPy's erf and against each other, forward and backward, over drawn shapes,
dtypes and memory layouts; gradcheck in float64; special values; arrays long
enough for several parallel blocks (and a shorter last one); bad input
refused before a kernel runs; inputs never modified.

Tolerances, relative, from gelu.py's stated precision (eps: the dtype's
machine epsilon): the readable loops and the twin compute in float64 and
round once, within 2 eps in float32; every float64 path, and the fast loops in
float32 (which compute in float32), within 4 eps (1 + x**2): the rounding of
x**2 / 2 is amplified by exp(-x**2 / 2) in the lower tail.
"""
import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.gradcheck import gradcheck
from minidl.kernels import gelu_fast
from minidl.kernels.gelu import gelu_backward, gelu_forward

from op_strategies import ELEMENTWISE_LAYOUTS, in_layout

BACKENDS = ("numba", "numpy", "python")


def scipy_gelu(x):
    """(gelu, d gelu/dx) in float64 from SciPy's erf: shares no code with minidl."""
    x = np.asarray(x, np.float64)
    cdf = 0.5 * scipy.special.erfc(-x / math.sqrt(2.0))      # Phi(x) without cancellation
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return x * cdf, cdf + x * pdf


def run_op(x, grad, backend):
    with kernels.use(backend):
        t = mdl.tensor(x, requires_grad=True)
        y = F.gelu(t)
        y.backward(grad)
    return y.data, t.grad


def assert_gelu_close(actual, expected, x, backend, what):
    """|actual - expected| within gelu.py's stated relative precision (module docstring)."""
    x64 = np.asarray(x, np.float64)
    eps = np.finfo(x.dtype).eps
    if x.dtype == np.float32 and backend != "numba":
        bound = 2 * eps * np.ones_like(x64)                 # float64 all the way, one rounding
    else:
        bound = 4 * eps * (1 + x64 * x64)
    error = np.abs(actual.astype(np.float64) - expected)
    # below the smallest normal number (subnormal results, precision in absolute steps),
    # an absolute error up to that number times |x|
    tiny = np.finfo(x.dtype).tiny * np.maximum(1, np.abs(x64))
    worst = error > bound * np.abs(expected) + tiny
    assert not worst.any(), (f"{backend} {what} {x.dtype}: x = {x64[worst][:5]}, got "
                             f"{actual[worst][:5]}, expected {expected[worst][:5]}")


@st.composite
def gelu_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=0, max_size=4)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scale = draw(st.sampled_from([0.3, 2.0, 8.0]))
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    x = in_layout(x, draw(st.sampled_from(ELEMENTWISE_LAYOUTS)))
    grad = rng.standard_normal(shape).astype(dtype)
    return x, grad


@settings(max_examples=60)
@given(case=gelu_cases())
def test_forward_and_backward_match_scipy_on_every_backend(case):
    x, grad = case
    x_before, grad_before = x.copy(), grad.copy()
    want_out, want_slope = scipy_gelu(x)
    for backend in BACKENDS:
        out, grad_x = run_op(x, grad, backend)
        assert out.dtype == grad_x.dtype == x.dtype and out.shape == grad_x.shape == x.shape
        assert_gelu_close(out, want_out, x, backend, "forward")
        want_grad = grad.astype(np.float64) * want_slope
        np.testing.assert_allclose(grad_x, want_grad, rtol=5e-7 if x.dtype == np.float32 else 1e-13,
                                   atol=1e-6 if x.dtype == np.float32 else 1e-14, err_msg=backend)
    np.testing.assert_array_equal(x, x_before)                    # caller's arrays untouched
    np.testing.assert_array_equal(grad, grad_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_loops_equal_the_readable_loops_over_several_blocks(dtype):
    """3.5 blocks of gelu_fast.BLOCK elements: every block, and the shorter last one."""
    n = 3 * gelu_fast.BLOCK + gelu_fast.BLOCK // 2
    x = (np.random.default_rng(1).standard_normal(n) * 4).astype(dtype)
    grad = np.random.default_rng(2).standard_normal(n).astype(dtype)
    with kernels.use("python"):
        out_ref, cdf_ref = gelu_forward(x)
        grad_ref = gelu_backward(grad, x, cdf_ref)
    out, cdf = gelu_forward(x)
    grad_x = gelu_backward(grad, x, cdf)
    # the readable loops call math.erfc and math.exp in float64; the fast ones Cody's
    # erfc and the polynomial exp in the arrays' dtype
    for name, a, b in (("out", out, out_ref), ("cdf", cdf, cdf_ref)):
        assert a.dtype == dtype and a.shape == (n,), name
        assert_gelu_close(a, b.astype(np.float64), x, "numba", name)
    assert grad_x.dtype == dtype and grad_x.shape == (n,)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(grad_x, grad_ref, **tol)


def test_values_by_hand():
    x = np.array([0.0, 1.0, -1.0, 2.0, -3.0])
    # Phi(1) = 0.8413447460685429, Phi(2) = 0.9772498680518208, Phi(-3) = 0.0013498980316301
    want = np.array([0.0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416,
                     -0.0040496940948903])
    for backend in BACKENDS:
        with kernels.use(backend):
            out, cdf = gelu_forward(x)
        np.testing.assert_allclose(out, want, rtol=1e-13, err_msg=backend)
        np.testing.assert_allclose(cdf[1], 0.8413447460685429, rtol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_probabilities_keep_their_relative_precision(backend, dtype):
    """Phi(x) for x far below 0 computed as erfc / 2, not 1 + erf (which cancels:
    in float32 1 + erf(-5 / sqrt 2) keeps one digit)."""
    x = np.array([-5.0, -8.0, -12.0], dtype)
    # Phi(-5) = 2.866515718791939e-07, Phi(-8) = 6.22096057427178e-16, Phi(-12) = 1.7764821120776e-33
    want = np.array([2.866515718791939e-07, 6.22096057427178e-16, 1.7764821120776e-33])
    with kernels.use(backend):
        out, cdf = gelu_forward(x)
    np.testing.assert_allclose(cdf, want, rtol=2e-5 if dtype == np.float32 else 1e-12, err_msg=backend)
    np.testing.assert_allclose(out, x.astype(np.float64) * want, rtol=2e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_probabilities_far_in_the_tail_keep_their_relative_precision(backend):
    """Phi(x) for x from -36.9 to -37.4 (|x| / sqrt 2 past 26, the last stretch
    before erfc leaves the normal float64 range), against SciPy's erfc: Cody's
    third range holds there, in the twin and the fast loops alike."""
    x = np.array([-36.9, -37.2, -37.4])
    want = 0.5 * scipy.special.erfc(-x / math.sqrt(2.0))
    assert (want > np.finfo(np.float64).tiny).all()
    with kernels.use(backend):
        out, cdf = gelu_forward(x)
    np.testing.assert_allclose(cdf, want, rtol=1e-12, err_msg=backend)
    np.testing.assert_allclose(out, x * want, rtol=1e-12, err_msg=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(backend, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 40.0, -40.0], dtype)
    with kernels.use(backend), np.errstate(invalid="ignore"):
        out, cdf = gelu_forward(x)
        slope = gelu_backward(np.ones_like(x), x, cdf)
    assert np.isnan(out[0]) and out[1] == np.inf and np.isnan(out[2])     # -inf * Phi(-inf) = -inf * 0
    assert out[3] == 0 and out[4] == 0 and out[5] == 40 and out[6] == 0
    np.testing.assert_array_equal(cdf[1:], np.array([1, 0, 0.5, 0.5, 1, 0], dtype))
    assert np.isnan(slope[0]) and slope[3] == slope[4] == 0.5 and slope[5] == 1 and slope[6] == 0


@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
def test_gradcheck_float64(shape):
    x = np.random.default_rng(3).standard_normal(shape) * 2
    assert gradcheck(F.gelu, [x])


def test_gradcheck_float64_across_the_erf_ranges():
    """Points in each of Cody's three ranges (|x / sqrt 2| <= 0.5, <= 4, > 4) and at their edges."""
    x = np.array([-7.0, -5.66, -5.6, -3.0, -0.71, -0.7, 0.0, 0.3, 0.7, 0.71, 2.5, 5.65, 5.7, 9.0])
    assert gradcheck(F.gelu, [x])


@pytest.mark.parametrize("call", [
    lambda: gelu_forward(np.zeros((2, 3), np.float32)),                     # not 1-D
    lambda: gelu_forward(np.zeros(4, np.int64)),                            # not float
    lambda: gelu_forward(np.zeros(4, np.float16)),
    lambda: gelu_backward(np.zeros(4), np.zeros(5), np.zeros(5)),           # lengths differ
    lambda: gelu_backward(np.zeros(4, np.float32), np.zeros(4), np.zeros(4)),   # dtypes differ
])
def test_kernel_entry_points_refuse_what_they_cannot_handle(call):
    for backend in BACKENDS:
        with kernels.use(backend), pytest.raises(ValueError, match=r"gelu_(forward|backward): expected 1-D"):
            call()


def test_op_keeps_integer_and_half_inputs_working():
    out = F.gelu(mdl.tensor(np.array([-1, 0, 2])))                          # ints become float32
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, scipy_gelu(np.array([-1.0, 0.0, 2.0]))[0], rtol=1e-6)
    half = mdl.tensor(np.array([-1.0, 0.5, 2.0], np.float16), requires_grad=True)
    y = F.gelu(half)                                                        # NumPy's chain for float16
    y.backward(np.ones(3, np.float16))
    assert y.dtype == np.float16 and half.grad.dtype == np.float16
    np.testing.assert_allclose(half.grad.astype(np.float64), scipy_gelu([-1.0, 0.5, 2.0])[1], rtol=2e-3)


def test_backward_with_a_gradient_of_another_dtype_follows_numpy_promotion():
    x = mdl.tensor(np.array([0.5, -1.5], np.float32), requires_grad=True)
    F.gelu(x).backward(np.array([1.0, 2.0]))                                # float64 gradient
    np.testing.assert_allclose(x.grad, np.array([1.0, 2.0]) * scipy_gelu([0.5, -1.5])[1], rtol=1e-6)


def test_float32_fast_loops_run_the_one_formula_normal_cdf():
    """The fast float32 forward's cdf is erf.normal_cdf_float32 of each element
    (bit for bit but for the odd last bit a compiler may round differently in a
    SIMD loop), not Cody's three ranges, which differ in the last bit of about
    a third of them; float64 keeps Cody's."""
    from minidl.kernels.erf import normal_cdf_branch_free, normal_cdf_float32
    x = (np.random.default_rng(5).standard_normal(3000) * 3).astype(np.float32)
    _, cdf = gelu_forward(x)
    assert np.mean(cdf == np.array([normal_cdf_float32(v) for v in x], np.float32)) > 0.95
    assert np.mean(cdf == np.array([normal_cdf_branch_free(v) for v in x], np.float32)) < 0.85
    _, cdf64 = gelu_forward(x.astype(np.float64))
    assert np.array_equal(cdf64, np.array([normal_cdf_branch_free(v) for v in x.astype(np.float64)]))
