"""Fused scaled dot-product attention, forward: one pass over the keys per
block of queries, never holding more than a (BLOCK_Q x BLOCK_K) tile of scores.

The idea ("online softmax", as in FlashAttention): for query row i,

    out_i = sum_j softmax_j(s_ij) v_j,     s_ij = scale * q_i . k_j + bias_ij

is computed block of keys by block of keys, keeping per row only
    m_i   the largest score seen so far,
    l_i   sum_j exp(s_ij - m_i) over the keys seen so far,
    acc_i sum_j exp(s_ij - m_i) v_j over the keys seen so far.
When a new block raises the maximum from m to m', the old sums are simply
rescaled by alpha = exp(m - m') before the block is added. At the end
out_i = acc_i / l_i, and logsumexp_i = m_i + log(l_i) is saved: backward
rebuilds every weight as p_ij = exp(s_ij - logsumexp_i) without storing them.
"""
import numpy as np
from numba import njit, prange

from .attention_math import (FASTMATH, accumulate_rows, dropout_keep, exp_shifted,
                             scores_block)

BLOCK_Q = 32     # query rows per work item (and per prange task)
BLOCK_K = 64     # keys per tile: a 32 x 64 float32 tile is 8 KiB, well inside L1


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def attention_forward_loops(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                            keep_scale, out, lse):
    """Contract.

    q (BH, L, E), k (BH, S, E), v (BH, S, Ev): C-contiguous, one float dtype.
    bias (MB, Lb, S) same dtype, Lb in {1, L}: added to the scaled scores of
        batch-head b as bias[bias_index[b], i or 0, :] (-inf = may not attend);
        MB == 0 means no mask. bias_index (BH,) int64.
    causal: key j is masked for query i when j > i (top-left aligned).
    scale: the scores' factor, a scalar of the inputs' dtype.
    seed, threshold (uint64), keep_scale (dtype scalar): dropout on the
        weights; threshold == 0 means no dropout (see attention_math).
    Writes out (BH, L, Ev) and lse (BH, L) float64: logsumexp of each row's
    masked scores, -inf for a row whose every key is masked (its output row
    is 0). A NaN score makes its row's output and lse NaN. Writes nothing
    else; the only other memory is a few KiB of tiles per task.
    """
    n_bh, L = q.shape[:2]
    S = k.shape[1]
    Ev = v.shape[2]
    has_bias = bias.shape[0] > 0
    bias_rows = bias.shape[1]
    dropout = threshold > 0
    n_qblocks = (L + BLOCK_Q - 1) // BLOCK_Q
    # one task per (batch-head, query block): many small tasks balance two cores
    for task in prange(n_bh * n_qblocks):
        b = task // n_qblocks                      # batch-head
        i0 = (task - b * n_qblocks) * BLOCK_Q      # first query row of the block
        nr = min(BLOCK_Q, L - i0)
        mb = bias_index[b]
        s = np.empty((BLOCK_Q, BLOCK_K), q.dtype)  # scores, then weights, of one tile
        acc = np.zeros((BLOCK_Q, Ev), q.dtype)     # running sum of weights * values
        m = np.full(BLOCK_Q, -np.inf)              # running row maxima
        l = np.zeros(BLOCK_Q)                      # running sums of exp(s - m)
        bits = np.empty(BLOCK_K, np.int64)         # exp_shifted's workspace
        nan_row = np.zeros(BLOCK_Q, np.bool_)      # rows that met a NaN score
        key_end = min(S, i0 + nr) if causal else S  # causal: row i0+nr-1 sees keys < i0+nr
        for j0 in range(0, key_end, BLOCK_K):
            nc = min(BLOCK_K, key_end - j0)
            scores_block(q[b], k[b], i0, j0, nr, nc, s)       # s[r, c] = q_(i0+r) . k_(j0+c)
            for r in range(nr):
                i = i0 + r
                for c in range(nc):
                    s[r, c] *= scale
                if has_bias:
                    row = i if bias_rows > 1 else 0
                    for c in range(nc):
                        s[r, c] += bias[mb, row, j0 + c]
                if causal:
                    for c in range(max(0, i + 1 - j0), nc):  # keys j0 + c > i
                        s[r, c] = -np.inf
                block_max = -np.inf
                for c in range(nc):
                    block_max = max(block_max, s[r, c])
                    if s[r, c] != s[r, c]:         # NaN score: the row's output is NaN
                        nan_row[r] = True
                m_new = max(m[r], block_max)
                if m_new == -np.inf or nan_row[r]:  # every key so far masked (or NaN)
                    for c in range(nc):
                        s[r, c] = 0
                    continue
                alpha = np.exp(m[r] - m_new)       # 0 when m[r] is -inf
                exp_shifted(s[r], nc, m_new, bits)  # s[r, c] <- exp(s[r, c] - m_new)
                total = 0.0
                for c in range(nc):
                    total += s[r, c]
                l[r] = l[r] * alpha + total
                m[r] = m_new
                if alpha != 1.0:
                    for d in range(Ev):
                        acc[r, d] *= alpha
                if dropout:                        # weights of dropped keys -> 0
                    base = np.uint64((b * L + i) * S + j0)  # flat index of (b, i, j0)
                    for c in range(nc):
                        if dropout_keep(seed, base + np.uint64(c), threshold):
                            s[r, c] *= keep_scale
                        else:
                            s[r, c] = 0
            accumulate_rows(s, v[b], j0, nr, nc, acc, 0)  # acc[r] += sum_c s[r, c] v_(j0+c)
        for r in range(nr):
            i = i0 + r
            if nan_row[r]:                         # NaN in, NaN out (as the twin)
                for d in range(Ev):
                    out[b, i, d] = np.nan
                lse[b, i] = np.nan
            elif l[r] == 0.0:                      # fully masked row: output 0
                for d in range(Ev):
                    out[b, i, d] = 0
                lse[b, i] = -np.inf
            else:
                inv = 1.0 / l[r]
                for d in range(Ev):
                    out[b, i, d] = acc[r, d] * inv
                lse[b, i] = m[r] + np.log(l[r])
