"""self_attention_heads: multi-head self-attention on one packed projection
(N, T, 3E) -> (N, T, E), the op MultiheadAttention runs for self-attention.

Checked against softmax(q k^T / sqrt(d) + mask) v written here in NumPy (heads
split by hand), against scaled_dot_product_attention on the split heads
(forward and gradients, every backend), with float64 finite differences, on
non-contiguous inputs, and for clear errors on bad input.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import kernels
from minidl.gradcheck import gradcheck
from minidl.ops.attention import self_attention_heads


def split(qkv, H):
    """(N, T, 3E) -> q, k, v (N, H, T, d), by hand."""
    N, T, E3 = qkv.shape
    E = E3 // 3
    d = E // H
    parts = [qkv[:, :, i * E:(i + 1) * E] for i in range(3)]                # (N, T, E) each
    return [p.reshape(N, T, H, d).transpose(0, 2, 1, 3) for p in parts]     # (N, H, T, d) each


def reference(qkv, H, mask=None, causal=False):
    """The heads' outputs side by side (N, T, E), in float64, from the definition."""
    q, k, v = (a.astype(np.float64) for a in split(qkv, H))
    N, _, T, d = q.shape
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)                            # (N, H, T, T)
    if causal:
        s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    heads = w @ v                                                             # (N, H, T, d)
    return heads.transpose(0, 2, 1, 3).reshape(N, T, H * d)                   # (N, T, E)


@st.composite
def cases(draw):
    N = draw(st.integers(1, 3))
    T = draw(st.integers(1, 6))
    H = draw(st.integers(1, 3))
    d = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kind = draw(st.sampled_from(["none", "causal", "bool", "float", "padding"]))
    contiguous = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    qkv = rng.standard_normal((N, T, 3 * H * d)).astype(dtype)
    if not contiguous:                     # the same values, through a transposed view
        qkv = np.ascontiguousarray(qkv.transpose(1, 0, 2)).transpose(1, 0, 2)
    mask, causal = None, kind == "causal"
    if kind == "bool":                     # True = may attend; keep the diagonal so no row is empty
        mask = (rng.random((N, H, T, T)) < 0.6) | np.eye(T, dtype=bool)
    elif kind == "float":
        mask = rng.uniform(-1, 1, (1, 1, T, T)).astype(dtype)
    elif kind == "padding":                # (N, 1, 1, T): the last key of each sample hidden if T > 1
        mask = np.ones((N, 1, 1, T), dtype=bool)
        mask[..., -1] = T == 1
    return qkv, H, mask, causal


def tolerance(dtype):
    return (1e-10, 1e-12) if dtype == np.float64 else (2e-5, 2e-6)


@settings(max_examples=40, deadline=None)
@given(cases())
def test_forward_matches_numpy_reference(case):
    qkv, H, mask, causal = case
    out = self_attention_heads(mdl.tensor(qkv), H, mask=mask, is_causal=causal)
    assert out.shape == (qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3)
    assert out.dtype == qkv.dtype
    rtol, atol = tolerance(qkv.dtype)
    np.testing.assert_allclose(out.data, reference(qkv, H, mask, causal), rtol=rtol, atol=atol)


@settings(max_examples=30, deadline=None)
@given(cases(), st.sampled_from(["numba", "numpy"]))
def test_forward_and_gradients_equal_sdpa_on_split_heads(case, backend):
    qkv, H, mask, causal = case
    rng = np.random.default_rng(0)
    N, T, E3 = qkv.shape
    grad_out = rng.standard_normal((N, T, E3 // 3)).astype(qkv.dtype)
    before = qkv.copy()
    with kernels.use(backend):
        packed = mdl.tensor(qkv, requires_grad=True)
        out = self_attention_heads(packed, H, mask=mask, is_causal=causal)
        out.backward(grad_out)
        separate = mdl.tensor(qkv, requires_grad=True)
        N, T, E3 = qkv.shape
        E, d = E3 // 3, E3 // 3 // H
        q, k, v = (separate[:, :, i * E:(i + 1) * E].reshape(N, T, H, d).transpose(1, 2)
                   for i in range(3))
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        expected = heads.transpose(1, 2).reshape(N, T, E)
        expected.backward(grad_out)
    rtol, atol = tolerance(qkv.dtype)
    np.testing.assert_allclose(out.data, expected.data, rtol=rtol, atol=atol)
    np.testing.assert_allclose(packed.grad, separate.grad, rtol=rtol * 10, atol=atol * 10)
    np.testing.assert_array_equal(qkv, before)               # the caller's array is not written


@pytest.mark.parametrize("kind", ["plain", "causal", "bool", "float", "dropout"])
def test_gradcheck_float64(kind):
    rng = np.random.default_rng(1)
    qkv = rng.standard_normal((2, 4, 12))                    # N=2, T=4, H=2, d=2
    mask = {"bool": np.tril(np.ones((4, 4), dtype=bool))[None, None] | np.eye(4, dtype=bool),
            "float": rng.uniform(-1, 1, (2, 1, 4, 4))}.get(kind)
    dropout_p = 0.3 if kind == "dropout" else 0.0

    def attend(t):
        mdl.manual_seed(5)                                   # the same dropout mask every call
        return self_attention_heads(t, 2, mask=mask, is_causal=kind == "causal",
                                    dropout_p=dropout_p)
    assert gradcheck(attend, [qkv])


def test_hand_computed_single_head():
    """T = 2, one head of width 1, causal: row 0 sees only itself, row 1 averages
    v with weights softmax(q1 k0, q1 k1)."""
    q, k, v = [1.0, 2.0], [0.0, math.log(3.0) / 2.0], [4.0, 8.0]   # per position
    qkv = np.array([[[q[0], k[0], v[0]], [q[1], k[1], v[1]]]])       # (1, 2, 3)
    out = self_attention_heads(mdl.tensor(qkv), 1, is_causal=True).data
    # row 1: scores 2*0 = 0 and 2*log(3)/2 = log 3 -> weights 1/4, 3/4
    np.testing.assert_allclose(out[0, :, 0], [4.0, 0.25 * 4.0 + 0.75 * 8.0], rtol=1e-12)


def test_dropout_is_repeatable_with_the_seed():
    qkv = np.random.default_rng(2).standard_normal((2, 5, 6)).astype(np.float32)
    mdl.manual_seed(3)
    a = self_attention_heads(mdl.tensor(qkv), 1, dropout_p=0.5).data
    mdl.manual_seed(3)
    b = self_attention_heads(mdl.tensor(qkv), 1, dropout_p=0.5).data
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, reference(qkv, 1))


@pytest.mark.parametrize("qkv, heads, kwargs, error, words", [
    (np.zeros((2, 3, 12), np.float32), 0, {}, ValueError, "num_heads"),
    (np.zeros((2, 3, 12), np.float32), 2.0, {}, ValueError, "num_heads"),
    (np.zeros((2, 3, 10), np.float32), 2, {}, ValueError, "(N, T, 3 * E)"),
    (np.zeros((3, 12), np.float32), 2, {}, ValueError, "(N, T, 3 * E)"),
    (np.zeros((2, 3, 12), np.int64), 2, {}, TypeError, "float32 or float64"),
    (np.zeros((2, 0, 12), np.float32), 2, {}, ValueError, "empty"),
    (np.zeros((2, 3, 12), np.float32), 2, {"mask": np.ones((4, 4), bool)}, ValueError, "attn_mask"),
    (np.zeros((2, 3, 12), np.float32), 2, {"mask": [[True]]}, TypeError, "mask must be an ndarray"),
    (np.zeros((2, 3, 12), np.float32), 2, {"mask": np.ones((3, 3), bool), "is_causal": True},
     ValueError, "not both"),
    (np.zeros((2, 3, 12), np.float32), 2, {"dropout_p": 1.0}, ValueError, "dropout_p"),
])
def test_bad_input_names_the_op(qkv, heads, kwargs, error, words):
    with pytest.raises(error, match="self_attention_heads") as caught:
        self_attention_heads(mdl.tensor(qkv), heads, **kwargs)
    assert words in str(caught.value)


def test_multihead_self_attention_uses_one_projection_and_matches_cross_path():
    """MultiheadAttention(x, x, x) runs the packed op; giving it equal copies
    (different tensors) runs the three separate projections: same values and
    the same parameter gradients."""
    module = mdl.nn.MultiheadAttention(8, 2)
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    x = np.random.default_rng(4).standard_normal((2, 5, 8))
    grads = []
    for same in (True, False):
        module.zero_grad()
        t = mdl.tensor(x, requires_grad=True)
        inputs = (t, t, t) if same else (t, t * 1.0, t * 1.0)
        out, weights = module(*inputs, is_causal=True)
        out.backward(np.cos(out.data))
        grads.append((out.data, weights.data, t.grad.copy(),
                      [p.grad.copy() for p in module.parameters()]))
    (out_a, w_a, gx_a, gp_a), (out_b, w_b, gx_b, gp_b) = grads
    np.testing.assert_allclose(out_a, out_b, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(w_a, w_b, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gx_a, gx_b, rtol=1e-11, atol=1e-12)
    for a, b in zip(gp_a, gp_b):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
