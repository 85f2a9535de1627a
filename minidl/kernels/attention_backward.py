"""Fused scaled dot-product attention, backward: recompute the weights tile by
tile from the saved logsumexp instead of storing the L x S matrix.

With s_ij = scale * q_i . k_j + bias_ij, p_ij = exp(s_ij - lse_i) (the softmax
weights), z_ij the dropout factor (keep / (1 - p), or 1 without dropout) and
out_i = sum_j p_ij z_ij v_j, the chain rule gives, for dO = dL/d out:

    dV_j   = sum_i p_ij z_ij dO_i
    dP_ij  = z_ij (dO_i . v_j)                     (gradient w.r.t. p_ij)
    dS_ij  = p_ij (dP_ij - D_i),   D_i = sum_j p_ij dP_ij = dO_i . out_i
    dQ_i   = scale * sum_j dS_ij k_j
    dK_j   = scale * sum_i dS_ij q_i

(dS is also the gradient of an additive mask; see attention_numpy for that.)
The loop runs over key blocks outside and query blocks inside, so dK and dV of
a key block are finished in one sweep; dQ rows are revisited once per key
block. One prange task per batch-head keeps every write private to a thread.
"""
import numpy as np
from numba import njit, prange

from .attention_forward import BLOCK_K, BLOCK_Q
from .attention_math import (FASTMATH, accumulate_cols, accumulate_rows, dropout_keep,
                             exp_shifted, scores_block)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def attention_backward_loops(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                             keep_scale, out, lse, dout, dq, dk, dv):
    """Contract.

    q, k, v, bias, bias_index, causal, scale, seed, threshold, keep_scale: as
    given to `attention_forward_loops`; out (BH, L, Ev) and lse (BH, L) are
    what it returned; dout (BH, L, Ev) the gradient of out (C-contiguous, same
    dtype). Writes dq (BH, L, E), dk (BH, S, E), dv (BH, S, Ev), which must be
    zero on entry. A row with
    lse = -inf (fully masked) contributes nothing.
    """
    n_bh, L = q.shape[:2]
    S = k.shape[1]
    Ev = v.shape[2]
    has_bias = bias.shape[0] > 0
    bias_rows = bias.shape[1]
    dropout = threshold > 0
    for b in prange(n_bh):
        delta = np.empty(L)                        # D_i = dO_i . out_i
        for i in range(L):
            total = 0.0
            for d in range(Ev):
                total += dout[b, i, d] * out[b, i, d]
            delta[i] = total
        mb = bias_index[b]
        p = np.empty((BLOCK_Q, BLOCK_K), q.dtype)   # weights p_ij z_ij of one tile
        ds = np.empty((BLOCK_Q, BLOCK_K), q.dtype)  # dP, then scale * dS, of one tile
        bits = np.empty(BLOCK_K, np.int64)
        for j0 in range(0, S, BLOCK_K):
            nc = min(BLOCK_K, S - j0)
            first_row = j0 if causal else 0        # causal: rows i < j0 see none of these keys
            for i0 in range(first_row, L, BLOCK_Q):
                nr = min(BLOCK_Q, L - i0)
                scores_block(q[b], k[b], i0, j0, nr, nc, p)      # p[r, c] = q_i . k_j
                scores_block(dout[b], v[b], i0, j0, nr, nc, ds)   # ds[r, c] = dO_i . v_j
                for r in range(nr):
                    i = i0 + r
                    if lse[b, i] == -np.inf:       # fully masked row: no gradient
                        for c in range(nc):
                            p[r, c] = 0
                            ds[r, c] = 0
                        continue
                    if lse[b, i] != lse[b, i]:     # NaN row (NaN input): NaN gradients
                        for c in range(nc):
                            p[r, c] = np.nan
                            ds[r, c] = np.nan
                        continue
                    for c in range(nc):
                        p[r, c] *= scale
                    if has_bias:
                        row = i if bias_rows > 1 else 0
                        for c in range(nc):
                            p[r, c] += bias[mb, row, j0 + c]
                    if causal:
                        for c in range(max(0, i + 1 - j0), nc):
                            p[r, c] = -np.inf
                    exp_shifted(p[r], nc, lse[b, i], bits)  # p_ij = exp(s_ij - lse_i)
                    d_i = delta[i]
                    if dropout:
                        base = np.uint64((b * L + i) * S + j0)  # flat index of (b, i, j0)
                        for c in range(nc):
                            if dropout_keep(seed, base + np.uint64(c), threshold):
                                ds[r, c] = scale * p[r, c] * (ds[r, c] * keep_scale - d_i)
                                p[r, c] *= keep_scale
                            else:
                                ds[r, c] = scale * p[r, c] * (0 - d_i)
                                p[r, c] = 0
                    else:
                        for c in range(nc):
                            ds[r, c] = scale * p[r, c] * (ds[r, c] - d_i)
                accumulate_cols(p, dout[b], i0, nr, nc, dv[b], j0)  # dV_j += sum_i p z dO_i
                accumulate_rows(ds, k[b], j0, nr, nc, dq[b], i0)    # dQ_i += sum_j dS k_j
                accumulate_cols(ds, q[b], i0, nr, nc, dk[b], j0)    # dK_j += sum_i dS q_i
