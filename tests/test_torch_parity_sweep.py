"""minidl against PyTorch, forward and every input gradient, in float64, at
shapes and options the op tests do not use: groups, dilation and asymmetric
strides, masks that broadcast, causal attention with L != S, label
smoothing with ignore_index, the interpolate modes, reductions over tuples
of dims, broadcasting matmul. One row per case; PyTorch is the oracle."""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F

torch = pytest.importorskip("torch")
T = torch.nn.functional


def _r(*shape):
    return lambda rng: rng.standard_normal(shape)


def _labels(high, shape):
    return lambda rng: rng.integers(0, high, shape)


def _mask(*shape):
    return lambda rng: rng.random(shape) < 0.7


CASES = {
    "conv2d groups, dilation, asymmetric stride": (
        lambda f, x, w: f.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
        [_r(2, 4, 9, 7), _r(6, 2, 3, 2)]),
    "conv_transpose2d groups, output_padding": (
        lambda f, x, w: f.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
        [_r(2, 4, 5, 4), _r(4, 3, 3, 3)]),
    "conv_transpose2d dilation, stride 3": (
        lambda f, x, w: f.conv_transpose2d(x, w, stride=3, padding=2, dilation=2),
        [_r(1, 2, 4, 5), _r(2, 3, 3, 2)]),
    "max_pool2d k3 s2 p1 odd sizes": (lambda f, x: f.max_pool2d(x, 3, stride=2, padding=1), [_r(2, 3, 8, 7)]),
    "avg_pool2d k3 s2 p1 odd sizes": (lambda f, x: f.avg_pool2d(x, 3, stride=2, padding=1), [_r(2, 3, 8, 7)]),
    "softmax over dim 0": (lambda f, x: f.softmax(x, dim=0), [_r(3, 4, 5)]),
    "log_softmax over dim 1": (lambda f, x: f.log_softmax(x, dim=1), [_r(3, 4, 5)]),
    "layer_norm over two dims": (lambda f, x, w, b: f.layer_norm(x, (4, 5), w, b, eps=1e-3),
                                 [_r(3, 4, 5), _r(4, 5), _r(4, 5)]),
    "batch_norm 4-d, training": (lambda f, x, w, b: f.batch_norm(x, None, None, w, b, training=True, eps=1e-3),
                                 [_r(4, 3, 2, 5), _r(3), _r(3)]),
    "cross_entropy label_smoothing, ignore_index": (
        lambda f, x, t: f.cross_entropy(x, t, label_smoothing=0.1, ignore_index=2),
        [_r(6, 5), _labels(5, 6)]),
    "cross_entropy over (N, C, H, W)": (lambda f, x, t: f.cross_entropy(x, t), [_r(2, 5, 3, 4), _labels(5, (2, 3, 4))]),
    "cross_entropy reduction none": (lambda f, x, t: f.cross_entropy(x, t, reduction="none"), [_r(6, 5), _labels(5, 6)]),
    "mse_loss reduction sum": (lambda f, a, b: f.mse_loss(a, b, reduction="sum"), [_r(3, 4), _r(3, 4)]),
    "interpolate bilinear down to a size": (lambda f, x: f.interpolate(x, size=(3, 5), mode="bilinear"), [_r(2, 2, 7, 9)]),
    "interpolate bilinear scale 1.7": (lambda f, x: f.interpolate(x, scale_factor=1.7, mode="bilinear"), [_r(1, 2, 4, 5)]),
    "interpolate bilinear align_corners": (
        lambda f, x: f.interpolate(x, size=(6, 7), mode="bilinear", align_corners=True), [_r(1, 2, 4, 5)]),
    "interpolate nearest scale (2.5, 1.5)": (
        lambda f, x: f.interpolate(x, scale_factor=(2.5, 1.5), mode="nearest"), [_r(1, 2, 4, 5)]),
    "interpolate nearest down": (lambda f, x: f.interpolate(x, size=(3, 2), mode="nearest"), [_r(1, 2, 7, 5)]),
    "pad constant value": (lambda f, x: f.pad(x, (1, 2), value=3.0), [_r(2, 4, 5)]),
    "sdpa float mask broadcast over batch and heads": (
        lambda f, q, k, v, m: f.scaled_dot_product_attention(q, k, v, attn_mask=m),
        [_r(2, 3, 4, 8), _r(2, 3, 6, 8), _r(2, 3, 6, 5), _r(4, 6)]),
    "sdpa bool mask": (lambda f, q, k, v, m: f.scaled_dot_product_attention(q, k, v, attn_mask=m),
                       [_r(2, 4, 8), _r(2, 6, 8), _r(2, 6, 5), _mask(4, 6)]),
    "sdpa causal, L != S": (lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True),
                            [_r(2, 3, 8), _r(2, 5, 8), _r(2, 5, 4)]),
    "sdpa explicit scale": (lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, scale=0.3),
                            [_r(1, 2, 3, 8), _r(1, 2, 5, 8), _r(1, 2, 5, 4)]),
    "gelu tanh": (lambda f, x: f.gelu(x, approximate="tanh"), [_r(3, 4)]),
    "leaky_relu 0.2": (lambda f, x: f.leaky_relu(x, 0.2), [_r(3, 4)]),
    "embedding with padding_idx": (lambda f, i, w: f.embedding(i, w, padding_idx=1), [_labels(5, (2, 3)), _r(5, 3)]),
    "linear on 3-d input": (lambda f, x, w, b: f.linear(x, w, b), [_r(2, 3, 4), _r(5, 4), _r(5)]),
    "binary_cross_entropy_with_logits": (
        lambda f, x, t: f.binary_cross_entropy_with_logits(x, t), [_r(4, 3), lambda rng: rng.random((4, 3))]),
}

TENSOR_CASES = {     # the same functions under torch's and minidl's top-level names
    "var over a tuple, keepdim": (lambda m, x: m.var(x, dim=(0, 2), keepdim=True), [_r(2, 3, 4)]),
    "var biased": (lambda m, x: m.var(x, dim=1, unbiased=False), [_r(2, 3, 4)]),
    "logsumexp": (lambda m, x: m.logsumexp(x, dim=1), [_r(3, 4, 2)]),
    # an empty tuple of dims reduces every dim in PyTorch (NumPy's axis=() reduces none);
    # not var: torch's var(dim=()) backward divides by zero (op_table's var row covers it)
    "sum over dim=()": (lambda m, x: m.sum(x, dim=()), [_r(2, 3, 4)]),
    "mean over dim=[], keepdim": (lambda m, x: m.mean(x, dim=[], keepdim=True), [_r(2, 3, 4)]),
    "amax over dim=()": (lambda m, x: m.amax(x, dim=()), [_r(2, 3, 4)]),
    "logsumexp over dim=(), keepdim": (lambda m, x: m.logsumexp(x, dim=(), keepdim=True), [_r(2, 3, 4)]),
    # a 0-d tensor takes dim 0 or -1 (there is nothing to reduce)
    "sum of a 0-d tensor over dim 0": (lambda m, x: m.sum(x, dim=0), [_r()]),
    "mean of a 0-d tensor over dim -1, keepdim": (lambda m, x: m.mean(x, dim=-1, keepdim=True), [_r()]),
    "amax of a 0-d tensor over dim (0,)": (lambda m, x: m.amax(x, dim=(0,)), [_r()]),
    "logsumexp of a 0-d tensor over dim 0": (lambda m, x: m.logsumexp(x, dim=0), [_r()]),
    "max of a 0-d tensor over dim 0": (lambda m, x: x.max(dim=0) if m is mdl else x.max(dim=0).values, [_r()]),
    "amax with ties": (lambda m, x: m.amax(x, dim=1), [lambda rng: rng.integers(0, 3, (4, 5)).astype(float)]),
    "amin over every element with ties": (lambda m, x: m.amin(x), [lambda rng: rng.integers(0, 2, (3, 4)).astype(float)]),
    "matmul 1-d by batched": (lambda m, a, b: m.matmul(a, b), [_r(4), _r(2, 4, 3)]),
    "matmul broadcast batches": (lambda m, a, b: m.matmul(a, b), [_r(3, 1, 2, 4), _r(5, 4, 3)]),
    "clamp both sides": (lambda m, a: m.clamp(a, min=-0.5, max=0.2), [_r(3, 4)]),
    "where with broadcast condition": (lambda m, c, a, b: m.where(c, a, b), [_mask(3, 1), _r(3, 4), _r(4)]),
    "masked_fill with a 0-d tensor value": (lambda m, a, c, v: a.masked_fill(c, v),
                                             [_r(3, 4), _mask(4), lambda rng: np.array(rng.standard_normal())]),
}


def _compare(call_ours, call_torch, makers, seed):
    rng = np.random.default_rng(seed)
    arrays = [make(rng) for make in makers]
    ours = [mdl.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out, expected = call_ours(*ours), call_torch(*theirs)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-7, atol=1e-9)
    assert out.shape == tuple(expected.shape)
    grad = rng.standard_normal(out.shape)
    out.backward(mdl.tensor(grad))
    expected.backward(torch.tensor(grad))
    for position, (x, t) in enumerate(zip(ours, theirs)):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-7, atol=1e-9,
                                       err_msg=f"gradient of input {position}")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_functional_matches_torch(name, seed):
    call, makers = CASES[name]
    _compare(lambda *xs: call(F, *xs), lambda *ts: call(T, *ts), makers, seed)


@pytest.mark.parametrize("name", sorted(TENSOR_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_top_level_functions_match_torch(name, seed):
    call, makers = TENSOR_CASES[name]
    _compare(lambda *xs: call(mdl, *xs), lambda *ts: call(torch, *ts), makers, seed)
