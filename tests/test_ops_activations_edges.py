"""relu and leaky_relu compute np.where(a > 0, a, 0) (NaN kept, as PyTorch
does) and np.where(a > 0, a, s a) (and the same for the gradient) without
np.where, which is several times slower; these tests hold them to the
np.where definition bit for bit,
including the values where a shortcut goes wrong: inf and NaN on either
side, -0.0 (x * 0 is -0.0 for negative x), non-contiguous inputs, 0-d
arrays, slopes of 0, above 1 and below 0."""
import warnings

import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F

EDGES = [np.inf, -np.inf, np.nan, 0.0, -0.0, -3.0, 2.5, -1e-30, 1e30]


def _inputs(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 5)).astype(dtype)
    a.flat[:len(EDGES)] = EDGES
    g = rng.standard_normal((6, 5)).astype(dtype)
    g.flat[:len(EDGES)] = EDGES[::-1]
    return a.T, g.T                                          # non-contiguous (5, 6)


def _same_bits(ours, expected):
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    assert np.array_equal(ours, expected, equal_nan=True)
    assert np.array_equal(np.signbit(ours), np.signbit(expected))   # +0.0 vs -0.0


def _relu_reference(a, g):
    """PyTorch's relu: max(a, 0) with NaN kept; the gradient passes where the
    output is > 0 or NaN."""
    passes = (a > 0) | np.isnan(a)
    return np.where(np.isnan(a), a, np.where(a > 0, a, 0)).astype(a.dtype), np.where(passes, g, 0).astype(a.dtype)


def _forward_backward(fn, a, g):
    x = mdl.tensor(a, requires_grad=True)
    y = fn(x)
    y.backward(g)
    return y.data, x.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_is_np_where_bit_for_bit_with_nan_kept(dtype):
    a, g = _inputs(dtype)
    out, grad = _forward_backward(F.relu, a, g)
    expected_out, expected_grad = _relu_reference(a, g)
    _same_bits(out, expected_out)
    _same_bits(grad, expected_grad)
    assert np.isnan(out).sum() == 1                          # the one NaN input stays NaN


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, 1.5, -0.5])
def test_leaky_relu_is_np_where_bit_for_bit(dtype, slope):
    a, g = _inputs(dtype)
    out, grad = _forward_backward(lambda x: F.leaky_relu(x, slope), a, g)
    with np.errstate(invalid="ignore"):                      # the reference's own 0 * inf
        _same_bits(out, np.where(a > 0, a, a * slope))
        _same_bits(grad, np.where(a > 0, g, g * slope))


def test_relu_leaky_relu_and_gelu_of_a_0d_array_forward_and_backward():
    g = np.array(0.5, dtype=np.float32)
    for value in (-2.0, 3.0, np.nan):
        a = np.array(value, dtype=np.float32)
        out, grad = _forward_backward(F.relu, a, g)
        expected_out, expected_grad = _relu_reference(a, g)
        _same_bits(out, expected_out)
        _same_bits(grad, expected_grad)
        out, grad = _forward_backward(lambda x: F.leaky_relu(x, 0.1), a, g)
        _same_bits(out, np.where(a > 0, a, a * 0.1))
        _same_bits(grad, np.where(a > 0, g, g * 0.1))
    out, grad = _forward_backward(F.gelu, np.array(1.5), np.array(1.0))    # float64, 0-d
    phi = np.exp(-1.125) / np.sqrt(2 * np.pi)                               # normal pdf at 1.5
    assert out.shape == () and grad.shape == ()
    assert abs(grad - (out / 1.5 + 1.5 * phi)) < 1e-12                     # Phi(a) + a phi(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_with_slope_0_at_infinities_gives_the_ieee_values_without_a_warning(dtype):
    """out = a if a > 0 else 0 * a: at -inf that product is NaN (0 * inf), and
    the gradient g * 0 is NaN where g is infinite; PyTorch's leaky_relu(x, 0.0)
    gives the same NaNs (and -0.0 for negative finite inputs). No
    RuntimeWarning may escape (NumPy warns on 0 * inf unless told not to)."""
    a = np.array([-np.inf, np.inf, np.nan, -2.0, 0.0, -0.0, 3.0], dtype=dtype)
    g = np.array([1.0, 1.0, 1.0, np.inf, -np.inf, 2.0, np.inf], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # any warning fails the test
        out, grad = _forward_backward(lambda x: F.leaky_relu(x, 0.0), a, g)
    expected_out = np.array([np.nan, np.inf, np.nan, -0.0, 0.0, -0.0, 3.0], dtype=dtype)
    expected_grad = np.array([0.0, 1.0, 0.0, np.nan, np.nan, 0.0, np.inf], dtype=dtype)
    assert np.array_equal(out, expected_out, equal_nan=True)
    assert np.array_equal(grad, expected_grad, equal_nan=True)
    finite = ~np.isnan(expected_out)                           # (a NaN's sign bit is the CPU's choice)
    assert np.array_equal(np.signbit(out[finite]), np.signbit(expected_out[finite]))   # -0.0 kept
    assert not np.signbit(grad[[0, 2, 5]]).any()               # 1 * 0 and 2 * 0 are +0.0


@pytest.mark.parametrize("slope", [0.2, 1.5, -0.5, 0.0])
def test_leaky_relu_keeps_the_input_and_the_gradient_unchanged(slope):
    a = np.array([[-1.0, 2.0, -0.0], [np.nan, 0.5, -3.0]], dtype=np.float32)
    g = np.array([[1.0, -1.0, 2.0], [3.0, 4.0, -5.0]], dtype=np.float32)
    a_before, g_before = a.copy(), g.copy()
    out, grad = _forward_backward(lambda x: F.leaky_relu(x, slope), a, g)
    assert np.array_equal(a, a_before, equal_nan=True) and np.array_equal(g, g_before)
    assert not np.shares_memory(out, a) and not np.shares_memory(grad, g)


def test_integer_inputs_and_a_gradient_of_another_float_width():
    # leaky_relu of integers: the negative side is scaled, the positive one kept
    out = F.leaky_relu(mdl.tensor(np.array([-2, 0, 3])), 0.5).data
    np.testing.assert_array_equal(out, [-1.0, 0.0, 3.0])
    np.testing.assert_array_equal(F.relu(mdl.tensor(np.array([-2, 0, 3]))).data, [0, 0, 3])
    # relu's backward where the gradient is not as wide as the saved bit mask
    # (a float64 gradient reaching a float32 relu, as a hand-written Function may send)
    x = mdl.tensor(np.array([-1.0, 2.0, 0.0, np.nan], np.float32), requires_grad=True)
    y = F.relu(x)
    grad_x = y.grad_fn.backward(np.array([5.0, 6.0, 7.0, 8.0]))      # ReLU's own backward
    np.testing.assert_array_equal(grad_x, [0.0, 6.0, 0.0, 8.0])
