"""Scaled dot-product attention as an autograd op, with PyTorch's signature.

    out = softmax(q k^T * scale + mask) v          (..., L, E), (..., S, E), (..., S, Ev) -> (..., L, Ev)

The kernels (minidl/kernels/attention.py) work on (BH, L, E) stacks; this file
validates the arguments, flattens the leading batch dims (which broadcast
between q, k, v and the mask), turns a bool mask into an additive one
(True -> 0, False -> -inf), and maps gradients back to the inputs' shapes.

Conventions (as PyTorch): bool mask True = may attend; a float mask is added to
the scores; is_causal masks key j for query i when j > i (top-left aligned, so
with L != S row i sees keys 0..i); scale None means 1/sqrt(E); dropout_p > 0
drops attention weights every call (there is no `training` flag here, as in
PyTorch's functional form). A fully masked row (no key allowed) gives zeros
and zero gradients, as PyTorch 2.13's default CPU call does (its "math"
backend gives NaN there).
"""
import math
import numbers

import numpy as np

from .. import random as _random
from ..autograd.function import Function
from ..autograd.tensor import Tensor, as_tensor
from ..kernels import attention as kernels
from ..kernels.geometry import DTYPES
from .broadcast import sum_to



class ScaledDotProductAttention(Function):
    """out_i = sum_j p_ij v_j, p_ij = softmax_j(scale q_i.k_j + bias_ij);
    dV = P^T dO, dS = P * (dO V^T - rowsum(dO * out)), dQ = scale dS K,
    dK = scale dS^T Q, d(bias) = dS (see kernels/attention.py)."""

    def forward(self, q, k, v, mask=None, *, is_causal, scale, dropout_p):
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        L, E = q.shape[-2:]
        S, Ev = v.shape[-2:]
        dtype = q.dtype
        q3 = _stack(q, batch)                                  # (BH, L, E)
        k3 = _stack(k, batch)                                  # (BH, S, E)
        v3 = _stack(v, batch)                                  # (BH, S, Ev)
        bias, bias_index = _bias(mask, batch, L, S, dtype)     # (MB, 1 or L, S), (BH,)
        seed = int(_random.generator().integers(0, 2**63)) if dropout_p > 0 else 0
        out3, lse = kernels.forward(q3, k3, v3, bias, bias_index, is_causal, scale,
                                    dropout_p, seed)           # (BH, L, Ev), (BH, L)
        self.save_for_backward(q3, k3, v3, bias, bias_index, out3, lse)
        self.options = (is_causal, scale, dropout_p, seed)
        self.shapes = (batch, q.shape, k.shape, v.shape, None if mask is None else mask.shape)
        return out3.reshape(batch + (L, Ev))

    def backward(self, grad):
        q3, k3, v3, bias, bias_index, out3, lse = self.saved_tensors
        is_causal, scale, dropout_p, seed = self.options
        batch, q_shape, k_shape, v_shape, mask_shape = self.shapes
        dout = np.ascontiguousarray(grad.reshape(out3.shape), dtype=q3.dtype)  # (BH, L, Ev)
        need_mask_grad = len(self.needs_input_grad) > 3 and self.needs_input_grad[3]
        shapes = tuple(batch + a.shape[1:] for a in (q3, k3, v3))   # (..., L, E), (..., S, E), (..., S, Ev)
        grads = kernels.backward(q3, k3, v3, bias, bias_index, is_causal, scale, dropout_p,
                                 seed, out3, lse, dout, need_bias_grad=need_mask_grad,
                                 grad_shapes=shapes)           # dq, dk, dv in those shapes
        dq, dk, dv = grads[:3]
        result = [sum_to(dq, q_shape), sum_to(dk, k_shape), sum_to(dv, v_shape)]
        if mask_shape is not None:
            result.append(sum_to(grads[3].reshape(batch + grads[3].shape[1:]), mask_shape)
                          if need_mask_grad else None)
        return tuple(result)


class SelfAttentionHeads(Function):
    """Multi-head self-attention on the packed output of ONE in-projection, in
    PyTorch's MultiheadAttention layout, as one op:

        qkv (N, T, 3E) = [q | k | v] along the last axis, E = H * d; head h of q
                         is qkv[..., h*d:(h+1)*d], of k E + that, of v 2E + that
        out (N, T, E)  = the H heads' attention outputs side by side (head h at
                         columns h*d:(h+1)*d), ready for the output projection

    It computes exactly scaled_dot_product_attention(q, k, v) with q, k, v split
    into heads (N, H, T, d), followed by the transpose back to (N, T, E). Done
    as separate ops, the split costs three slices, reshapes and transposes
    (and as many gradient copies and zero-filled slice gradients in backward);
    here the heads are gathered with one copy, and backward writes dq, dk, dv
    straight into one (N, T, 3E) gradient, the layout the in-projection's
    backward takes. `mask` is a plain array (no gradient): bool True = may
    attend, or additive float, broadcastable to (N, H, T, T)."""

    def forward(self, qkv, *, num_heads, mask, is_causal, scale, dropout_p):
        N, T, E3 = qkv.shape
        E, H = E3 // 3, num_heads
        d = E // H
        heads = qkv.reshape(N, T, 3, H, d).transpose(2, 0, 3, 1, 4)      # (3, N, H, T, d) view
        q3, k3, v3 = np.ascontiguousarray(heads).reshape(3, N * H, T, d)   # one copy; (NH, T, d) each
        bias, bias_index = _bias(mask, (N, H), T, T, qkv.dtype)         # (MB, 1 or T, T), (NH,)
        seed = int(_random.generator().integers(0, 2**63)) if dropout_p > 0 else 0
        out3, lse = kernels.forward(q3, k3, v3, bias, bias_index, is_causal, scale,
                                    dropout_p, seed)                   # (NH, T, d), (NH, T)
        self.save_for_backward(q3, k3, v3, bias, bias_index, out3, lse)
        self.options = (is_causal, scale, dropout_p, seed, N, H)
        out = np.empty((N, T, H, d), qkv.dtype)                          # (N, T, H, d)
        out.transpose(0, 2, 1, 3)[...] = out3.reshape(N, H, T, d)        # head h -> columns h*d:(h+1)*d
        return out.reshape(N, T, E)                                      # (N, T, E)

    def backward(self, grad):
        q3, k3, v3, bias, bias_index, out3, lse = self.saved_tensors
        is_causal, scale, dropout_p, seed, N, H = self.options
        NH, T, d = q3.shape
        dout = np.empty((N, H, T, d), q3.dtype)                          # (N, H, T, d)
        dout[...] = grad.reshape(N, T, H, d).transpose(0, 2, 1, 3)       # heads apart (also casts)
        dq, dk, dv = kernels.backward(q3, k3, v3, bias, bias_index, is_causal, scale, dropout_p,
                                      seed, out3, lse, dout.reshape(NH, T, d))  # (NH, T, d) each
        dqkv = np.empty((N, T, 3, H, d), q3.dtype)                       # (N, T, 3, H, d)
        for i, g in enumerate((dq, dk, dv)):                             # i: q, k or v
            dqkv[:, :, i] = g.reshape(N, H, T, d).transpose(0, 2, 1, 3)  # (N, T, H, d)
        return dqkv.reshape(N, T, 3 * H * d)                             # (N, T, 3E)


def self_attention_heads(qkv, num_heads, mask=None, is_causal=False, scale=None, dropout_p=0.0):
    """Multi-head self-attention from a packed projection: qkv (N, T, 3E) ->
    (N, T, E), the heads' outputs side by side (see SelfAttentionHeads). The
    same values as splitting qkv into q, k, v (N, H, T, E // H) and calling
    scaled_dot_product_attention, in one op. mask: None, or an ndarray (bool
    True = may attend, or float added to the scores) broadcastable to
    (N, H, T, T), without gradient. scale: default 1/sqrt(E // H)."""
    op = "self_attention_heads"
    data = _array("qkv", qkv, op)
    if isinstance(num_heads, bool) or not isinstance(num_heads, numbers.Integral) or num_heads < 1:
        raise ValueError(f"{op}: num_heads must be a positive integer, got {num_heads!r}")
    if data.ndim != 3 or data.shape[2] % (3 * num_heads) != 0:
        raise ValueError(f"{op}: qkv must be (N, T, 3 * E) with E divisible by num_heads="
                         f"{num_heads}, got shape {data.shape}")
    N, T, E3 = data.shape
    d = E3 // (3 * num_heads)
    heads = data.reshape(N, T, 3, num_heads, d)
    q, k = heads[:, :, 0].transpose(0, 2, 1, 3), heads[:, :, 1].transpose(0, 2, 1, 3)  # views
    v = heads[:, :, 2].transpose(0, 2, 1, 3)
    if mask is not None and not isinstance(mask, np.ndarray):
        raise TypeError(f"{op}: mask must be an ndarray or None, got {type(mask).__name__}")
    mask = _check(op, q, k, v, mask, is_causal, scale, dropout_p)   # dtypes, sizes, mask shape
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    return SelfAttentionHeads.apply(qkv, num_heads=int(num_heads), mask=mask,
                                    is_causal=bool(is_causal), scale=scale,
                                    dropout_p=float(dropout_p))


def _stack(array, batch):
    """(..., n, d) broadcast to batch + (n, d), as a C-contiguous (BH, n, d) copy."""
    if array.shape[:-2] != batch:                       # broadcast only when needed
        array = np.broadcast_to(array, batch + array.shape[-2:])
    return np.ascontiguousarray(array.reshape((-1,) + array.shape[-2:]))


def _bias(mask, batch, L, S, dtype):
    """The additive mask as (MB, Lb, S) in `dtype` (Lb = 1 when the mask does not
    vary over queries), and for each flattened batch-head which slice it uses.
    Without a mask: an empty (0, 1, S) bias. Never copies more than the mask."""
    n_bh = int(np.prod(batch, dtype=np.int64))
    if mask is None:
        return np.zeros((0, 1, S), dtype), np.zeros(n_bh, np.int64)
    if mask.dtype == np.bool_:
        mask = np.where(mask, dtype.type(0), dtype.type(-np.inf))
    mask = mask.reshape((1,) * (len(batch) + 2 - mask.ndim) + mask.shape)  # same rank as out
    lead, rows = mask.shape[:-2], mask.shape[-2]
    bias = np.ascontiguousarray(
        np.broadcast_to(mask, lead + (rows, S)).reshape((-1, rows, S)), dtype=dtype)
    # slice number of each batch-head: an index array with the mask's leading shape, broadcast
    index = np.arange(bias.shape[0], dtype=np.int64).reshape(lead)
    return bias, np.ascontiguousarray(np.broadcast_to(index, batch).reshape(-1))


def _array(name, value, op):
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{op}: {name} must be a Tensor or an ndarray, got {type(value).__name__}")


def _check(op, query, key, value, attn_mask, is_causal, scale, dropout_p=0.0):
    """All argument checks, before any kernel runs; returns the mask array (or None)."""
    q = _array("query", query, op)
    k = _array("key", key, op)
    named = [("query", q), ("key", k)]
    v = None
    if value is not None:
        v = _array("value", value, op)
        named.append(("value", v))
    for name, a in named:
        if a.dtype not in DTYPES:
            raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {a.dtype}")
        if a.ndim < 2:
            raise ValueError(f"{op}: {name} must have shape (..., length, features) with at "
                             f"least 2 dims, got shape {a.shape}")
        if 0 in a.shape:
            raise ValueError(f"{op}: {name} of shape {a.shape} is empty")
    if any(a.dtype != q.dtype for _, a in named):
        raise TypeError(f"{op}: query, key and value must share one dtype, got "
                        + ", ".join(f"{n} {a.dtype}" for n, a in named))
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{op}: query {q.shape} and key {k.shape} must have the same last "
                         f"dim (E), got {q.shape[-1]} and {k.shape[-1]}")
    if v is not None and k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: key {k.shape} and value {v.shape} must have the same "
                         f"length S (dim -2), got {k.shape[-2]} and {v.shape[-2]}")
    try:
        batch = np.broadcast_shapes(*(a.shape[:-2] for _, a in named))
    except ValueError:
        raise ValueError(f"{op}: the batch dims of " + ", ".join(f"{n} {a.shape}" for n, a in named)
                         + " cannot be broadcast together") from None
    if not isinstance(is_causal, (bool, np.bool_)):
        raise TypeError(f"{op}: is_causal must be a bool, got {is_causal!r}")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            raise TypeError(f"{op}: scale must be a number or None, got {scale!r}")
        if not math.isfinite(scale):
            raise ValueError(f"{op}: scale must be finite, got {scale}")
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, numbers.Real):
        raise TypeError(f"{op}: dropout_p must be a number in [0, 1), got {dropout_p!r}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    if attn_mask is None:
        return None
    if is_causal:
        raise ValueError(f"{op}: give either attn_mask or is_causal=True, not both")
    mask = _array("attn_mask", attn_mask, op)
    if mask.dtype != np.bool_ and mask.dtype not in DTYPES:
        raise TypeError(f"{op}: attn_mask must be bool (True = may attend) or float "
                        f"(added to the scores), got dtype {mask.dtype}")
    target = batch + (q.shape[-2], k.shape[-2])
    ok = mask.ndim >= 1 and mask.ndim <= len(target)
    if ok:
        try:
            ok = np.broadcast_shapes(mask.shape, target) == target
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"{op}: attn_mask of shape {mask.shape} cannot be broadcast to the "
                         f"scores' shape {target} (batch..., L, S) for query {q.shape} and key {k.shape}")
    return mask


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """softmax(query key^T * scale + mask) value, like
    torch.nn.functional.scaled_dot_product_attention.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); the
    leading dims broadcast. attn_mask: bool (True = may attend) or float (added),
    broadcastable to (..., L, S); a float mask that requires grad gets one
    (computed by the NumPy twin, which materialises (..., L, S)).
    scale: default 1/sqrt(E). A query row with no allowed key outputs zeros.
    dropout_p: each weight is dropped with probability dropout_p (quantised to
    multiples of 2**-24) and the rest scaled by 1/(1 - dropout_p); the mask
    is a hash of a seed drawn from minidl.random.generator() and of the
    weight's position, so `mdl.manual_seed` makes it repeatable and the fused
    backward recomputes it instead of storing it.
    """
    op = "scaled_dot_product_attention"
    mask = _check(op, query, key, value, attn_mask, is_causal, scale, dropout_p)
    E = _array("query", query, op).shape[-1]
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    inputs = (query, key, value) + (() if mask is None else (attn_mask,))
    return ScaledDotProductAttention.apply(*inputs, is_causal=bool(is_causal), scale=scale,
                                           dropout_p=float(dropout_p))


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    """The attention probabilities softmax(query key^T * scale + mask), shape
    (..., L, S), as a Tensor without gradient (for plots). No dropout; fully
    masked rows are zeros. Computed with the NumPy twin (it is L x S anyway)."""
    op = "attention_weights"
    mask = _check(op, query, key, None, attn_mask, is_causal, scale)
    q, k = _array("query", query, op), _array("key", key, op)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    bias, bias_index = _bias(mask, batch, L, S, q.dtype)
    p = kernels.weights(_stack(q, batch), _stack(k, batch), bias, bias_index,
                        bool(is_causal), scale)                   # (BH, L, S)
    return as_tensor(p.reshape(batch + (L, S)))
