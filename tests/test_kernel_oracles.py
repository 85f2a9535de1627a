"""Every kernel family held to an answer from outside minidl, on every backend.

The compiled loops are tested against the readable loops elsewhere; here the
readable loops, the NumPy twins and the compiled loops all face the same
independent oracle: PyTorch (its autograd for the gradients), or a case
worked out by hand. A slip in the readable loops therefore cannot hide behind
the fast paths that copy them. Cases are small, with odd sizes, strides,
paddings and dilations, so each runs in milliseconds even interpreted.
"""
import math

import numpy as np
import pytest

from minidl import kernels
from minidl.kernels import attention, batch_norm, conv, gelu, layer_norm, pooling, softmax, winograd
from minidl.kernels.dropout_hash import dropout_threshold
from minidl.kernels.geometry import as_pair, conv_output_size, conv_transpose_output_size

torch = pytest.importorskip("torch")

BACKENDS = ("python", "numpy", "numba")
TOL = dict(rtol=1e-9, atol=1e-10)            # float64 throughout


def t(array, grad=False):
    return torch.tensor(np.ascontiguousarray(array), dtype=torch.float64, requires_grad=grad)


def n(tensor):
    return tensor.detach().numpy()


# ---- geometry: the output-size formulas, by hand and by torch --------------------------
def test_output_sizes_worked_by_hand():
    # 7 inputs, padding 1 -> 9; a 3-tap window 2 apart spans 5; stride 2: starts 0, 2, 4
    assert conv_output_size(7, 3, 2, 1, 2) == 3
    assert conv_output_size(5, 2, 2, 0) == 2            # floor: the last input is never read
    # transpose: (3 - 1)*2 - 2*1 + 2*(3 - 1) + 1 + 1 = 8
    assert conv_transpose_output_size(3, 3, 2, 1, 1, 2) == 8
    assert conv_transpose_output_size(4, 4, 2, 1, 0) == 8


def test_as_pair_keeps_values_at_the_minimum():
    assert as_pair("conv2d", "stride", 1, minimum=1) == (1, 1)
    assert as_pair("conv2d", "padding", (0, 2), minimum=0) == (0, 2)
    with pytest.raises(ValueError):
        as_pair("conv2d", "stride", (1, 0), minimum=1)


# ---- conv2d and conv_transpose2d against torch ------------------------------------------
CONV_CASES = [   # (N, Cin, H, W, Cout, kernel, stride, padding, dilation, groups)
    (2, 4, 7, 6, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2),
    (1, 2, 5, 5, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (1, 3, 6, 7, 2, (2, 3), (3, 2), (1, 1), (2, 1), 1),
    (1, 1, 4, 9, 1, (1, 4), (1, 3), (0, 2), (1, 1), 1),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_and_gradients_match_torch(backend, case):
    nb, c_in, h, w, c_out, k, s, p, d, g = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((nb, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in // g, *k))
    bias = rng.standard_normal(c_out)
    tx, tw, tb = t(x, True), t(weight, True), t(bias, True)
    expected = torch.nn.functional.conv2d(tx, tw, tb, s, p, d, g)
    gy = rng.standard_normal(expected.shape)
    expected.backward(t(gy))
    with kernels.use(backend):
        out = conv.conv2d_forward(x, weight, s, p, d, g, bias=bias)
        dx, dw, db = conv.conv2d_backward(gy, x, weight, s, p, d, g, need_bias=True)
    np.testing.assert_allclose(out, n(expected), **TOL)
    np.testing.assert_allclose(dx, n(tx.grad), **TOL)
    np.testing.assert_allclose(dw, n(tw.grad), **TOL)
    np.testing.assert_allclose(db, n(tb.grad), **TOL)


TRANSPOSE_CASES = [   # (N, Cin, H, W, Cout, kernel, stride, padding, output_padding, dilation, groups)
    (2, 4, 3, 4, 6, (3, 2), (2, 3), (1, 0), (1, 2), (1, 2), 2),
    (1, 2, 4, 3, 3, (3, 3), (2, 2), (1, 1), (1, 0), (2, 1), 1),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose2d_forward_and_gradients_match_torch(backend, case):
    nb, c_in, h, w, c_out, k, s, p, op, d, g = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((nb, c_in, h, w))
    weight = rng.standard_normal((c_in, c_out // g, *k))
    bias = rng.standard_normal(c_out)
    tx, tw, tb = t(x, True), t(weight, True), t(bias, True)
    expected = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g, d)
    gy = rng.standard_normal(expected.shape)
    expected.backward(t(gy))
    with kernels.use(backend):
        out = conv.conv_transpose2d_forward(x, weight, s, p, op, d, g, bias=bias)
        dx, dw, db = conv.conv_transpose2d_backward(gy, x, weight, s, p, d, g, need_bias=True)
    np.testing.assert_allclose(out, n(expected), **TOL)
    np.testing.assert_allclose(dx, n(tx.grad), **TOL)
    np.testing.assert_allclose(dw, n(tw.grad), **TOL)
    np.testing.assert_allclose(db, n(tb.grad), **TOL)


@pytest.mark.parametrize("hw", [(9, 10), (8, 8)])
def test_winograd_path_matches_torch(hw):
    """3x3 stride-1 convolutions with enough channels run winograd.py on "numba";
    odd output sides leave half-used border tiles."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, winograd.MIN_CHANNELS, *hw))
    weight = rng.standard_normal((winograd.MIN_CHANNELS + 1, winograd.MIN_CHANNELS, 3, 3))
    bias = rng.standard_normal(weight.shape[0])
    assert winograd.applies(x.shape, weight.shape, (1, 1), (1, 1), (1, 1), 1, hw)
    tx, tw, tb = t(x, True), t(weight, True), t(bias, True)
    expected = torch.nn.functional.conv2d(tx, tw, tb, 1, 1)
    gy = rng.standard_normal(expected.shape)
    expected.backward(t(gy))
    with kernels.use("numba"):
        out = conv.conv2d_forward(x, weight, (1, 1), (1, 1), (1, 1), 1, bias=bias)
        dx, dw, db = conv.conv2d_backward(gy, x, weight, (1, 1), (1, 1), (1, 1), 1, need_bias=True)
    np.testing.assert_allclose(out, n(expected), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dx, n(tx.grad), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dw, n(tw.grad), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(db, n(tb.grad), rtol=1e-9, atol=1e-9)


# ---- pooling against torch, and ties by hand -------------------------------------------
POOL_CASES = [   # (H, W, kernel, stride, padding)
    (7, 6, (3, 2), (2, 1), (1, 1)),
    (5, 7, (2, 2), (2, 2), (0, 0)),       # the 2x2 fast path on "numba"; odd sides
    (6, 6, (3, 3), (3, 3), (1, 1)),
    (5, 8, (2, 3), (1, 3), (1, 0)),
    (7, 7, (2, 2), (3, 3), (0, 0)),       # stride > kernel: inputs no window covers
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool2d_matches_torch(backend, case):
    h, w, k, s, p = case
    x = np.random.default_rng(4).permutation(2 * 3 * h * w).reshape(2, 3, h, w).astype(np.float64)  # no ties
    tx = t(x, True)
    expected, indices = torch.nn.functional.max_pool2d(tx, k, s, p, return_indices=True)
    gy = np.random.default_rng(5).standard_normal(expected.shape)
    expected.backward(t(gy))
    with kernels.use(backend):
        out, argmax = pooling.max_pool2d_forward(x, k, s, p)
        dx = pooling.max_pool2d_backward(gy, argmax, x.shape)
    np.testing.assert_array_equal(out, n(expected))
    np.testing.assert_array_equal(argmax, indices.numpy())
    np.testing.assert_allclose(dx, n(tx.grad), **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", POOL_CASES)
def test_avg_pool2d_matches_torch(backend, case):
    h, w, k, s, p = case
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, h, w))
    tx = t(x, True)
    expected = torch.nn.functional.avg_pool2d(tx, k, s, p, count_include_pad=True)
    gy = rng.standard_normal(expected.shape)
    expected.backward(t(gy))
    with kernels.use(backend):
        out = pooling.avg_pool2d_forward(x, k, s, p)
        dx = pooling.avg_pool2d_backward(gy, x.shape, k, s, p)
    np.testing.assert_allclose(out, n(expected), **TOL)
    np.testing.assert_allclose(dx, n(tx.grad), **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k, s, p", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))])
def test_max_pool2d_ties_go_to_the_first_maximum_in_scan_order(backend, k, s, p):
    # a 4x4 plane of equal values: every window's winner is its top-left real element
    x = np.ones((1, 1, 4, 4))
    with kernels.use(backend):
        out, argmax = pooling.max_pool2d_forward(x, k, s, p)
    oh, ow = out.shape[2:]
    rows = np.maximum(np.arange(oh) * s[0] - p[0], 0)
    cols = np.maximum(np.arange(ow) * s[1] - p[1], 0)
    np.testing.assert_array_equal(argmax[0, 0], rows[:, None] * 4 + cols[None, :])
    # two maxima in one window: the first in row-by-row order wins
    y = np.array([[[[0.0, 5.0], [5.0, 1.0]]]])
    with kernels.use(backend):
        _, argmax = pooling.max_pool2d_forward(y, (2, 2), (2, 2), (0, 0))
    assert argmax[0, 0, 0, 0] == 1


# ---- softmax -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("width", [3, 13])
def test_softmax_forward_and_backward_match_torch(backend, log, width):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, width)) * 3
    x[1] += 1e4                       # without the max subtraction exp overflows
    x[2] -= 1e4
    x[3, width - 1] = 40.0            # the largest entry in the tail after eight-wide groups
    tx = t(x, True)
    fn = torch.log_softmax if log else torch.softmax
    expected = fn(tx, dim=1)
    gy = rng.standard_normal(x.shape)
    expected.backward(t(gy))
    with kernels.use(backend), np.errstate(over="ignore", invalid="ignore"):
        y = softmax.softmax_forward(x, log)
        dx = softmax.softmax_backward(gy, y, log)
    np.testing.assert_allclose(y, n(expected), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dx, n(tx.grad), rtol=1e-8, atol=1e-10)


# ---- layer norm and batch norm ------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_matches_torch(backend):
    rng = np.random.default_rng(8)
    rows, m, eps = 37, 5, 0.3        # more rows than one backward block; eps large enough to matter
    x = rng.standard_normal((rows, m)) * 2 + 1
    weight, bias = rng.standard_normal(m), rng.standard_normal(m)
    tx, tw, tb = t(x, True), t(weight, True), t(bias, True)
    expected = torch.nn.functional.layer_norm(tx, (m,), tw, tb, eps)
    gy = rng.standard_normal(x.shape)
    expected.backward(t(gy))
    with kernels.use(backend):
        out, mean, inv_std = layer_norm.layer_norm_forward(x, weight, bias, eps)
        dx, dw, db = layer_norm.layer_norm_backward(gy, x, weight, mean, inv_std)
    np.testing.assert_allclose(out, n(expected), **TOL)
    np.testing.assert_allclose(mean, x.mean(axis=1), **TOL)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(x.var(axis=1) + eps), **TOL)   # biased variance
    np.testing.assert_allclose(dx, n(tx.grad), **TOL)
    np.testing.assert_allclose(dw, n(tw.grad), **TOL)
    np.testing.assert_allclose(db, n(tb.grad), **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(3, 4, 1), (2, 3, 200)])   # C * S = 600 spans two sum chunks
def test_batch_norm_matches_torch_in_training_and_eval(backend, shape):
    rng = np.random.default_rng(9)
    nb, c, s = shape
    eps = 0.2
    x = rng.standard_normal(shape) * 2 + 3
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    tx, tw, tb = t(x, True), t(weight, True), t(bias, True)
    expected = torch.nn.functional.batch_norm(tx, None, None, tw, tb, True, 0.1, eps)
    gy = rng.standard_normal(shape)
    expected.backward(t(gy))
    with kernels.use(backend):
        out, mean, var, inv_std = batch_norm.batch_norm_forward(x, weight, bias, eps)
        dx, dw, db = batch_norm.batch_norm_backward(gy, x, weight, mean, inv_std, True)
    np.testing.assert_allclose(out, n(expected), **TOL)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), **TOL)
    np.testing.assert_allclose(var, x.var(axis=(0, 2)), **TOL)      # biased
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(x.var(axis=(0, 2)) + eps), **TOL)
    np.testing.assert_allclose(dx, n(tx.grad), **TOL)
    np.testing.assert_allclose(dw, n(tw.grad), **TOL)
    np.testing.assert_allclose(db, n(tb.grad), **TOL)
    # eval mode: fixed statistics, so the input gradient has no mean terms
    run_mean, run_var = rng.standard_normal(c), rng.random(c) + 0.5
    tx, tw, tb = t(x, True), t(weight, True), t(bias, True)
    expected = torch.nn.functional.batch_norm(tx, t(run_mean), t(run_var), tw, tb, False, 0.1, eps)
    expected.backward(t(gy))
    with kernels.use(backend):
        inv = 1 / np.sqrt(run_var + eps)
        out = batch_norm.batch_norm_normalize(x, weight, bias, run_mean, inv)
        dx, dw, db = batch_norm.batch_norm_backward(gy, x, weight, run_mean, inv, False)
    np.testing.assert_allclose(out, n(expected), **TOL)
    np.testing.assert_allclose(dx, n(tx.grad), **TOL)
    np.testing.assert_allclose(dw, n(tw.grad), **TOL)
    np.testing.assert_allclose(db, n(tb.grad), **TOL)


# ---- GELU: the erf form, not the tanh approximation ------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_gelu_is_the_erf_form_of_torch(backend):
    x = np.concatenate([np.linspace(-7, 7, 57), [-0.5, 0.0, 1.3]])
    tx = t(x, True)
    expected = torch.nn.functional.gelu(tx)               # approximate="none": x Phi(x)
    gy = np.random.default_rng(10).standard_normal(x.shape)
    expected.backward(t(gy))
    with kernels.use(backend):
        out, cdf = gelu.gelu_forward(x)
        dx = gelu.gelu_backward(gy, x, cdf)
    np.testing.assert_allclose(out, n(expected), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cdf, [0.5 * math.erfc(-v / math.sqrt(2)) for v in x], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(dx, n(tx.grad), rtol=1e-12, atol=1e-14)


# ---- attention --------------------------------------------------------------------------------
def _torch_attention(q, k, v, causal, scale, keep=None):
    """softmax(scale q k^T, causal top-left) (times the dropout factor `keep`) v, in torch."""
    tq, tk, tv = t(q, True), t(k, True), t(v, True)
    s = tq @ tk.transpose(1, 2) * scale
    if causal:
        allowed = torch.ones(s.shape[1:], dtype=torch.bool).tril()
        s = s.masked_fill(~allowed, float("-inf"))
    w = torch.softmax(s, dim=-1)
    if keep is not None:
        w = w * t(keep)
    return tq, tk, tv, w @ tv


ATTENTION_CASES = [   # (BH, L, S, E, causal); L > 256 with causal runs the tiled kernels
    (2, 5, 7, 3, False),
    (2, 7, 5, 4, True),
    (1, 260, 70, 3, True),
]


@pytest.mark.parametrize("backend, case", [(backend, case) for case in ATTENTION_CASES for backend in BACKENDS
                                             if backend != "python" or case[1] < 100])   # interpreted: short only
def test_attention_matches_torch(backend, case):
    bh, L, S, E, causal = case
    rng = np.random.default_rng(11)
    q, k, v = (rng.standard_normal((bh, size, E)) for size in (L, S, S))
    scale = 1 / math.sqrt(E)
    tq, tk, tv, expected = _torch_attention(q, k, v, causal, scale)
    gy = rng.standard_normal(expected.shape)
    expected.backward(t(gy))
    no_mask, index = np.zeros((0, 1, S)), np.zeros(bh, np.int64)
    _assert_attention_matches_torch(backend, (q, k, v, no_mask, index, causal, scale), (0.0, 0), gy,
                                    expected, (tq, tk, tv), out_atol=1e-10)


def _assert_attention_matches_torch(backend, arguments, dropout, gy, expected, torch_inputs, out_atol):
    """attention.forward and .backward on `backend` with `arguments` (q, k, v, mask, index,
    causal, scale) and `dropout` (p, seed) equal torch's output and the gradients of
    `torch_inputs` (tq, tk, tv) after expected.backward(gy)."""
    p, seed = dropout
    with kernels.use(backend):
        out, lse = attention.forward(*arguments, dropout_p=p, seed=seed)
        grads = attention.backward(*arguments, p, seed, out, lse, gy)
    np.testing.assert_allclose(out, n(expected), rtol=1e-9, atol=out_atol)
    for name, got, want in zip(("dq", "dk", "dv"), grads, torch_inputs):
        np.testing.assert_allclose(got, n(want.grad), rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_dropout_drops_a_share_p_and_scales_the_rest_by_one_over_one_minus_p(backend):
    """With v the identity, out[b, i, j] is the weight of key j after dropout:
    0 where dropped, the plain weight / (1 - p) where kept. The mask read off
    the output then gives the gradients, checked against torch."""
    bh, L, S, p = 4, 16, 16, 0.25
    rng = np.random.default_rng(12)
    q, k = rng.standard_normal((bh, L, 3)), rng.standard_normal((bh, S, 3))
    eye = np.broadcast_to(np.eye(S), (bh, S, S)).copy()
    no_mask, index = np.zeros((0, 1, S)), np.zeros(bh, np.int64)
    with kernels.use(backend):
        plain, _ = attention.forward(q, k, eye, no_mask, index, False, 0.5)
        dropped, lse = attention.forward(q, k, eye, no_mask, index, False, 0.5, dropout_p=p, seed=99)
    kept = dropped != 0
    assert abs(1 - kept.mean() - p) < 0.05                        # 1024 weights
    np.testing.assert_allclose(dropped[kept], plain[kept] / (1 - p), rtol=1e-12)
    # gradients with that mask, through torch
    v = rng.standard_normal((bh, S, 2))
    tq, tk, tv, expected = _torch_attention(q, k, v, False, 0.5, keep=kept / (1 - p))
    gy = rng.standard_normal(expected.shape)
    expected.backward(t(gy))
    _assert_attention_matches_torch(backend, (q, k, v, no_mask, index, False, 0.5), (p, 99), gy,
                                    expected, (tq, tk, tv), out_atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_row_max_sees_every_lane(backend):
    # each row's largest entry sits at a different position of the first eight
    # (and one in the tail): the shift must be the true maximum, or exp overflows
    x = np.zeros((9, 11))
    for r in range(9):
        x[r, r] = 800.0
    with kernels.use(backend), np.errstate(over="ignore", invalid="ignore"):
        y = softmax.softmax_forward(x, False)
        log_y = softmax.softmax_forward(x, True)
    np.testing.assert_allclose(y, n(torch.softmax(t(x), dim=1)), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(log_y, n(torch.log_softmax(t(x), dim=1)), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool2d_ties_in_a_plane_holding_nan(backend):
    # 2x2 windows, stride 2: the left window holds the NaN (it wins); the right
    # one holds a tie, which still goes to its first maximum in scan order
    x = np.array([[[[1.0, np.nan, 0.0, 7.0],
                    [2.0, 3.0, 7.0, 7.0]]]])
    with kernels.use(backend):
        out, argmax = pooling.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 0, 0, 1] == 7.0
    np.testing.assert_array_equal(argmax[0, 0], [[1, 3]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_gelu_over_several_parallel_blocks_matches_torch(backend):
    from minidl.kernels import gelu_fast
    x = np.linspace(-5, 5, 2 * gelu_fast.BLOCK + 5)        # the last block is short
    tx = t(x, True)
    expected = torch.nn.functional.gelu(tx)
    gy = np.cos(x)
    expected.backward(t(gy))
    with kernels.use(backend):
        out, cdf = gelu.gelu_forward(x)
        dx = gelu.gelu_backward(gy, x, cdf)
    np.testing.assert_allclose(out, n(expected), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, n(tx.grad), rtol=1e-12, atol=1e-14)


def _splitmix64_top24(seed, index):
    """SplitMix64's published finaliser of seed + index * golden ratio, top 24
    bits, in Python integers (wrapped to 64 bits by hand)."""
    mask = (1 << 64) - 1
    z = (seed + index * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return (z ^ (z >> 31)) >> 40


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_keeps_an_element_whose_hash_equals_the_threshold(backend):
    """An element is kept when its 24-bit hash is >= the threshold: choose p so
    that the threshold is exactly the hash of element 1 under seed 0."""
    h = _splitmix64_top24(0, 1)
    assert 0 < h < 1 << 24
    p = h / (1 << 24)
    assert int(dropout_threshold(p)) == h
    L = S = 2
    eye = np.eye(S)[None]
    q = k = np.zeros((1, L, 1))                       # equal weights 1/2
    no_mask, index = np.zeros((0, 1, S)), np.zeros(1, np.int64)
    with kernels.use(backend):
        out, _ = attention.forward(q, k, eye, no_mask, index, False, 1.0, dropout_p=p, seed=0)
    # out[0, 0, 1] is weight (0, 0, 1), flat index 1: kept and scaled
    np.testing.assert_allclose(out[0, 0, 1], 0.5 / (1 - p), rtol=1e-12)
    for i, j in [(0, 0), (1, 0), (1, 1)]:             # the others follow the same rule
        kept = _splitmix64_top24(0, i * S + j) >= h
        np.testing.assert_allclose(out[0, i, j], 0.5 / (1 - p) if kept else 0.0, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 99, 2**63 + 12345])
def test_dropout_hash_of_every_path_is_splitmix64(seed):
    """The compiled hash (the loops' and the tiles'), the NumPy twin's and the
    plain-integer SplitMix64 above keep the same elements, over a few thousand
    indices and thresholds near the middle and the ends of the 24-bit range:
    the twin draws the mask the loops draw."""
    from minidl.kernels.dropout_hash import dropout_keep, dropout_keep_numpy
    indices = np.arange(3000, dtype=np.uint64)
    hashes = np.array([_splitmix64_top24(seed, int(i)) for i in indices])
    for threshold in (1, 1 << 23, (1 << 24) - 1, int(np.median(hashes))):
        want = hashes >= threshold
        twin = dropout_keep_numpy(np.uint64(seed), indices, np.uint64(threshold))
        compiled = np.array([dropout_keep(np.uint64(seed), i, np.uint64(threshold)) for i in indices])
        np.testing.assert_array_equal(twin, want)
        np.testing.assert_array_equal(compiled, want)


def test_dropout_threshold_is_p_rounded_to_the_nearest_24_bit_step():
    """dropout_threshold(p) / 2**24 is within 2**-25 of p (the nearest step),
    so the share dropped is p to within half a step."""
    for p in np.concatenate([np.linspace(0.0, 1.0, 1001), [0.1, 0.3, 1 / 3, 0.7, 1e-7, 1 - 1e-7]]):
        t = int(dropout_threshold(p))
        assert abs(t - p * (1 << 24)) <= 0.5, (p, t)
