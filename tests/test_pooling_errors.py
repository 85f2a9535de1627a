"""Bad arguments to max_pool2d / avg_pool2d raise TypeError or ValueError naming
the op and the shapes, before any kernel runs; a fuzz test throws malformed
arguments and accepts only a Python exception or a correctly shaped result."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F

POOLS = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d}
X = np.zeros((2, 3, 6, 5), np.float32)


@pytest.mark.parametrize("op", POOLS)
@pytest.mark.parametrize("x, args, error, words", [
    (np.zeros((6, 5), np.float32), dict(kernel_size=2), ValueError, ["3-D", "(6, 5)"]),
    (np.zeros((1, 1, 1, 6, 5), np.float32), dict(kernel_size=2), ValueError, ["4-D", "(1, 1, 1, 6, 5)"]),
    (np.zeros((2, 3, 6, 5), np.int64), dict(kernel_size=2), TypeError, ["float32", "int64"]),
    (np.zeros((2, 3, 6, 5), bool), dict(kernel_size=2), TypeError, ["bool"]),
    (X, dict(kernel_size=0), ValueError, ["kernel_size", "positive"]),
    (X, dict(kernel_size=2, stride=0), ValueError, ["stride", "(2, 3, 6, 5)"]),
    (X, dict(kernel_size=2, stride=-1), ValueError, ["stride"]),
    (X, dict(kernel_size=3, padding=2), ValueError, ["padding", "half"]),
    (X, dict(kernel_size=3, padding=(2, 0)), ValueError, ["padding", "half"]),     # the height alone
    (X, dict(kernel_size=(4, 2), padding=(3, 1)), ValueError, ["padding", "half"]),
    (X, dict(kernel_size=2, padding=-1), ValueError, ["padding"]),
    (X, dict(kernel_size=7), ValueError, ["larger than the padded input", "(2, 3, 6, 5)"]),
    (X, dict(kernel_size=(2, 8), padding=(0, 1)), ValueError, ["(6, 7)"]),
    (X, dict(kernel_size=2.5), TypeError, ["kernel_size", "2.5"]),
    (X, dict(kernel_size=(2, 2, 2)), ValueError, ["kernel_size", "pair"]),
    (X, dict(kernel_size=2, stride="1"), TypeError, ["stride"]),
    (X, dict(kernel_size=True), TypeError, ["kernel_size"]),
    (np.zeros((2, 3, 0, 5), np.float32), dict(kernel_size=2, padding=1), ValueError, ["empty"]),
])
def test_bad_input_names_op_and_shapes(op, x, args, error, words):
    with pytest.raises(error) as info:
        POOLS[op](mdl.tensor(x), **args)
    message = str(info.value)
    assert message.startswith(op + ":")
    for word in words:
        assert word in message


def test_validation_happens_before_the_kernel(monkeypatch):
    import minidl.ops.pooling as pooling

    def must_not_run(*args, **kwargs):
        raise AssertionError("kernel ran on invalid input")
    monkeypatch.setattr(pooling, "max_pool2d_forward", must_not_run)
    with pytest.raises(ValueError):
        F.max_pool2d(mdl.tensor(X), 2, stride=0)


def test_backward_leaves_the_incoming_gradient_untouched():
    for op in POOLS.values():
        t = mdl.tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)), requires_grad=True)
        y = op(t, 3, 1, 1)
        g = np.random.default_rng(1).standard_normal(y.shape)
        before = g.copy()
        y.backward(g)
        np.testing.assert_array_equal(g, before)


sizes = st.one_of(st.integers(-3, 12), st.tuples(st.integers(-2, 8), st.integers(-2, 8)),
                  st.tuples(st.integers(0, 3)), st.floats(-2, 9), st.none(), st.just("2"),
                  st.lists(st.integers(1, 3), max_size=3), st.booleans())


@pytest.mark.parametrize("op", POOLS)
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=5),
       dtype=st.sampled_from([np.float32, np.float64, np.int32, np.float16, np.complex64]),
       kernel_size=sizes, stride=sizes, padding=sizes)
def test_fuzz_malformed_arguments_raise_python_errors(op, shape, dtype, kernel_size, stride, padding):
    x = np.ones(shape, dtype)
    try:
        y = POOLS[op](mdl.tensor(x), kernel_size, stride, padding)
    except (ValueError, TypeError):
        return
    # accepted: then it must have been a legal call with PyTorch's output shape
    pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
    k, p = pair(kernel_size), pair(padding)
    s = k if stride is None or stride == [] else pair(stride)
    expected = tuple(x.shape[:-2]) + tuple((n + 2 * pp - kk) // ss + 1
                                           for n, kk, ss, pp in zip(x.shape[-2:], k, s, p))
    assert y.shape == expected
    assert y.dtype == x.dtype
    if op == "max_pool2d" or p == (0, 0):
        assert np.all(y.data == 1)                      # ones in, ones out
    else:                                               # avg counts zero padding
        assert np.all((y.data > 0) & (y.data <= 1))
