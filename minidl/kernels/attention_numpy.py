"""Scaled dot-product attention, the vectorised NumPy twin: materialises the
whole (BH, L, S) score matrix, as a student would write it. Same contract and
same arguments as the fused loops (see attention_forward / attention_backward),
including the same dropout mask (the counter hash of attention_math).
"""
import numpy as np

from .attention_math import dropout_keep_numpy


def attention_scores(q, k, bias, bias_index, causal, scale):
    """s = scale * q k^T + bias, with -inf where masked: (BH, L, S)."""
    s = np.matmul(q, k.transpose(0, 2, 1)) * scale          # (BH, L, S)
    if bias.shape[0] > 0:
        s = s + bias[bias_index]                             # (BH, Lb, S) broadcasts over L
    if causal:
        L, S = s.shape[1:]
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)  # keep j <= i
    return s


def softmax_rows(s):
    """Row softmax of s (BH, L, S) and its logsumexp (BH, L) float64; a row that
    is all -inf gets weights 0 and logsumexp -inf."""
    m = s.max(axis=-1, keepdims=True)                        # (BH, L, 1)
    m = np.where(np.isfinite(m), m, 0)                       # fully masked row: shift by 0
    e = np.exp(s - m)                                        # exp(-inf) = 0
    total = e.sum(axis=-1, keepdims=True)                    # (BH, L, 1)
    weights = e / np.where(total > 0, total, 1)
    with np.errstate(divide="ignore"):
        lse = (m.astype(np.float64) + np.log(total.astype(np.float64)))[..., 0]
    return weights.astype(s.dtype), lse                      # log(0) = -inf for masked rows


def dropout_factor(shape, seed, threshold, keep_scale, dtype):
    """z (BH, L, S): keep_scale where the hash keeps element (b, i, j), else 0."""
    index = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape)  # flat (b, i, j)
    return np.where(dropout_keep_numpy(seed, index, threshold), keep_scale, 0).astype(dtype)


def attention_forward_numpy(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                            keep_scale):
    """Returns out (BH, L, Ev) and lse (BH, L) float64."""
    weights, lse = softmax_rows(attention_scores(q, k, bias, bias_index, causal, scale))
    if threshold > 0:
        weights = weights * dropout_factor(weights.shape, seed, threshold, keep_scale, q.dtype)
    return np.matmul(weights, v), lse                        # (BH, L, Ev)


def attention_backward_numpy(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                             keep_scale, out, lse, dout):
    """Returns dq, dk, dv and dS (BH, L, S), the gradient of the additive bias."""
    s = attention_scores(q, k, bias, bias_index, causal, scale)
    shift = np.where(np.isfinite(lse), lse, np.inf)[..., None]  # masked row: exp(-inf) = 0
    p = np.exp(s - shift).astype(q.dtype)                    # (BH, L, S) weights
    z = (dropout_factor(p.shape, seed, threshold, keep_scale, q.dtype)
         if threshold > 0 else np.ones((), q.dtype))
    dv = np.matmul((p * z).transpose(0, 2, 1), dout)         # (BH, S, Ev)
    dp = np.matmul(dout, v.transpose(0, 2, 1)) * z           # (BH, L, S)
    delta = np.sum(dout * out, axis=-1, keepdims=True)       # (BH, L, 1) D_i
    ds = p * (dp - delta)                                    # (BH, L, S)
    dq = np.matmul(ds, k) * scale                            # (BH, L, E)
    dk = np.matmul(ds.transpose(0, 2, 1), q) * scale         # (BH, S, E)
    return dq.astype(q.dtype), dk.astype(q.dtype), dv.astype(q.dtype), ds.astype(q.dtype)
