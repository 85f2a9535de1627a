"""Property tests for every row of tests/op_table.py:

(a) the forward pass equals the NumPy reference, in float32 and float64, also
    when the inputs are non-contiguous (transposed or strided views), and keeps
    the input's float dtype;
(b) gradcheck (float64 central differences) passes, through the same views;
(c) neither forward nor backward modifies the input arrays.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
from minidl.gradcheck import gradcheck

from op_table import ROWS

LAYOUTS = ("contiguous", "transposed", "strided")


def make_leaf(array, layout, dtype, requires_grad=False):
    """The leaf tensor that holds `array`'s values in the given memory layout."""
    if layout == "transposed" and array.ndim >= 2:
        base = np.ascontiguousarray(array.astype(dtype).transpose())          # reversed axes
    elif layout == "strided" and array.ndim >= 1:
        base = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype)    # every other column
        base[..., ::2] = array
    else:
        base = array.astype(dtype)
    return mdl.tensor(base, requires_grad=requires_grad)


def view_of(leaf, layout, ndim):
    """The tensor the op sees: a (non-contiguous) view of the leaf with the original values."""
    if layout == "transposed" and ndim >= 2:
        return leaf.permute(*reversed(range(ndim)))
    if layout == "strided" and ndim >= 1:
        return leaf[..., ::2]
    return leaf


def run(op, case, layouts, dtype):
    leaves = [make_leaf(a, lay, dtype, requires_grad=op.differentiable and dtype != np.int64)
              for a, lay in zip(case.arrays, layouts)]
    views = [view_of(t, lay, a.ndim) for t, a, lay in zip(leaves, case.arrays, layouts)]
    for v, a, lay in zip(views, case.arrays, layouts):
        if lay != "contiguous" and a.ndim >= 2 and a.shape[-1] > 1 and a.shape[0] > 1:
            assert not v.data.flags.c_contiguous, "the layout should reach the op as a non-contiguous view"
    return leaves, op.fn(*views, **case.kwargs)


@pytest.mark.parametrize("op", ROWS, ids=lambda op: op.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@settings(max_examples=20)
@given(data=st.data())
def test_forward_matches_numpy_reference(op, dtype, data):
    case = data.draw(op.cases)
    layouts = [data.draw(st.sampled_from(LAYOUTS)) for _ in case.arrays]
    _, out = run(op, case, layouts, dtype)
    # the reference sees the same (dtype-rounded) values, in float64
    expected = np.asarray(op.ref(*[a.astype(dtype).astype(np.float64) for a in case.arrays], **case.kwargs))
    assert out.shape == expected.shape
    if op.differentiable:
        want = op.out_dtype or dtype
        assert out.dtype == want, f"{op.name} gave dtype {out.dtype} for {np.dtype(dtype)} inputs, not {np.dtype(want)}"
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        atol = (op.atol32 if dtype == np.float32 else 1e-12) * scale
        np.testing.assert_allclose(out.data, expected, rtol=1e-5 if dtype == np.float32 else 1e-10, atol=atol)
    else:
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.data, expected)


DIFFERENTIABLE = [op for op in ROWS if op.differentiable]


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
@settings(max_examples=15)
@given(data=st.data())
def test_gradcheck_float64(op, data):
    case = data.draw(op.cases)
    layouts = [data.draw(st.sampled_from(LAYOUTS)) for _ in case.arrays]
    bases = [make_leaf(a, lay, np.float64).data for a, lay in zip(case.arrays, layouts)]

    def fn(*leaves):
        views = [view_of(t, lay, a.ndim) for t, a, lay in zip(leaves, case.arrays, layouts)]
        return op.fn(*views, **case.kwargs)

    assert gradcheck(fn, bases)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
@settings(max_examples=8)
@given(data=st.data())
def test_inputs_not_mutated(op, data):
    case = data.draw(op.cases)
    layouts = [data.draw(st.sampled_from(LAYOUTS)) for _ in case.arrays]
    originals = [a.copy() for a in case.arrays]
    kwargs_before = {k: v.copy() for k, v in case.kwargs.items() if isinstance(v, np.ndarray)}
    leaves, out = run(op, case, layouts, np.float64)
    before = [t.data.copy() for t in leaves]
    out.backward(np.ones(out.shape))
    for t, b in zip(leaves, before):
        np.testing.assert_array_equal(t.data, b)
        assert t.grad is not None and t.grad.shape == t.shape
    for a, o in zip(case.arrays, originals):
        np.testing.assert_array_equal(a, o)
    for k, v in kwargs_before.items():
        np.testing.assert_array_equal(case.kwargs[k], v)
