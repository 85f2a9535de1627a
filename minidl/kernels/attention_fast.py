"""The optimised attention loops: what the "numba" backend runs. The readable
loops they are held equal to (tests/test_attention_fast.py: float32 and
float64, several threads, non-contiguous inputs, masks, causal, dropout) are
`attention_forward_loops` and `attention_backward_loops` in `attention.py`.

Both compute out_i = sum_j softmax_j(s_ij) v_j with s_ij = scale q_i . k_j + bias_ij,
and the same gradients. What differs:

With a causal mask over more than DENSE_CAUSAL_MAX queries or keys (points
1-5; the kernels `attention_forward_blocked` and `attention_backward_blocked`):

1. Tiles instead of rows (forward). The readable loop handles one query row
   at a time and walks all S keys twice (scores and their maximum, then the
   weighted sum). Here a task takes a block of BLOCK_Q query rows and walks
   the keys in blocks of BLOCK_K, holding only a BLOCK_Q x BLOCK_K tile of
   scores (8 KiB in float32: it stays in L1). It uses the "online softmax"
   (as in FlashAttention): per row it keeps
       m_i   the largest score seen so far,
       l_i   sum_j exp(s_ij - m_i) over the keys seen so far,
       acc_i sum_j exp(s_ij - m_i) v_j over the keys seen so far,
   and when a new block raises the maximum from m to m', the old sums are
   rescaled by alpha = exp(m - m') before the block is added. At the end
   out_i = acc_i / l_i, and logsumexp_i = m_i + log(l_i) is saved, as in the
   readable loop. Many small tasks (batch-head x query block) balance the
   threads.
2. Key blocks outside, query blocks inside (backward). The readable loop
   runs over query rows and adds into dK and dV row by row; here each task
   (one batch-head) finishes dK and dV of a key block in one sweep over the
   query blocks, recomputing the weights of each tile from the saved
   logsumexp: never an L x S matrix in memory.
3. Blocked products written for SIMD. A tile's products are hand-written so
   that the innermost loop runs along contiguous memory and LLVM vectorises
   it: A B^T (`scores_block`) as 2 x 2 blocks of dot products, P B and P^T B
   (`accumulate_rows`, `accumulate_cols`) as "axpy" updates of four output
   rows by two terms per pass, so each loaded element serves several
   multiply-adds. (Calling BLAS per tile would put a second thread pool on
   the cores Numba's pool already uses; see minidl/threads.py.)
4. A vectorisable exp (`fast_exp.fast_exp`, float64 inside, ~2 ulp) instead
   of the C library's scalar exp, and products accumulated in the inputs'
   dtype (float32 for float32 inputs: relative error ~1e-6 at these sizes)
   where the readable loops accumulate in float64.
5. Causal masks skip work: the forward stops at the last key a block of
   queries may see; the backward starts at the first query row that sees a
   key block.

Without a causal mask, or with one over at most DENSE_CAUSAL_MAX queries and
keys (`attention_forward_dense`, `attention_backward_dense`):

6. Row blocks and BLAS. Without a causal mask nothing can be skipped, so the
   work is dense matrix products, where BLAS's register-blocked kernels go
   well beyond the hand-written tiles above. A task takes a block of query
   rows (DENSE_Q of them; DENSE_Q_CAUSAL with a causal mask, `dense_rows`)
   and their whole score rows, so the row softmax needs no online
   rescaling. With a causal mask the block of rows i0 .. i0 + nr - 1 sees
   only the keys j < i0 + nr (Sk of them): its products run over those keys
   alone, so the masked keys past the block cost nothing, and the smaller
   causal blocks leave fewer masked keys inside a block. Up to L = S = 512
   (DENSE_CAUSAL_MAX) that beats the tiles, which skip the masked keys too
   but multiply with hand-written loops (set DENSE_CAUSAL_MAX below 128 and
   time the causal rows of `minidl bench attention` to see the tiles'
   figures). The mask inside a block is applied to
   each score row (`scores_rows`). Each
   product (q k^T, p v; backward also dO v^T, dS k, p^T dO, dS^T q) is one
   `np.dot` on blocks large enough for BLAS to run near its peak: one thread
   per call, inside Numba's parallel loop, so one thread pool runs (as in
   conv_fast.py). The backward runs one task per batch-head and adds each
   query block's share of dK and dV into them (keys a causal block does not
   see get nothing from it; but a NaN query row's weights are NaN for every
   key, so it makes every key's dK and dV NaN, as in the readable loops).
   With a causal mask, the row
   maximum and the exponentials run over the keys a row may see
   and the masked weights are set to 0; the forward's exponentials
   take `exp_nonpositive_like` (scores minus their row maximum are <= 0).
"""
import numpy as np
from numba import njit, prange

from .dropout_hash import dropout_keep
from .fast_exp import cast_like, exp_like, exp_nonpositive_like, fast_exp
from .softmax import SUM_BLOCK, _row_max

# fastmath flags for loops: allow reassociation (vectorised sums) and fused
# multiply-add, but NOT "no infs / no NaNs": masks are -inf.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
BLOCK_Q = 32     # query rows per work item (and per prange task)
BLOCK_K = 64     # keys per tile: a 32 x 64 float32 tile is 8 KiB, well inside L1


# ---- tile helpers --------------------------------------------------------------------
@njit(cache=True, fastmath={"contract"})
def exp_shifted(x, n, offset):
    """In place: x[c] <- exp(x[c] - offset) for c < n, computed in float64
    (`fast_exp`; -inf gives 0). x: 1-D float32/float64 array; offset: float64."""
    for c in range(n):
        x[c] = fast_exp(np.float64(x[c]) - offset)


@njit(cache=True, fastmath=FASTMATH)
def scores_block(a, b, i0, j0, nr, nc, s):
    """s[r, c] = sum_e a[i0 + r, e] * b[j0 + c, e]   for r < nr, c < nc  (A B^T).

    a: (rows, E), b: (cols, E), both C-contiguous so that each dot product runs
    along contiguous memory (vectorised over e, the sum reassociated); s: an
    output block (>= nr, >= nc). Two rows times two columns per pass: each
    loaded element serves two multiply-adds.
    """
    E = a.shape[1]
    zero = s.dtype.type(0)
    r_pairs, c_pairs = nr - nr % 2, nc - nc % 2
    for r in range(0, r_pairs, 2):
        for c in range(0, c_pairs, 2):
            t00, t01, t10, t11 = zero, zero, zero, zero
            for e in range(E):
                x0, x1 = a[i0 + r, e], a[i0 + r + 1, e]
                y0, y1 = b[j0 + c, e], b[j0 + c + 1, e]
                t00 += x0 * y0
                t01 += x0 * y1
                t10 += x1 * y0
                t11 += x1 * y1
            s[r, c], s[r, c + 1], s[r + 1, c], s[r + 1, c + 1] = t00, t01, t10, t11
        for c in range(c_pairs, nc):                     # odd last column
            t0, t1 = zero, zero
            for e in range(E):
                t0 += a[i0 + r, e] * b[j0 + c, e]
                t1 += a[i0 + r + 1, e] * b[j0 + c, e]
            s[r, c], s[r + 1, c] = t0, t1
    for r in range(r_pairs, nr):                         # odd last row
        for c in range(nc):
            t0 = zero
            for e in range(E):
                t0 += a[i0 + r, e] * b[j0 + c, e]
            s[r, c] = t0


@njit(cache=True, fastmath=FASTMATH)
def accumulate_rows(p, rows, j0, nr, nc, acc, i0):
    """acc[i0 + r, :] += sum_c p[r, c] * rows[j0 + c, :]   (acc += P @ rows block).

    Used for O += P V (forward) and dQ += dS K (backward). Four output rows
    times two terms per pass: each loaded `rows` element serves four
    multiply-adds, each output load/store two.
    """
    r_quads, c_pairs = nr - nr % 4, nc - nc % 2
    for r in range(0, r_quads, 4):
        o0, o1, o2, o3 = acc[i0 + r], acc[i0 + r + 1], acc[i0 + r + 2], acc[i0 + r + 3]
        for c in range(0, c_pairs, 2):
            v0, v1 = rows[j0 + c], rows[j0 + c + 1]
            p00, p01, p10, p11 = p[r, c], p[r, c + 1], p[r + 1, c], p[r + 1, c + 1]
            p20, p21, p30, p31 = p[r + 2, c], p[r + 2, c + 1], p[r + 3, c], p[r + 3, c + 1]
            for d in range(v0.shape[0]):
                o0[d] += p00 * v0[d] + p01 * v1[d]
                o1[d] += p10 * v0[d] + p11 * v1[d]
                o2[d] += p20 * v0[d] + p21 * v1[d]
                o3[d] += p30 * v0[d] + p31 * v1[d]
        for c in range(c_pairs, nc):                     # odd last term
            v0 = rows[j0 + c]
            p00, p10, p20, p30 = p[r, c], p[r + 1, c], p[r + 2, c], p[r + 3, c]
            for d in range(v0.shape[0]):
                o0[d] += p00 * v0[d]
                o1[d] += p10 * v0[d]
                o2[d] += p20 * v0[d]
                o3[d] += p30 * v0[d]
    for r in range(r_quads, nr):                         # the nr % 4 last rows
        out = acc[i0 + r]
        for c in range(nc):
            v0 = rows[j0 + c]
            p0 = p[r, c]
            for d in range(v0.shape[0]):
                out[d] += p0 * v0[d]


@njit(cache=True, fastmath=FASTMATH)
def accumulate_cols(p, rows, i0, nr, nc, acc, j0):
    """acc[j0 + c, :] += sum_r p[r, c] * rows[i0 + r, :]   (acc += P^T @ rows block).

    Used for dV += P^T dO and dK += dS^T Q (backward). Blocked like
    accumulate_rows: four output rows times two terms per pass.
    """
    c_quads, r_pairs = nc - nc % 4, nr - nr % 2
    for c in range(0, c_quads, 4):
        o0, o1, o2, o3 = acc[j0 + c], acc[j0 + c + 1], acc[j0 + c + 2], acc[j0 + c + 3]
        for r in range(0, r_pairs, 2):
            x0, x1 = rows[i0 + r], rows[i0 + r + 1]
            p00, p01, p10, p11 = p[r, c], p[r + 1, c], p[r, c + 1], p[r + 1, c + 1]
            p20, p21, p30, p31 = p[r, c + 2], p[r + 1, c + 2], p[r, c + 3], p[r + 1, c + 3]
            for d in range(x0.shape[0]):
                o0[d] += p00 * x0[d] + p01 * x1[d]
                o1[d] += p10 * x0[d] + p11 * x1[d]
                o2[d] += p20 * x0[d] + p21 * x1[d]
                o3[d] += p30 * x0[d] + p31 * x1[d]
        for r in range(r_pairs, nr):                     # odd last term
            x0 = rows[i0 + r]
            p00, p10, p20, p30 = p[r, c], p[r, c + 1], p[r, c + 2], p[r, c + 3]
            for d in range(x0.shape[0]):
                o0[d] += p00 * x0[d]
                o1[d] += p10 * x0[d]
                o2[d] += p20 * x0[d]
                o3[d] += p30 * x0[d]
    for c in range(c_quads, nc):                         # the nc % 4 last rows of acc
        out = acc[j0 + c]
        for r in range(nr):
            x0 = rows[i0 + r]
            p0 = p[r, c]
            for d in range(x0.shape[0]):
                out[d] += p0 * x0[d]


# ---- the parallel kernels -------------------------------------------------------------
# Each is a bare `prange` calling a serial function for one task: Numba's
# parallel compiler then analyses one call instead of the whole body, which
# keeps the first-use compile short. The task index is cast to int64 so the
# task function compiles once (the parallel loop's own index is unsigned).

@njit(parallel=True, cache=True, fastmath=FASTMATH)
def attention_forward_blocked(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                              keep_scale, out, lse):
    """Same contract as `attention.attention_forward_loops`.

    q (BH, L, E), k (BH, S, E), v (BH, S, Ev): C-contiguous, one float dtype.
    bias (MB, Lb, S) same dtype, Lb in {1, L}: added to the scaled scores of
        batch-head b as bias[bias_index[b], i or 0, :] (-inf = may not attend);
        MB == 0 means no mask. bias_index (BH,) int64.
    causal: key j is masked for query i when j > i (top-left aligned).
    scale: the scores' factor, a scalar of the inputs' dtype.
    seed, threshold (uint64), keep_scale (dtype scalar): dropout on the
        weights; threshold == 0 means no dropout (see dropout_hash.py).
    Writes out (BH, L, Ev) and lse (BH, L) float64: logsumexp of each row's
    masked scores, -inf for a row whose every key is masked (its output row
    is 0). A NaN score makes its row's output and lse NaN. Writes nothing
    else; the only other memory is a few KiB of tiles per task.
    """
    # one task per (batch-head, query block): many small tasks balance the threads
    for task in prange(q.shape[0] * ((q.shape[1] + BLOCK_Q - 1) // BLOCK_Q)):
        forward_task(np.int64(task), q, k, v, bias, bias_index, causal, scale, seed, threshold,
                     keep_scale, out, lse)


@njit(cache=True, fastmath=FASTMATH)
def forward_task(task, q, k, v, bias, bias_index, causal, scale, seed, threshold,
                 keep_scale, out, lse):
    """attention_forward_blocked's work for one (batch-head, query block)."""
    n_bh, L = q.shape[:2]
    S = k.shape[1]
    Ev = v.shape[2]
    has_bias = bias.shape[0] > 0
    bias_rows = bias.shape[1]
    dropout = threshold > 0
    n_qblocks = (L + BLOCK_Q - 1) // BLOCK_Q
    b = task // n_qblocks                      # batch-head
    i0 = (task - b * n_qblocks) * BLOCK_Q      # first query row of the block
    nr = min(BLOCK_Q, L - i0)
    mb = bias_index[b]
    s = np.empty((BLOCK_Q, BLOCK_K), q.dtype)  # scores, then weights, of one tile
    acc = np.zeros((BLOCK_Q, Ev), q.dtype)     # running sum of weights * values
    m = np.full(BLOCK_Q, -np.inf)              # running row maxima
    l = np.zeros(BLOCK_Q)                      # running sums of exp(s - m)
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
            exp_shifted(s[r], nc, m_new)  # s[r, c] <- exp(s[r, c] - m_new)
            total = np.float64(0.0)
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


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def attention_backward_blocked(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                               keep_scale, out, lse, dout, dq, dk, dv):
    """Same contract as `attention.attention_backward_loops`.

    q, k, v, bias, bias_index, causal, scale, seed, threshold, keep_scale: as
    given to `attention_forward_loops`; out (BH, L, Ev) and lse (BH, L) are
    what it returned; dout (BH, L, Ev) the gradient of out (C-contiguous, same
    dtype). Writes dq (BH, L, E), dk (BH, S, E), dv (BH, S, Ev), which must be
    zero on entry. A row with
    lse = -inf (fully masked) contributes nothing.
    """
    for b in prange(q.shape[0]):
        backward_task(np.int64(b), q, k, v, bias, bias_index, causal, scale, seed, threshold,
                      keep_scale, out, lse, dout, dq, dk, dv)


@njit(cache=True, fastmath=FASTMATH)
def backward_task(b, q, k, v, bias, bias_index, causal, scale, seed, threshold,
                  keep_scale, out, lse, dout, dq, dk, dv):
    """attention_backward_blocked's work for one batch-head."""
    n_bh, L = q.shape[:2]
    S = k.shape[1]
    Ev = v.shape[2]
    has_bias = bias.shape[0] > 0
    bias_rows = bias.shape[1]
    dropout = threshold > 0
    delta = np.empty(L)                        # D_i = dO_i . out_i
    for i in range(L):
        total = np.float64(0.0)
        for d in range(Ev):
            total += dout[b, i, d] * out[b, i, d]
        delta[i] = total
    mb = bias_index[b]
    p = np.empty((BLOCK_Q, BLOCK_K), q.dtype)   # weights p_ij z_ij of one tile
    ds = np.empty((BLOCK_Q, BLOCK_K), q.dtype)  # dP, then scale * dS, of one tile
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
                exp_shifted(p[r], nc, lse[b, i])  # p_ij = exp(s_ij - lse_i)
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
    for i in range(L):                         # a NaN row: every key's dK and dV NaN, also the
        if lse[b, i] != lse[b, i]:             # key tiles the causal mask skipped for it
            dk[b] = np.nan
            dv[b] = np.nan
            break


# ---- without a causal mask, or a short one: row blocks and BLAS products ----------------
# (Contract as above, plus S, E, Ev >= 1: `use_dense` decides.)
# Without a causal mask every query sees every key, so nothing is skipped and
# the work is three (forward) or five (backward) dense matrix products per
# batch-head (with a causal mask over at most DENSE_CAUSAL_MAX positions, the
# same products over the keys each block of rows sees, masked per score row).
# A task takes dense_rows(causal) query rows and holds their score rows
# (DENSE_Q x S, 256 KiB in float32 at S = 512: it stays in the core's L2
# cache), so the softmax needs no online rescaling, and every product is one
# `np.dot` (SciPy's BLAS, one thread per call: see minidl/threads.py) on
# blocks large enough for BLAS to run near its peak. The entry points in
# attention.py send causal calls over more than DENSE_CAUSAL_MAX queries or
# keys to the tiled kernels above, which skip the masked half of the work.
DENSE_Q = 128    # query rows per task in the dense kernels
DENSE_Q_CAUSAL = 64      # ... with a causal mask: smaller blocks skip more of the masked keys
DENSE_CAUSAL_MAX = 512   # causal calls with at most this many queries and keys run dense (point 6)


@njit(cache=True)
def dense_rows(causal):
    """Query rows per block in the dense kernels."""
    return DENSE_Q_CAUSAL if causal else DENSE_Q


@njit(cache=True, fastmath=FASTMATH)
def scores_rows(s, r, i, b, bias, bias_index, causal, scale):
    """Row r of a score block, in place: s[r] <- scale * s[r] + bias row of
    query i (if any), -inf at keys j > i when causal."""
    row = s[r]
    S = row.shape[0]
    for c in range(S):
        row[c] *= scale
    if bias.shape[0] > 0:
        bias_row = bias[bias_index[b], i if bias.shape[1] > 1 else 0]   # (S,)
        for c in range(S):
            row[c] += bias_row[c]
    if causal:
        for c in range(i + 1, S):                          # keys after query i
            row[c] = -np.inf


@njit(cache=True, fastmath=FASTMATH)
def has_nan(row):
    """True if the 1-D row holds a NaN."""
    for c in range(row.shape[0]):
        if row[c] != row[c]:
            return True
    return False


@njit(cache=True, fastmath=FASTMATH)
def exp_in_place_sum(row, m, factor):
    """row[c] <- exp(factor (row[c] - m)) for a 1-D row with every row[c] <= m
    and factor > 0, and the sum of the new values in float64: blocks of
    SUM_BLOCK terms summed in the row's dtype, the blocks in float64 (as
    softmax.py's forward). `factor` is the attention scale when the scores
    were left unscaled, else 1 (x * 1 is x exactly)."""
    n = row.shape[0]
    total = np.float64(0.0)
    for start in range(0, n, SUM_BLOCK):
        block = row[start:min(n, start + SUM_BLOCK)]      # elements start .. start + SUM_BLOCK - 1
        part = cast_like(0.0, m)
        for c in range(block.shape[0]):
            e = exp_nonpositive_like(factor * (block[c] - m))   # in [0, 1]
            block[c] = e
            part += e
        total += part
    return total


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def attention_forward_dense(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                            keep_scale, out, lse):
    """Same contract as `attention_forward_blocked` (and the readable loops);
    one task per (batch-head, block of dense_rows(causal) query rows)."""
    rows = dense_rows(causal)
    for task in prange(q.shape[0] * ((q.shape[1] + rows - 1) // rows)):
        forward_dense_task(np.int64(task), q, k, v, bias, bias_index, causal, scale, seed,
                           threshold, keep_scale, out, lse)


@njit(cache=True, fastmath=FASTMATH)
def forward_dense_task(task, q, k, v, bias, bias_index, causal, scale, seed, threshold,
                       keep_scale, out, lse):
    """attention_forward_dense's work for one (batch-head, query row block)."""
    L, S = q.shape[1], k.shape[1]
    Ev = v.shape[2]
    rows = dense_rows(causal)
    n_qblocks = (L + rows - 1) // rows
    b = task // n_qblocks                                  # batch-head
    i0 = (task - b * n_qblocks) * rows                     # first query row of the block
    nr = min(rows, L - i0)
    Sk = min(S, i0 + nr) if causal else S                  # causal: the block's last row sees keys < i0 + nr
    s = np.empty((nr, Sk), q.dtype)                        # scores, then exp(s - max); keys >= Sk weigh 0
    inv_total = np.empty(nr)                               # 1 / sum_j exp(s_ij - m_i)
    row_kind = np.zeros(nr, np.int64)                      # 0 normal, 1 fully masked, 2 NaN
    np.dot(q[b, i0:i0 + nr], k[b, :Sk].T, s)               # (nr, E) @ (E, Sk): q_i . k_j
    # Without a bias and with scale > 0, the row's maximum of q_i . k_j is the
    # maximum of the scaled scores divided by scale, so the scale is applied
    # inside the exp (one multiply in a pass that runs anyway) instead of a
    # pass of its own over the scores; the causally masked keys (c >= seen)
    # are never read.
    fold = bias.shape[0] == 0 and scale > 0
    factor = cast_like(scale if fold else 1.0, q[b, i0, 0])   # in the scores' dtype
    for r in range(nr):
        i = i0 + r
        if not fold:
            scores_rows(s, r, i, b, bias, bias_index, causal, scale)
        row = s[r]                                         # (Sk,)
        seen = min(i + 1, Sk) if causal else Sk            # keys 0 .. seen-1 are not causally masked
        m = _row_max(row[:seen])                           # the row max (vectorised); the rest is -inf
        if m == -np.inf:                                   # every key masked, or NaN
            row_kind[r] = 2 if has_nan(row) else 1
            for c in range(Sk):
                row[c] = 0
            continue
        total = exp_in_place_sum(row[:seen], m, factor)    # row[c] <- exp(factor (row[c] - m)); their sum
        m = np.float64(m) * np.float64(factor)             # the maximum of the scaled scores
        for c in range(seen, Sk):                          # exp(-inf) = 0 without computing it
            row[c] = 0
        if total != total:                                 # a NaN score (or +inf)
            row_kind[r] = 2
            for c in range(Sk):
                row[c] = 0
            continue
        inv_total[r] = 1.0 / total
        lse[b, i] = m + np.log(total)
        if threshold > 0:                                  # dropout: weights of dropped keys -> 0
            base = np.uint64((b * L + i) * S)              # flat index of (b, i, 0): S, all the keys
            for c in range(Sk):
                if dropout_keep(seed, base + np.uint64(c), threshold):
                    row[c] *= keep_scale
                else:
                    row[c] = 0
    o = out[b, i0:i0 + nr]                                 # (nr, Ev)
    np.dot(s, v[b, :Sk], o)                                # (nr, Sk) @ (Sk, Ev): unnormalised sum_j e_ij z_ij v_j
    for r in range(nr):
        if row_kind[r] == 0:
            inv = o.dtype.type(inv_total[r])
            for d in range(Ev):
                o[r, d] *= inv                             # divide by the row's sum
        else:                                              # masked: 0; NaN: NaN
            fill = 0.0 if row_kind[r] == 1 else np.nan
            for d in range(Ev):
                o[r, d] = fill
            lse[b, i0 + r] = -np.inf if row_kind[r] == 1 else np.nan


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def attention_backward_dense(q, k, v, bias, bias_index, causal, scale, seed, threshold,
                             keep_scale, out, lse, dout, dq, dk, dv):
    """Same contract as `attention_backward_blocked`; one task per batch-head
    (dk and dv of a batch-head are summed over its query blocks by one thread)."""
    for b in prange(q.shape[0]):
        backward_dense_task(np.int64(b), q, k, v, bias, bias_index, causal, scale, seed,
                            threshold, keep_scale, out, lse, dout, dq, dk, dv)


@njit(cache=True, fastmath=FASTMATH)
def backward_dense_task(b, q, k, v, bias, bias_index, causal, scale, seed, threshold,
                        keep_scale, out, lse, dout, dq, dk, dv):
    """attention_backward_dense's work for one batch-head: per block of query
    rows, p = exp(s - lse) and dS from two products, then dV, dQ, dK from three."""
    L, S = q.shape[1], k.shape[1]
    E, Ev = q.shape[2], v.shape[2]
    rows = dense_rows(causal)
    nq = min(rows, L)
    p = np.empty(nq * S, q.dtype)                          # weights p_ij z_ij of a block (flat)
    ds = np.empty(nq * S, q.dtype)                         # dP, then scale * dS (flat)
    part_k = np.empty((S, E), q.dtype)                     # one block's share of dK
    part_v = np.empty((S, Ev), q.dtype)                    # one block's share of dV
    if causal:                                             # keys no query block reaches get no gradient
        dk[b] = 0
        dv[b] = 0
    fold = bias.shape[0] == 0                              # no bias: scale inside the exp (any sign: no maximum needed)
    factor = cast_like(scale if fold else 1.0, q[b, 0, 0])   # in the scores' dtype
    for i0 in range(0, L, rows):
        nr = min(rows, L - i0)
        Sk = min(S, i0 + nr) if causal else S              # causal: the block's rows see keys < i0 + nr
        pb = p[:nr * Sk].reshape(nr, Sk)                   # (nr, Sk), contiguous
        dsb = ds[:nr * Sk].reshape(nr, Sk)                 # (nr, Sk), contiguous
        np.dot(q[b, i0:i0 + nr], k[b, :Sk].T, pb)          # q_i . k_j
        np.dot(dout[b, i0:i0 + nr], v[b, :Sk].T, dsb)      # dO_i . v_j
        nan_row = False                                    # a NaN row poisons every key's dK, dV
        for r in range(nr):
            i = i0 + r
            lse_i = lse[b, i]
            prow, dsrow = pb[r], dsb[r]                    # (Sk,) each
            if lse_i == -np.inf or lse_i != lse_i:         # fully masked: 0; NaN row: NaN
                fill = 0.0 if lse_i == -np.inf else np.nan
                nan_row = nan_row or lse_i != lse_i
                for c in range(Sk):
                    prow[c] = fill
                    dsrow[c] = fill
                continue
            if not fold:
                scores_rows(pb, r, i, b, bias, bias_index, causal, scale)
            d_i = np.float64(0.0)                          # D_i = dO_i . out_i
            for d in range(Ev):
                d_i += dout[b, i, d] * out[b, i, d]
            d_i_like = cast_like(d_i, prow[0])
            seen = min(i + 1, Sk) if causal else Sk        # keys 0 .. seen-1 are not causally masked
            high = cast_like(lse_i, prow[0])               # lse = high + low in the row's dtype, so
            low = cast_like(lse_i - high, prow[0])         # (s - high) - low is s - lse to the row's precision
            for c in range(seen):                          # p_ij = exp(s_ij - lse_i); s_ij <= lse_i
                prow[c] = exp_nonpositive_like((factor * prow[c] - high) - low)
            for c in range(seen, Sk):                      # causally masked: exp(-inf) = 0
                prow[c] = 0
            if threshold > 0:
                base = np.uint64((b * L + i) * S)          # flat index of (b, i, 0): S, all the keys
                for c in range(Sk):
                    if dropout_keep(seed, base + np.uint64(c), threshold):
                        dsrow[c] = scale * prow[c] * (dsrow[c] * keep_scale - d_i_like)
                        prow[c] *= keep_scale
                    else:
                        dsrow[c] = scale * prow[c] * (0 - d_i_like)
                        prow[c] = 0
            else:
                for c in range(Sk):                        # scale * dS_ij
                    dsrow[c] = scale * prow[c] * (dsrow[c] - d_i_like)
        q_blk, dout_blk = q[b, i0:i0 + nr], dout[b, i0:i0 + nr]
        np.dot(dsb, k[b, :Sk], dq[b, i0:i0 + nr])          # dQ_i = sum_j scale dS_ij k_j
        if i0 == 0:                                        # first block: write dK, dV (keys < Sk) directly
            np.dot(pb.T, dout_blk, dv[b, :Sk])             # dV_j = sum_i p z dO_i
            np.dot(dsb.T, q_blk, dk[b, :Sk])               # dK_j = sum_i scale dS_ij q_i
        else:                                              # later blocks: add their share
            np.dot(pb.T, dout_blk, part_v[:Sk])
            np.dot(dsb.T, q_blk, part_k[:Sk])
            add_into(dv[b, :Sk], part_v[:Sk])
            add_into(dk[b, :Sk], part_k[:Sk])
        if nan_row:                                        # its weights are NaN for the keys >= Sk too
            dv[b, Sk:] = np.nan
            dk[b, Sk:] = np.nan


@njit(cache=True, fastmath=FASTMATH)
def add_into(total, part):
    """total += part, for two C-contiguous 2-D arrays of one shape."""
    for a in range(total.shape[0]):
        for c in range(total.shape[1]):
            total[a, c] += part[a, c]


def use_dense(q, k, v, causal):
    """True when the dense kernels run (point 6 above): no causal mask, or one
    over at most DENSE_CAUSAL_MAX queries and keys; and no empty axis (a
    zero-length key, feature or value axis is left to the tiled kernels)."""
    short = max(q.shape[1], k.shape[1]) <= DENSE_CAUSAL_MAX
    return (not causal or short) and min(k.shape[1], q.shape[2], v.shape[2]) > 0
