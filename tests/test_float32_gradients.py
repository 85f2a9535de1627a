"""Float32 gradients of every kernel family against float64 references.

Each op runs in float32 (the default dtype) through minidl's public API, on
the "numba" and "numpy" backends; its output and input gradients must equal,
within a stated tolerance, the float64 results of an independent path
(tests/reference_math.py: scipy.signal for convolution, NumPy window slices
for pooling, scipy.special for softmax and erf, the textbook formulas for
attention) on the same float32-representable inputs.

Tolerances, relative to the largest magnitude of the reference array:
- 1e-5 for the elementwise and row-wise families (pooling, softmax,
  log_softmax, gelu): a few float32 roundings per element;
- 1e-4 for the families that sum many products (conv2d, conv_transpose2d,
  attention): sums of up to a few hundred float32 terms.
A float32 result that agreed only with another float32 backend could share
its error; agreeing with float64 to these bounds it cannot be far wrong.
"""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F

import reference_math as ref

ELEMENTWISE, SUMS = 1e-5, 1e-4


def _inputs(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _distinct(seed, shape):
    """float32 values without ties, spaced so a max-pool window has one winner."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return [(rng.permutation(n).reshape(shape) * (4.0 / n) - 2.0).astype(np.float32)]


def conv2d_case(stride, padding, dilation, groups):
    x, w, b = _inputs(0, (3, 4, 11, 10), (6, 4 // groups, 3, 3), (6,))

    def run(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    def expected(x, w, b, g):
        pairs = dict(stride=(stride,) * 2, padding=(padding,) * 2, dilation=(dilation,) * 2, groups=groups)
        return [ref.conv2d(x, w, b, **pairs), *ref.conv2d_grads(x, w, g, **pairs)]
    return [x, w, b], run, expected, SUMS


def conv_transpose2d_case(stride, padding, groups):
    x, w, b = _inputs(1, (3, 4, 6, 7), (4, 6 // groups, 4, 3), (6,))

    def run(x, w, b):
        return F.conv_transpose2d(x, w, b, stride=stride, padding=padding, groups=groups)

    def expected(x, w, b, g):
        pairs = dict(stride=(stride, stride), padding=(padding, padding), groups=groups)
        return [ref.conv_transpose2d(x, w, b, **pairs), *ref.conv_transpose2d_grads(x, w, g, **pairs)]
    return [x, w, b], run, expected, SUMS


def pool_case(kind, kernel_size, stride, padding):
    shape = (2, 3, 13, 12)
    inputs = _distinct(2, shape) if kind == "max" else _inputs(2, shape)
    geometry = ((kernel_size,) * 2, (stride,) * 2, (padding,) * 2)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d

    def run(x):
        return pool(x, kernel_size, stride=stride, padding=padding)

    def expected(x, g):
        if kind == "max":
            return [ref.max_pool2d(x, *geometry), ref.max_pool2d_grad(x, g, *geometry)]
        return [ref.avg_pool2d(x, *geometry), ref.avg_pool2d_grad(x, g, *geometry)]
    return inputs, run, expected, ELEMENTWISE


def softmax_case(log, dim):
    (x,) = _inputs(3, (5, 37, 6))
    x *= 4

    def run(x):
        return (F.log_softmax if log else F.softmax)(x, dim=dim)

    def expected(x, g):
        moved, g_moved = np.moveaxis(x, dim, -1), np.moveaxis(g, dim, -1)
        return [np.moveaxis(ref.softmax(moved, log), -1, dim),
                np.moveaxis(ref.softmax_grad(moved, g_moved, log), -1, dim)]
    return [x], run, expected, ELEMENTWISE


def gelu_case():
    (x,) = _inputs(4, (7, 50))
    x *= 3
    return [x], F.gelu, lambda x, g: [ref.gelu(x), ref.gelu_grad(x, g)], ELEMENTWISE


def attention_case(mask_kind, causal):
    q, k, v = _inputs(5, (2, 3, 45, 8), (2, 3, 70, 8), (2, 3, 70, 5))
    mask = None
    if mask_kind == "bool":
        mask = np.random.default_rng(6).random((45, 70)) > 0.4
        mask[:, 0] = True                                 # no fully masked row
    elif mask_kind == "float":
        mask = np.random.default_rng(6).normal(0, 1, (45, 70)).astype(np.float32)

    def run(q, k, v):
        attn_mask = None if mask is None else mdl.tensor(mask)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal)

    def expected(q, k, v, g):
        return [ref.attention(q, k, v, mask, causal)[0], *ref.attention_grads(q, k, v, g, mask, causal)]
    return [q, k, v], run, expected, SUMS


CASES = {
    "conv2d": lambda: conv2d_case(1, 1, 1, 1),
    "conv2d_stride2_dilation2_groups2": lambda: conv2d_case(2, 2, 2, 2),
    "conv_transpose2d": lambda: conv_transpose2d_case(1, 0, 1),
    "conv_transpose2d_stride2_groups2": lambda: conv_transpose2d_case(2, 1, 2),
    "max_pool2d": lambda: pool_case("max", 2, 2, 0),
    "max_pool2d_overlapping_padded": lambda: pool_case("max", 3, 2, 1),
    "avg_pool2d": lambda: pool_case("avg", 2, 2, 0),
    "avg_pool2d_overlapping_padded": lambda: pool_case("avg", 3, 2, 1),
    "softmax": lambda: softmax_case(False, -1),
    "softmax_dim1": lambda: softmax_case(False, 1),
    "log_softmax": lambda: softmax_case(True, -1),
    "log_softmax_dim0": lambda: softmax_case(True, 0),
    "gelu": gelu_case,
    "sdpa": lambda: attention_case(None, False),
    "sdpa_bool_mask": lambda: attention_case("bool", False),
    "sdpa_float_mask": lambda: attention_case("float", False),
    "sdpa_causal": lambda: attention_case(None, True),
}


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("case_name", list(CASES))
def test_float32_gradients_match_float64_reference(case_name, backend):
    inputs, run, expected_fn, tolerance = CASES[case_name]()
    tensors = [mdl.tensor(a, requires_grad=True) for a in inputs]
    with mdl.kernels.use(backend):
        out = run(*tensors)
        grad_out = np.random.default_rng(9).standard_normal(out.shape).astype(np.float32)
        out.backward(grad_out)
    assert out.dtype == np.float32
    expected = expected_fn(*inputs, grad_out)
    got = [out.data] + [t.grad for t in tensors]
    names = ["out"] + [f"grad of input {i}" for i in range(len(inputs))]
    for name, a, b in zip(names, got, expected):
        assert a.dtype == np.float32, f"{name} is {a.dtype}, not float32"
        assert a.shape == b.shape, f"{name}: shape {a.shape}, expected {b.shape}"
        scale = float(np.abs(b).max())
        error = float(np.abs(a.astype(np.float64) - b).max())
        assert error <= tolerance * scale, (
            f"{case_name} ({backend}) {name}: max error {error:.3g} > {tolerance} x {scale:.3g}")
