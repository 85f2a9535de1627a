"""ReLU's kernels (minidl/kernels/relu.py) and the relu op: the parallel
blocks, the readable loops (interpreted) and the NumPy twin against np.where
and against each other, forward and backward, over drawn shapes, dtypes and
memory layouts; special values (NaN, +-inf, -0.0); arrays long enough for
several parallel blocks and a shorter last one; gradcheck in float64; bad
input refused before a kernel runs; inputs never modified.

ReLU is exact (a selection, no arithmetic), so every comparison is bit for bit.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.gradcheck import gradcheck
from minidl.kernels import relu as relu_kernels
from minidl.kernels.relu import relu_backward, relu_forward

from op_strategies import ELEMENTWISE_LAYOUTS, in_layout

BACKENDS = ("numba", "numpy", "python")


def reference(x, grad):
    """(relu(x), d/dx applied to grad) by np.where, in x's dtype; shares no code with minidl."""
    keep = (x > 0) | np.isnan(x)
    return np.where(keep, x, np.zeros((), x.dtype)), np.where(keep, grad, np.zeros((), grad.dtype))


def bits(array):
    """The array's bytes, so +0.0 and -0.0 (and NaN payloads) compare exactly."""
    return np.ascontiguousarray(array).view(np.dtype(f"u{array.dtype.itemsize}"))


def run_op(x, grad, backend):
    with kernels.use(backend):
        t = mdl.tensor(x, requires_grad=True)
        y = F.relu(t)
        y.backward(grad)
    return y.data, t.grad


@st.composite
def relu_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=0, max_size=4)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape).astype(dtype)
    if x.size and draw(st.booleans()):                             # some special values at drawn places
        flat = x.reshape(-1)
        places = rng.integers(0, flat.size, size=min(4, flat.size))
        flat[places] = rng.choice(np.array([0.0, -0.0, np.nan, np.inf, -np.inf], dtype), size=places.size)
    x = in_layout(x, draw(st.sampled_from(ELEMENTWISE_LAYOUTS)))
    grad = rng.standard_normal(shape).astype(dtype)
    return x, grad


@settings(max_examples=60, deadline=None)
@given(relu_cases(), st.sampled_from(BACKENDS))
def test_relu_op_matches_np_where_bit_for_bit(case, backend):
    x, grad = case
    before = x.copy()
    out, grad_x = run_op(x, grad, backend)
    expected_out, expected_grad = reference(x, grad)
    assert out.dtype == x.dtype and grad_x.dtype == x.dtype and out.shape == x.shape
    np.testing.assert_array_equal(bits(out), bits(expected_out))
    np.testing.assert_array_equal(bits(grad_x), bits(expected_grad))
    np.testing.assert_array_equal(bits(x), bits(before))             # the input is not touched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, relu_kernels.BLOCK - 1, relu_kernels.BLOCK, 3 * relu_kernels.BLOCK + 7,
                               (1 << 18) + 5])
def test_kernels_agree_across_blocks(n, dtype):
    """Lengths around the block size and past the one-thread threshold (so the
    parallel blocks run, with a shorter last one): every backend gives the
    same bits, and every element of the outputs is written."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    x[::97] = -0.0
    x[::101] = np.nan
    grad = rng.standard_normal(n).astype(dtype)
    expected_out, expected_grad = reference(x, grad)
    for backend in BACKENDS:
        if backend == "python" and n > 4 * relu_kernels.BLOCK:
            continue                                                # interpreted: long enough above
        with kernels.use(backend):
            out, keep = relu_forward(x)
            grad_x = relu_backward(grad, keep)
        assert keep.dtype == np.bool_ and keep.shape == (n,)
        np.testing.assert_array_equal(keep, (x > 0) | np.isnan(x), err_msg=backend)
        np.testing.assert_array_equal(bits(out), bits(expected_out), err_msg=backend)
        np.testing.assert_array_equal(bits(grad_x), bits(expected_grad), err_msg=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_special_values_by_hand(backend):
    x = np.array([-2.0, -0.0, 0.0, 3.5, np.nan, np.inf, -np.inf, 1e-45], np.float32)
    grad = np.arange(1, 9, dtype=np.float32)
    out, grad_x = run_op(x, grad, backend)
    np.testing.assert_array_equal(out, [0, 0, 0, 3.5, np.nan, np.inf, 0, np.float32(1e-45)])
    assert not np.signbit(out[:3]).any()                              # +0.0, never -0.0
    np.testing.assert_array_equal(grad_x, [0, 0, 0, 4, 5, 6, 0, 8])  # NaN passes its gradient on


def test_gradcheck_float64():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 0.05] = 0.5                                          # away from the kink
    assert gradcheck(F.relu, (mdl.tensor(x, requires_grad=True),))


def test_float16_and_integer_inputs_keep_their_paths():
    x16 = np.array([-1.0, 0.0, 2.0, np.nan], np.float16)
    t = mdl.tensor(x16, requires_grad=True)
    y = F.relu(t)
    y.backward(np.ones(4, np.float16))
    assert y.dtype == np.float16 and t.grad.dtype == np.float16
    np.testing.assert_array_equal(y.data, np.array([0, 0, 2, np.nan], np.float16))
    np.testing.assert_array_equal(t.grad, np.array([0, 0, 1, 1], np.float16))
    xi = np.array([-3, 0, 4], np.int64)
    assert F.relu(mdl.tensor(xi)).data.tolist() == [0, 0, 4]


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_does_not_depend_on_the_output_array(backend):
    """The backward uses the mask kept from forward: writing into the output's
    array afterwards does not change the gradient."""
    x = np.array([-1.0, 2.0, -3.0, 4.0])
    with kernels.use(backend):
        t = mdl.tensor(x, requires_grad=True)
        y = F.relu(t)
        y.data[...] = [5.0, -5.0, 5.0, -5.0]
        y.backward(np.ones(4))
    np.testing.assert_array_equal(t.grad, [0, 1, 0, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_direct_calls_with_wrong_arrays_are_refused(backend):
    x = np.ones(5, np.float32)
    with kernels.use(backend):
        with pytest.raises(ValueError, match=r"relu_forward: expected 1-D.*\(2, 3\) float32"):
            relu_forward(np.ones((2, 3), np.float32))
        with pytest.raises(ValueError, match=r"relu_forward.*int64"):
            relu_forward(np.ones(5, np.int64))
        _, keep = relu_forward(x)
        with pytest.raises(ValueError, match=r"relu_backward.*\(4,\) float32, \(5,\) bool"):
            relu_backward(np.ones(4, np.float32), keep)              # lengths differ: no read past the mask
        with pytest.raises(ValueError, match=r"relu_backward.*\(5,\) float32, \(5,\) float32"):
            relu_backward(x, x)                                      # the mask must be bool
        with pytest.raises(ValueError, match=r"relu_backward.*int32"):
            relu_backward(np.ones(5, np.int32), keep)
