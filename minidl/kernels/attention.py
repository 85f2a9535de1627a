"""Scaled dot-product attention kernels: contract, readable loops, NumPy twin
and the entry points the autograd op calls. Pure ndarrays, no autograd.

    out, lse = forward(q, k, v, bias, bias_index, causal, scale, dropout_p, seed)
    dq, dk, dv = backward(q, k, v, bias, bias_index, causal, scale, dropout_p, seed,
                          out, lse, dout)

Contract (the op, minidl/ops/attention.py, validates before anything here runs):
- q (BH, L, E), k (BH, S, E), v (BH, S, Ev): one float dtype (float32 or
  float64), batch and heads flattened into BH.
- bias (MB, Lb, S), same dtype, Lb in {1, L}: an additive mask, added to the
  scaled scores of batch-head b as bias[bias_index[b], i or 0, :] (-inf = may
  not attend); MB == 0 means no mask. bias_index (BH,) int64.
- causal: key j is masked for query i when j > i (top-left aligned).
- dropout: weight (b, i, j) is kept when `dropout_hash.dropout_keep(seed,
  (b*L + i)*S + j, threshold)`, and then scaled by keep_scale = 1 / (1 - p);
  backward recomputes the same mask. `seed` is drawn by the op.
- Writes out (BH, L, Ev) and lse (BH, L) float64, the logsumexp of each row's
  masked scores. A row whose every key is masked gives an output row of
  zeros, lse -inf and zero gradients (PyTorch's math backend gives NaN
  there). A NaN score makes its row's output and lse NaN, the row of dq
  NaN, and all of its batch-head's dk and dv NaN, whatever the mask (as in
  PyTorch's math backend; the kernels' matrix products would spread the NaN
  through the zero weights of masked keys anyway, 0 * NaN being NaN).
  Inputs are never written.

The math, for query row i:

    s_ij = scale * q_i . k_j + bias_ij        p_ij = exp(s_ij - lse_i)
    out_i = sum_j p_ij z_ij v_j                (z_ij: dropout factor, 1 without)

and backward, for dO = dL/d out:

    dV_j   = sum_i p_ij z_ij dO_i
    dP_ij  = z_ij (dO_i . v_j)                     (gradient w.r.t. p_ij)
    dS_ij  = p_ij (dP_ij - D_i),   D_i = sum_j p_ij dP_ij = dO_i . out_i
    dQ_i   = scale * sum_j dS_ij k_j
    dK_j   = scale * sum_i dS_ij q_i

(dS is also the gradient of an additive mask: the NumPy twin returns it.)

Which loops run (`minidl.kernels.use`):
- "python": the readable loops below, interpreted: one query row at a time.
- "numba":  `attention_fast.py`: the same computation in blocks. With a
            causal mask over long sequences: small tiles (online softmax,
            blocked products, a vectorisable exp), a few KiB per thread.
            Otherwise: blocks of DENSE_Q query rows (DENSE_Q x S scores
            per thread) multiplied with BLAS. Never an L x S matrix; beyond inputs and outputs,
            memory is the (BH, L) logsumexp plus those per-thread blocks.
            Its docstring explains each step; tests/test_attention_fast.py
            holds it equal to the readable loops.
- "numpy":  the twin below, which materialises the (BH, L, S) scores.
"""
import numpy as np
from numba import njit, prange

from . import attention_fast
from ..threads import single_threaded_blas
from .backend import current, interpreted, kernel_array
from .dropout_hash import dropout_keep, dropout_keep_numpy, dropout_threshold


# ---- loop kernels (the readable reference; interpreted by the "python" backend) ----
@njit(parallel=True, cache=True)
def attention_forward_loops(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                            keep_scale, out, lse):
    """Writes out (BH, L, Ev) and lse (BH, L); see the module docstring.
    One query row (b, i) per iteration, sums in float64."""
    n_bh, L, E = q.shape
    S, Ev = k.shape[1], v.shape[2]
    for row in prange(n_bh * L):
        b = row // L                                     # batch-head
        i = row % L                                      # query row
        scores = np.empty(S)                             # s_ij for every key j
        largest = -np.inf
        has_nan = False
        for j in range(S):
            t = np.float64(0.0)
            for e in range(E):
                t += q[b, i, e] * k[b, j, e]             # q_i . k_j
            t *= scale
            if bias.shape[0] > 0:                        # additive mask, one row or one per query
                t += bias[bias_index[b], i if bias.shape[1] > 1 else 0, j]
            if causal and j > i:
                t = -np.inf
            scores[j] = t
            has_nan = has_nan or t != t
            largest = max(largest, t)
        if has_nan:                                      # NaN in, NaN out
            out[b, i, :] = np.nan
            lse[b, i] = np.nan
            continue
        if largest == -np.inf:                           # every key masked: output 0
            out[b, i, :] = 0
            lse[b, i] = -np.inf
            continue
        total = np.float64(0.0)
        for j in range(S):
            scores[j] = np.exp(scores[j] - largest)      # in (0, 1]; 0 where masked
            total += scores[j]
        acc = np.zeros(Ev)                               # sum_j p_ij z_ij v_j
        for j in range(S):
            p = scores[j] / total                        # softmax weight p_ij
            if threshold > 0:                            # dropout: keep and rescale, or drop
                keep = dropout_keep(seed, np.uint64((b * L + i) * S + j), threshold)
                p = p * keep_scale if keep else 0.0
            for d in range(Ev):
                acc[d] += p * v[b, j, d]
        for d in range(Ev):
            out[b, i, d] = acc[d]
        lse[b, i] = largest + np.log(total)


@njit(parallel=True, cache=True)
def attention_backward_loops(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                             keep_scale, out, lse, dout, dq, dk, dv):
    """Adds the gradients into dq (BH, L, E), dk (BH, S, E), dv (BH, S, Ev),
    which must be zero on entry; see the module docstring. One batch-head per
    parallel iteration (so dk and dv rows are written by one thread), one
    query row at a time inside it."""
    n_bh, L, E = q.shape
    S, Ev = k.shape[1], v.shape[2]
    for b in prange(n_bh):
        for i in range(L):
            if lse[b, i] == -np.inf:                     # fully masked row: no gradient
                continue
            if lse[b, i] != lse[b, i]:                   # NaN row: NaN gradients
                dq[b, i, :] = np.nan
                dk[b, :, :] = np.nan
                dv[b, :, :] = np.nan
                continue
            d_i = np.float64(0.0)                        # D_i = dO_i . out_i
            for d in range(Ev):
                d_i += dout[b, i, d] * out[b, i, d]
            for j in range(S):
                if causal and j > i:
                    continue                             # masked: p_ij = 0
                s = np.float64(0.0)                      # s_ij, recomputed
                for e in range(E):
                    s += q[b, i, e] * k[b, j, e]
                s *= scale
                if bias.shape[0] > 0:
                    s += bias[bias_index[b], i if bias.shape[1] > 1 else 0, j]
                p = np.exp(s - lse[b, i])                # p_ij
                z = 1.0                                  # dropout factor z_ij
                if threshold > 0:
                    keep = dropout_keep(seed, np.uint64((b * L + i) * S + j), threshold)
                    z = keep_scale if keep else 0.0
                dp = np.float64(0.0)                     # dP_ij = z_ij dO_i . v_j
                for d in range(Ev):
                    dp += dout[b, i, d] * v[b, j, d]
                dp *= z
                ds = p * (dp - d_i)                      # dS_ij
                for d in range(Ev):
                    dv[b, j, d] += p * z * dout[b, i, d]     # dV_j += p z dO_i
                for e in range(E):
                    dq[b, i, e] += scale * ds * k[b, j, e]   # dQ_i += scale dS k_j
                    dk[b, j, e] += scale * ds * q[b, i, e]   # dK_j += scale dS q_i


# ---- NumPy twin (vectorised: materialises the (BH, L, S) scores) ----------------------
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
    nan_rows = np.isnan(lse).any(axis=1)                     # (BH,) batch-heads with a NaN row:
    dk[nan_rows] = np.nan                                    # all their keys' gradients NaN
    dv[nan_rows] = np.nan                                    # (the causal zeros would spare some)
    return dq.astype(q.dtype), dk.astype(q.dtype), dv.astype(q.dtype), ds.astype(q.dtype)

# ---- entry points: pick the backend ---------------------------------------------------
def _writeable(*arrays):
    """The arrays as `backend.kernel_array` (C-contiguous, writeable)."""
    return tuple(kernel_array(a) for a in arrays)


def _dropout_args(dropout_p, seed, dtype):
    threshold = dropout_threshold(dropout_p)
    keep_scale = dtype.type(1.0 / (1.0 - dropout_p))
    return np.uint64(seed), threshold, keep_scale


def _run(fast, readable, *args):
    """The optimised loops on "numba", the readable ones interpreted on "python"."""
    if current() == "numba":
        with single_threaded_blas():              # the dense kernels call BLAS from Numba's threads
            fast(*args)
        return
    with np.errstate(over="ignore"):              # interpreted, the dropout hash wraps around on purpose
        interpreted(readable)(*args)


def forward(q, k, v, bias, bias_index, causal, scale, dropout_p=0.0, seed=0):
    """Attention output (BH, L, Ev) and row logsumexp (BH, L) float64."""
    scale = q.dtype.type(scale)
    seed, threshold, keep_scale = _dropout_args(dropout_p, seed, q.dtype)
    if current() == "numpy":
        return attention_forward_numpy(q, k, v, bias, bias_index, causal, scale,
                                       seed, threshold, keep_scale)
    q, k, v, bias, bias_index = _writeable(q, k, v, bias, bias_index)
    n_bh, L = q.shape[:2]
    out = np.empty((n_bh, L, v.shape[2]), q.dtype)
    lse = np.empty((n_bh, L), np.float64)
    fast = (attention_fast.attention_forward_dense if attention_fast.use_dense(q, k, v, causal)
            else attention_fast.attention_forward_blocked)
    _run(fast, attention_forward_loops,
         q, k, v, bias, bias_index, bool(causal), scale, seed, threshold, keep_scale, out, lse)
    return out, lse


def backward(q, k, v, bias, bias_index, causal, scale, dropout_p, seed, out, lse, dout,
             need_bias_grad=False, grad_shapes=None):
    """Gradients dq, dk, dv (and dS (BH, L, S) for the additive mask when
    `need_bias_grad`: that one is always computed by the NumPy twin, since
    it is an L x S matrix anyway).

    grad_shapes: None (dq, dk, dv shaped like q, k, v), or three shapes with as
    many elements as q, k, v (the op's (B, H, L, E)): dq, dk, dv then come in
    those shapes. On the loop backends they are new arrays of those shapes
    that the kernels write through (BH, ., .) views, so each owns its memory
    (autograd stores it as a leaf's gradient without a copy)."""
    shapes = grad_shapes or (q.shape, k.shape, v.shape)
    for shape, array, name in zip(shapes, (q, k, v), ("dq", "dk", "dv")):
        if int(np.prod(shape)) != array.size:
            raise ValueError(f"attention backward: {name} shape {tuple(shape)} does not hold the "
                             f"{array.size} elements of {array.shape}")
    scale = q.dtype.type(scale)
    seed, threshold, keep_scale = _dropout_args(dropout_p, seed, q.dtype)
    args = (q, k, v, bias, bias_index, bool(causal), scale, seed, threshold, keep_scale,
            out, lse, dout)
    if current() == "numpy" or need_bias_grad:
        dq, dk, dv, ds = attention_backward_numpy(*args)
        grads = tuple(g.reshape(shape) for g, shape in zip((dq, dk, dv), shapes))
        return grads + (ds,) if need_bias_grad else grads
    args = _writeable(*args[:5]) + args[5:10] + _writeable(*args[10:])
    owners = tuple(np.zeros(shape, q.dtype) for shape in shapes)                 # what is returned
    grads = tuple(o.reshape(a.shape) for o, a in zip(owners, args[:3]))         # (BH, ., .) views of them
    fast = (attention_fast.attention_backward_dense if attention_fast.use_dense(q, k, v, causal)
            else attention_fast.attention_backward_blocked)
    _run(fast, attention_backward_loops, *args, *grads)
    return owners


def weights(q, k, bias, bias_index, causal, scale):
    """The (BH, L, S) attention probabilities (no dropout), for plots; always
    computed by the NumPy twin. Fully masked rows are 0."""
    return softmax_rows(attention_scores(q, k, bias, bias_index, causal, q.dtype.type(scale)))[0]
