"""Property tests for every row of tests/op_table.py:

(a) the forward pass equals the NumPy reference, in float32 and float64, also
    when the inputs are non-contiguous (transposed or strided views), and keeps
    the input's float dtype;
(b) gradcheck (float64 central differences) passes, through the same views;
(c) neither forward nor backward modifies the input arrays (snapshots taken
    before the op runs), here and for the kernel-backed ops (conv, pooling,
    softmax, gelu, attention) on every backend.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
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


def assert_unchanged(arrays, snapshots, when, name):
    for i, (a, snapshot) in enumerate(zip(arrays, snapshots)):
        assert np.array_equal(a, snapshot, equal_nan=True), f"{name}: input {i} was modified by the {when}"


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
@settings(max_examples=8)
@given(data=st.data())
def test_inputs_not_mutated(op, data):
    """Every array the op is given (the leaves' data, the keyword arrays and the
    output gradient) is copied BEFORE the op runs and compared after the forward
    pass and again after the backward pass."""
    case = data.draw(op.cases)
    layouts = [data.draw(st.sampled_from(LAYOUTS)) for _ in case.arrays]
    leaves = [make_leaf(a, lay, np.float64, requires_grad=True) for a, lay in zip(case.arrays, layouts)]
    views = [view_of(t, lay, a.ndim) for t, a, lay in zip(leaves, case.arrays, layouts)]
    kwarg_arrays = [v for v in case.kwargs.values() if isinstance(v, np.ndarray)]
    watched = [t.data for t in leaves] + list(case.arrays) + kwarg_arrays
    snapshots = [a.copy() for a in watched]
    out = op.fn(*views, **case.kwargs)
    assert_unchanged(watched, snapshots, "forward pass", op.name)
    grad_out = np.random.default_rng(0).uniform(-1, 1, out.shape)
    grad_snapshot = grad_out.copy()
    out.backward(grad_out)
    assert_unchanged(watched, snapshots, "backward pass", op.name)
    assert np.array_equal(grad_out, grad_snapshot), f"{op.name}: backward modified the output gradient"
    for t in leaves:
        assert t.grad is not None and t.grad.shape == t.shape


# ---- the kernel families: the same property through their public ops ---------------
def _conv2d(draw, rng):
    groups = draw(st.sampled_from([1, 2]))
    n, cin, cout = draw(st.integers(1, 3)), 2 * draw(st.integers(1, 2)), 2 * draw(st.integers(1, 2))
    k, stride, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    h, w = draw(st.integers(k, 7)), draw(st.integers(k, 7))
    arrays = [rng.normal(size=(n, cin, h, w)), rng.normal(size=(cout, cin // groups, k, k)), rng.normal(size=cout)]
    return arrays, lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)


def _conv_transpose2d(draw, rng):
    n, cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k, stride, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    padding = min(padding, (k - 1) // 2)                    # keeps the output size >= 1
    arrays = [rng.normal(size=(n, cin, draw(st.integers(1, 5)), draw(st.integers(1, 5)))),
              rng.normal(size=(cin, cout, k, k)), rng.normal(size=cout)]
    return arrays, lambda x, w, b: F.conv_transpose2d(x, w, b, stride=stride, padding=padding)


def _pool(pool):
    def make(draw, rng):
        k = draw(st.integers(1, 3))
        stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, k // 2))
        shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(k, 8)), draw(st.integers(k, 8)))
        x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1)   # no ties
        return [x], lambda x: pool(x, k, stride=stride, padding=padding)
    return make


def _rowwise(fn):
    def make(draw, rng):
        shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        return [rng.normal(0, 3, shape)], lambda x: fn(x, dim=dim)
    return make


def _gelu(draw, rng):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    return [rng.normal(0, 3, shape)], F.gelu


def _sdpa(draw, rng):
    b, L, S, e = draw(st.integers(1, 2)), draw(st.integers(1, 40)), draw(st.integers(1, 70)), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    mask = None
    if kind == "bool":
        mask = rng.random((L, S)) > 0.3
        mask[:, 0] = True
    elif kind == "float":
        mask = rng.normal(size=(L, S))
    arrays = [rng.normal(size=(b, L, e)), rng.normal(size=(b, S, e)), rng.normal(size=(b, S, e))]
    mask_snapshot = None if mask is None else mask.copy()

    def run(q, k, v):
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mdl.tensor(mask),
                                             is_causal=kind == "causal")
        assert mask is None or np.array_equal(mask, mask_snapshot), "sdpa modified the mask"
        return out
    return arrays, run


KERNEL_OPS = {"conv2d": _conv2d, "conv_transpose2d": _conv_transpose2d,
              "max_pool2d": _pool(F.max_pool2d), "avg_pool2d": _pool(F.avg_pool2d),
              "softmax": _rowwise(F.softmax), "log_softmax": _rowwise(F.log_softmax),
              "gelu": _gelu, "scaled_dot_product_attention": _sdpa}


@pytest.mark.parametrize("backend", mdl.kernels.BACKENDS)
@pytest.mark.parametrize("name", list(KERNEL_OPS))
@settings(max_examples=10)
@given(data=st.data())
def test_kernel_ops_do_not_modify_their_inputs(name, backend, data):
    """As above, for the ops backed by kernels, on every backend, in float32 and
    float64, contiguous or not: inputs are copied before the op runs."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    arrays, fn = KERNEL_OPS[name](data.draw, rng)
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    layouts = [data.draw(st.sampled_from(LAYOUTS)) for _ in arrays]
    leaves = [make_leaf(a, lay, dtype, requires_grad=True) for a, lay in zip(arrays, layouts)]
    views = [view_of(t, lay, a.ndim) for t, a, lay in zip(leaves, arrays, layouts)]
    watched = [t.data for t in leaves]
    snapshots = [a.copy() for a in watched]
    with mdl.kernels.use(backend):
        out = fn(*views)
        assert_unchanged(watched, snapshots, "forward pass", name)
        grad_out = rng.uniform(-1, 1, out.shape).astype(dtype)
        grad_snapshot = grad_out.copy()
        out.backward(grad_out)
    assert_unchanged(watched, snapshots, "backward pass", name)
    assert np.array_equal(grad_out, grad_snapshot), f"{name}: backward modified the output gradient"
