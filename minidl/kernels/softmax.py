"""softmax and log_softmax over the last axis of a 2-D array, forward and fused
backward.

Contract (all backends):
    softmax_forward(x, log, out=None) -> y
        x: (rows, n) float32/float64, C-contiguous, n >= 1, never modified.
           (The op moves the softmax dim last and flattens the rest into rows.)
        out: None (y is a new array) or a C-contiguous, writeable (rows, n)
           array of x's dtype, which receives y and is returned (the op passes
           a 2-D view of the array it returns, so its result owns its memory
           and autograd need not copy it). It must not overlap the inputs.
        log=False: y[r, j] = exp(x[r, j] - m_r) / sum_k exp(x[r, k] - m_r)
        log=True:  y[r, j] = x[r, j] - m_r - log(sum_k exp(x[r, k] - m_r))
        where m_r = max_k x[r, k]. Subtracting the row max changes nothing
        mathematically but keeps every exp argument <= 0, so nothing overflows
        (logits of 1e4 are fine) and the largest term is exactly 1.
    softmax_backward(grad, y, log, out=None) -> grad_x     (y: the forward output;
                                                          out: as above)
        log=False: grad_x = y * (grad - sum_j grad_j * y_j)     (per row)
        log=True:  grad_x = grad - exp(y) * sum_j grad_j
        Both are the Jacobian-vector product in O(n) per row; the (n, n)
        Jacobian is never formed.

Special values (same as PyTorch):
    -inf entries get probability 0 (log-probability -inf) and zero gradient.
    A row that is entirely -inf has no meaningful distribution: m_r = -inf and
    -inf - (-inf) = NaN, so the whole row comes out NaN (both functions).
    A NaN or +inf anywhere in a row makes the whole row NaN.

The Numba loops use `exp_nonpositive_like` from fast_exp.py (a vectorisable
polynomial in the input's precision, for the arguments <= 0 softmax needs:
max relative error 1.0e-7 in float32, where results below 1.7e-38 flush to 0;
~2.2e-16 in float64). The forward's sum of exps adds blocks of SUM_BLOCK
terms in the row's dtype and the blocks' sums in float64; the backward's
sums run in float64. Rows are independent: the parallel loop runs over rows.

Why it is fast (softmax is limited by memory traffic and by the exp):
- Each row is read from memory once. The row max, the exp pass and the
  normalising pass run one after the other on the same row, which by then
  sits in the core's L1 cache (a row of 1000 float32 is 4 KB), so x is read
  from RAM once and y written once; backward likewise reads g and y once.
- Every inner loop compiles to SIMD code. A float max reduction
  (`m = v if v > m else m`) stays scalar, one element at a time: the
  compiler will not reorder comparisons that must keep NaN's meaning. So
  `_row_max` finds the max on the integers that share the floats' bits,
  which the compiler runs 16 lanes at a time (see its docstring).
- The per-block helpers are inlined into the row loop (`inline="always"`):
  as calls, each block of SUM_BLOCK elements paid a call and two slices on
  top of its exps.
- Scalars that multiply a whole row (1 / total, the backward's dot product)
  are cast to the row's dtype first, so float32 rows are computed in float32,
  twice as many lanes per instruction as float64.
- The sum of exps is kept in float32 within a block of SUM_BLOCK terms:
  adding each float32 term to a float64 total would convert it first, at
  half the SIMD width, inside the loop that also computes the exp.
"""
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .backend import dispatch, kernel_array
from .fast_exp import cast_like, exp_nonpositive_like
from ..threads import single_thread_if_small

# reassoc lets the float64 sums use several SIMD accumulators; no nnan/ninf,
# so -inf and NaN keep their IEEE meaning
_FLAGS = {"reassoc", "contract"}


def signed_bits(row):
    """The same memory as a 1-D float row, read as signed integers of the same
    width (float32 -> int32, float64 -> int64): a view, nothing is copied."""
    return row.view(np.int32 if row.dtype == np.float32 else np.int64)


@overload(signed_bits)
def _signed_bits_numba(row):
    if row.dtype == types.float32:
        return lambda row: row.view(np.int32)
    return lambda row: row.view(np.int64)


def float_from_bits(bits, like):
    """The float of `like`'s type whose bit pattern is the integer `bits`."""
    if isinstance(like, np.float32):
        return np.int32(bits).view(np.float32)
    return np.int64(bits).view(np.float64)


@overload(float_from_bits)
def _float_from_bits_numba(bits, like):
    if like == types.float32:
        return lambda bits, like: np.int32(bits).view(np.float32)
    return lambda bits, like: np.int64(bits).view(np.float64)


@njit(cache=True)
def _row_max(row):
    """max of a non-empty, contiguous 1-D float row, found on the integers that
    share its bits, because compilers turn an integer max into SIMD code (16
    lanes of int32 with AVX-512) but keep a float max scalar: a float `v > m`
    must keep NaN's meaning, so the comparisons cannot be reordered.

    An IEEE float is a sign bit, then exponent and mantissa bits that grow with
    the magnitude. Read as a signed integer:
    - every float with the sign bit clear (+0.0 .. +inf) is an integer >= 0,
      ordered as the floats are;
    - every float with the sign bit set (-0.0 .. -inf) is an integer < 0, and
      a larger magnitude is a LARGER integer: their order is reversed.
    So if the largest integer `high` is >= 0, its float is the row max; if
    not, every entry is negative and the max (the one nearest zero) is the
    SMALLEST integer `low`. One pass keeps both.
    NaN: a NaN with the sign bit clear lies above +inf, so the result is NaN;
    one with the sign bit set may be missed, but the exp pass then makes the
    row NaN anyway (x - m is NaN there)."""
    bits = signed_bits(row)                              # (n,) the row's memory as integers
    high = low = bits[0]
    for j in range(bits.shape[0]):
        b = bits[j]
        high = b if b > high else high                   # the largest integer: the max if >= 0
        low = b if b < low else low                      # the smallest: the max of an all-negative row
    return float_from_bits(high if high >= 0 else low, row[0])


SUM_BLOCK = 128         # elements per block of the exp sums (see _exp_sum)


@njit(cache=True, fastmath=_FLAGS, inline="always")
def _exp_sum_block(row, m, o):
    """o[j] = exp(row[j] - m) and their sum over one block, in the row's
    dtype (1-D views of equal length)."""
    part = cast_like(0.0, m)
    for j in range(row.shape[0]):
        e = exp_nonpositive_like(row[j] - m)             # row[j] - m <= 0: e in [0, 1]
        o[j] = e
        part += e
    return part


@njit(cache=True, fastmath=_FLAGS, inline="always")
def _exp_sum(row, m, o):
    """o[j] = exp(row[j] - m) for the whole row, and their sum in float64: each block of
    SUM_BLOCK terms is summed in the row's dtype (SIMD lanes of float32 for
    float32 rows, so the loop needs no conversion per element), the blocks'
    sums in float64. A float32 block sum of 128 terms in [0, 1] is good to a
    few float32 units in the last place, no worse than the terms themselves."""
    n = row.shape[0]
    total = np.float64(0.0)
    for start in range(0, n, SUM_BLOCK):
        stop = min(n, start + SUM_BLOCK)                 # block: elements start .. stop-1
        total += _exp_sum_block(row[start:stop], m, o[start:stop])
    return total


# ---- loop kernels (compiled by Numba; interpreted by the "python" backend) -----------------------
@njit(parallel=True, cache=True, fastmath=_FLAGS)
def softmax_forward_loops(x, log, out):
    rows, n = x.shape                                    # out: (rows, n), written row by row
    for r in prange(rows):
        row, o = x[r], out[r]
        m = _row_max(row)                                # pass 1: the row max (row dtype)
        # pass 2: o[j] = exp(x - m) and their sum, float64. log_softmax keeps only
        # the sum and overwrites o in pass 3, but storing the exps here still
        # pays: the core then fetches o's cache lines while it computes exps,
        # instead of pass 3 writing to lines not yet fetched and waiting for
        # memory (benchmarks/results/softmax.md: log_softmax's forward takes
        # about as long as softmax's)
        total = _exp_sum(row, m, o)
        if log:
            log_total = cast_like(np.log(total), m)      # logsumexp(x) = m + log_total
            for j in range(n):                           # pass 3: (x - m) - log_total; subtracting
                o[j] = (row[j] - m) - log_total          # m first avoids cancellation at 1e4
        else:                                            # o[j] = exp(x - m), exactly 1 at the max
            inv = cast_like(1.0 / total, row[0])         # total >= 1 unless the row is NaN
            for j in range(n):                           # pass 3: normalise, in the row's dtype
                o[j] = o[j] * inv
    return out


@njit(parallel=True, cache=True, fastmath=_FLAGS)
def softmax_backward_loops(grad, y, log, grad_x):
    rows, n = y.shape                                    # grad_x: (rows, n), written row by row
    for r in prange(rows):
        g, yr, gx = grad[r], y[r], grad_x[r]
        total = np.float64(0.0)                          # float64 accumulator
        if log:
            for j in range(n):                           # sum_j g_j
                total += g[j]
            s = cast_like(total, yr[0])                  # in the row's dtype (SIMD width)
            for j in range(n):                           # g - softmax * sum(g)
                gx[j] = g[j] - exp_nonpositive_like(yr[j]) * s   # log-probabilities are <= 0
        else:
            for j in range(n):                           # <g, y>
                total += np.float64(g[j]) * yr[j]
            s = cast_like(total, yr[0])
            for j in range(n):                           # y * (g - <g, y>)
                gx[j] = yr[j] * (g[j] - s)
    return grad_x


# ---- NumPy twin (vectorised) ------------------------------------------------------
def softmax_forward_numpy(x, log, out):
    out[...] = _softmax_numpy(x, log)
    return out


def softmax_backward_numpy(grad, y, log, out):
    out[...] = _softmax_backward_numpy(grad, y, log)
    return out


def _softmax_numpy(x, log):
    with np.errstate(invalid="ignore"):                  # all -inf rows: -inf - -inf = NaN
        shifted = x - x.max(axis=1, keepdims=True)       # (rows, n), every entry <= 0
        if log:
            return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)


def _softmax_backward_numpy(grad, y, log):
    if log:
        return grad - np.exp(y) * grad.sum(axis=1, keepdims=True)
    return y * (grad - (grad * y).sum(axis=1, keepdims=True))


# ---- entry points: pick the backend --------------------------------------------
def _output(name, like, out):
    """A new array like `like`, or `out` once it is checked against the contract."""
    if out is None:
        return np.empty_like(like)
    if (out.shape != like.shape or out.dtype != like.dtype or not out.flags.c_contiguous
            or not out.flags.writeable):
        raise ValueError(f"{name}: out must be a C-contiguous, writeable {like.shape} {like.dtype} array, "
                         f"got {out.shape} {out.dtype}")
    return out


def softmax_forward(x, log=False, out=None):
    """softmax (log=False) or log_softmax (log=True) of each row; see the module docstring."""
    fn = dispatch(softmax_forward_loops, softmax_forward_numpy)
    x = kernel_array(x)
    out = _output("softmax_forward", x, out)
    with np.errstate(invalid="ignore"), single_thread_if_small(x.size):  # errstate: interpreted -inf - -inf
        fn(x, bool(log), out)
    return out


def softmax_backward(grad, y, log=False, out=None):
    """Gradient w.r.t. the rows' inputs, given the forward output y; see above."""
    fn = dispatch(softmax_backward_loops, softmax_backward_numpy)
    grad, y = kernel_array(grad), kernel_array(y)
    out = _output("softmax_backward", grad, out)
    with np.errstate(invalid="ignore"), single_thread_if_small(grad.size):
        fn(grad, y, bool(log), out)
    return out
