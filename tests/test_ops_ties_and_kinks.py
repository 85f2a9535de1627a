"""Gradients where finite differences cannot check them: at kinks (|x| at 0,
clamp at its bounds, x ** y at x = 0) and at ties (max/min over a dim,
amax/amin, maximum/minimum). Each expected gradient is written out by hand
from PyTorch's documented convention, and compared with PyTorch itself when
it is installed. Also matmul's gradient when the batch dims broadcast,
against NumPy's einsum."""
import numpy as np
import pytest

import minidl as mdl

try:
    import torch
except ImportError:                     # the hand-written expectations still run
    torch = None


def _grad(fn, *arrays):
    """Gradients of sum(fn(*tensors) * weights) for fixed weights 1, 2, 3, ... (float64)."""
    tensors = [mdl.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = np.arange(1, out.data.size + 1, dtype=np.float64).reshape(out.shape)
    out.backward(weights)
    return [t.grad for t in tensors]


def _torch_grad(fn, *arrays):
    tensors = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = torch.arange(1, out.numel() + 1, dtype=torch.float64).reshape(out.shape)
    out.backward(weights)
    return [t.grad.numpy() for t in tensors]


# (name, minidl fn, torch fn, inputs, expected gradients written by hand with weights 1, 2, 3 ...)
CASES = [
    ("abs at 0 has gradient 0", lambda x: x.abs(), lambda x: x.abs(),
     [[-2.0, 0.0, 3.0]], [[-1.0, 0.0, 3.0]]),
    ("clamp passes the gradient at both bounds", lambda x: mdl.clamp(x, -1.0, 1.0),
     lambda x: x.clamp(-1.0, 1.0), [[-2.0, -1.0, 0.5, 1.0, 2.0]], [[0.0, 2.0, 3.0, 4.0, 0.0]]),
    ("clamp with only a lower bound", lambda x: mdl.clamp(x, min=0.0), lambda x: x.clamp(min=0.0),
     [[-1.0, 0.0, 2.0]], [[0.0, 2.0, 3.0]]),
    ("max over a dim sends a tie's gradient to the first maximum", lambda x: x.max(dim=1),
     lambda x: x.max(dim=1).values, [[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]], [[[0, 1, 0], [2, 0, 0]]]),
    ("min over a dim sends a tie's gradient to the first minimum", lambda x: x.min(dim=0),
     lambda x: x.min(dim=0).values, [[[1.0, 0.0], [1.0, 0.0]]], [[[1, 2], [0, 0]]]),
    ("max over a dim with keepdim, ties in the middle", lambda x: x.max(dim=0, keepdim=True),
     lambda x: x.max(dim=0, keepdim=True).values, [[[0.0, 5.0], [4.0, 5.0], [4.0, 1.0]]],
     [[[0, 2], [1, 0], [0, 0]]]),
    ("max of everything splits a tie evenly", lambda x: x.max(), lambda x: x.max(),
     [[[4.0, 1.0], [4.0, 4.0]]], [[[1 / 3, 0], [1 / 3, 1 / 3]]]),
    ("amax over a dim splits a tie evenly", lambda x: mdl.amax(x, dim=1), lambda x: x.amax(dim=1),
     [[[1.0, 3.0, 3.0], [0.0, 2.0, 1.0]]], [[[0, 0.5, 0.5], [0, 2, 0]]]),
    ("amin over two dims splits a tie evenly", lambda x: mdl.amin(x, dim=(0, 1)), lambda x: x.amin(dim=(0, 1)),
     [[[1.0, 0.0], [0.0, 5.0]]], [[[0, 0.5], [0.5, 0]]]),
    ("maximum splits a tie in half", lambda a, b: mdl.maximum(a, b), lambda a, b: torch.maximum(a, b),
     [[1.0, 2.0, 3.0], [1.0, 5.0, 0.0]], [[0.5, 0, 3], [0.5, 2, 0]]),
    # a (2, 1) against b (2,): out = [[min(1, 1), min(1, 2)], [min(4, 1), min(4, 2)]], weights [[1, 2], [3, 4]]
    ("minimum splits a broadcast tie in half", lambda a, b: mdl.minimum(a, b),
     lambda a, b: torch.minimum(a, b), [[[1.0], [4.0]], [1.0, 2.0]], [[[0.5 + 2], [0.0]], [0.5 + 3, 4.0]]),
    ("x ** y at x = 0: no gradient in y for y >= 0, none in x for y = 0", lambda a, b: a ** b,
     lambda a, b: a ** b, [[0.0, 0.0, 2.0], [0.0, 2.0, 1.0]], [[0.0, 0.0, 3.0], [0.0, 0.0, 3 * 2 * np.log(2.0)]]),
    ("x ** 0 has gradient 0, also at x = 0", lambda x: x ** 0, lambda x: x ** 0, [[0.0, 2.0]], [[0.0, 0.0]]),
    ("x ** 1 has gradient 1 at x = 0", lambda x: x ** 1, lambda x: x ** 1, [[0.0, 2.0]], [[1.0, 2.0]]),
    ("x ** 2 at 0", lambda x: x ** 2, lambda x: x ** 2, [[0.0, -1.5]], [[0.0, -6.0]]),
]


@pytest.mark.parametrize("name, fn, torch_fn, inputs, expected", CASES, ids=[c[0] for c in CASES])
def test_gradient_at_a_kink_or_tie_is_the_documented_one(name, fn, torch_fn, inputs, expected):
    with np.errstate(all="raise"):          # no 0 * inf on the way
        grads = _grad(fn, *inputs)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, np.array(want, dtype=np.float64), rtol=1e-12, atol=1e-12)
    if torch is not None:
        for got, want in zip(grads, _torch_grad(torch_fn, *inputs)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# Where an input holds NaN, PyTorch's backward conventions (checked against it
# when installed); the expected gradients use weights 1, 2, 3 ... as above.
NAN = np.nan
NAN_CASES = [
    ("abs: the gradient at NaN is 0", lambda x: x.abs(), lambda x: x.abs(),
     [[NAN, -1.0, 0.0, 2.0]], [[0.0, -2.0, 0.0, 4.0]]),
    ("max over a dim: the first NaN takes the gradient", lambda x: x.max(dim=1),
     lambda x: x.max(dim=1).values, [[[1.0, NAN, NAN], [5.0, 2.0, 5.0]]], [[[0, 1, 0], [2, 0, 0]]]),
    ("max of everything: the NaNs split the gradient", lambda x: x.max(), lambda x: x.max(),
     [[1.0, NAN, NAN, 4.0]], [[0, 0.5, 0.5, 0]]),
    ("min of everything: the NaNs split the gradient", lambda x: x.min(), lambda x: x.min(),
     [[[NAN, 1.0], [0.0, 0.0]]], [[[1, 0], [0, 0]]]),
    ("amax over a dim: a group holding NaN gets NaN everywhere", lambda x: mdl.amax(x, dim=1),
     lambda x: x.amax(dim=1), [[[1.0, NAN, 4.0], [2.0, 2.0, 0.0]]], [[[NAN, NAN, NAN], [1, 1, 0]]]),
    ("amin over every dim with a NaN: NaN everywhere", lambda x: mdl.amin(x, dim=(0, 1)),
     lambda x: x.amin(dim=(0, 1)), [[[1.0, 0.0], [NAN, 5.0]]], [[[NAN, NAN], [NAN, NAN]]]),
    ("maximum: where either side is NaN both get the gradient", lambda a, b: mdl.maximum(a, b),
     lambda a, b: torch.maximum(a, b), [[1.0, NAN, 2.0, 3.0], [1.0, 1.0, NAN, 2.0]],
     [[0.5, 2, 3, 4], [0.5, 2, 3, 0]]),
    ("minimum: where either side is NaN both get the gradient", lambda a, b: mdl.minimum(a, b),
     lambda a, b: torch.minimum(a, b), [[1.0, NAN, 2.0, 3.0], [1.0, 1.0, NAN, 2.0]],
     [[0.5, 2, 3, 0], [0.5, 2, 3, 4]]),
]


@pytest.mark.parametrize("name, fn, torch_fn, inputs, expected", NAN_CASES, ids=[c[0] for c in NAN_CASES])
def test_gradient_where_an_input_is_nan_follows_pytorch(name, fn, torch_fn, inputs, expected):
    grads = _grad(fn, *inputs)
    for got, want in zip(grads, expected):          # NaN where NaN is expected, nowhere else
        np.testing.assert_allclose(got, np.array(want, dtype=np.float64), rtol=1e-12, atol=1e-12)
    if torch is not None:
        for got, want in zip(grads, _torch_grad(torch_fn, *inputs)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 2, 4), (1, 4, 5)),          # b's batch dim of size 1 is stretched
    ((1, 2, 4), (3, 4, 5)),          # a's batch dim of size 1 is stretched
    ((2, 1, 3, 4), (5, 4, 2)),       # a new leading dim for b, a size-1 dim for a
    ((4,), (2, 3, 4, 5)),            # a 1-D left operand against a batch
    ((2, 3, 4, 5), (5,)),            # a 1-D right operand
])
def test_matmul_gradients_when_batch_dims_broadcast_match_einsum(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    ta, tb = mdl.tensor(a, requires_grad=True), mdl.tensor(b, requires_grad=True)
    out = ta @ tb
    np.testing.assert_allclose(out.data, np.matmul(a, b), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    # reference: the 2-D forms broadcast explicitly, products by einsum, summed back to each shape
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    A = np.broadcast_to(a2, batch + a2.shape[-2:])
    B = np.broadcast_to(b2, batch + b2.shape[-2:])
    G = g.reshape(batch + (A.shape[-2], B.shape[-1]))
    dA = np.einsum("...nm,...km->...nk", G, B)
    dB = np.einsum("...nk,...nm->...km", A, G)

    def reduce_to(full, shape2, shape):
        lead = full.ndim - len(shape2)
        full = full.sum(axis=tuple(range(lead)))
        axes = tuple(i for i, n in enumerate(shape2) if n == 1 and full.shape[i] != 1)
        return full.sum(axis=axes, keepdims=True).reshape(shape)

    np.testing.assert_allclose(ta.grad, reduce_to(dA, a2.shape, a.shape), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tb.grad, reduce_to(dB, b2.shape, b.shape), rtol=1e-10, atol=1e-12)
