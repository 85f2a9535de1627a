"""Small building blocks of the fused attention kernels (`attention_forward.py`,
`attention_backward.py`): a vectorisable exp, a counter-based dropout hash, and
three block matrix products written so that LLVM vectorises their inner loop.

Why hand-written products: a fused kernel works on one (query block x key block)
tile at a time, inside a `prange` loop. Calling BLAS there would need SciPy and
would fight Numba's threads for the two cores (PERF.md, pitfall 1). The
innermost loop of each product runs along contiguous memory so that it becomes
SIMD multiply-adds: A B^T (scores) as 2 x 2 blocks of dot products, P B and
P^T B as "axpy" updates of four contiguous output rows at once, two terms per
pass (each loaded row of B serves four output rows). Measured on one busy core
(T512 D64 float32): forward ~24 GFLOP/s, backward ~25 GFLOP/s overall, exp
included; blocking the axpy products 4 x 2 instead of 1 x 4 made them ~25%
faster, and an axpy-form A B^T through a transposed B reached only ~6.

Accuracy: products accumulate in the inputs' dtype (float32 for float32 inputs,
relative error ~1e-6 for our sizes; float64 for float64). `exp_shifted` is
float64 inside (relative error ~3e-16 before rounding to the output dtype).

All functions here are `@njit(cache=True)`; the "python" backend runs the
kernels through `.py_func`, swapping these helpers for their `.py_func` too
(see `attention.run_interpreted`), so nothing is compiled in that mode.
"""
import numpy as np
from numba import njit

# fastmath flags for loops: allow reassociation (vectorised sums) and fused
# multiply-add, but NOT "no infs / no NaNs": masks are -inf.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

LOG2E = 1.4426950408889634              # 1 / ln 2
LN2_HI = 6.93147180369123816490e-01     # ln 2 rounded so that k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10     # ln 2 - LN2_HI


@njit(cache=True, fastmath={"contract"})
def exp_shifted(x, n, offset, bits):
    """In place: x[c] <- exp(x[c] - offset) for c < n.

    x: 1-D float32/float64 array (at least n long); offset: float64;
    bits: int64 work array (at least n long), overwritten.
    exp(t) = 2**k * exp(r) with k = round(t / ln 2) and |r| <= ln(2)/2; exp(r)
    by its Taylor series to degree 12 (tail < 0.347**13/13! ~ 2e-16), 2**k
    built from its IEEE-754 bits. t < -708 (including -inf) gives exactly 0;
    t is clamped at 709 (callers only pass t <= 0). Written as two plain loops
    with no calls so that LLVM vectorises both.
    """
    scale2k = bits.view(np.float64)               # the same memory, read as float64
    for c in range(n):
        t = np.float64(x[c]) - offset
        t = min(max(t, -745.0), 709.0)
        k = np.floor(t * LOG2E + 0.5)             # nearest integer to t / ln 2
        r = (t - k * LN2_HI) - k * LN2_LO         # t = k ln 2 + r
        p = 1.0 / 479001600.0                     # 1/12!, then Horner down to 1/0!
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0                           # ~exp(r), in [0.70, 1.42]
        ki = np.int64(k)
        # float64 2**k: exponent field k + 1023, mantissa 0; 0 bits = +0.0
        bits[c] = ((ki + 1023) << 52) if ki >= -1022 else 0
        x[c] = p                                  # exact scaling by 2**k follows
    for c in range(n):
        x[c] = x[c] * scale2k[c]


# SplitMix64 finaliser constants (a well-mixing 64-bit hash of a counter)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)


def dropout_threshold(dropout_p):
    """Integer threshold t: an element is kept when its 24-bit hash is >= t,
    so it is dropped with probability t / 2**24 ~ dropout_p."""
    return np.uint64(int(round(dropout_p * (1 << 24))))


@njit(cache=True)
def dropout_keep(seed, index, threshold):
    """Keep element `index` (a flat index into the (BH, L, S) weights) under
    `seed`? Pure function of (seed, index), so backward recomputes the same
    mask without storing it. seed, index, threshold: uint64."""
    z = seed + index * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (z >> _S40) >= threshold


def dropout_keep_numpy(seed, index, threshold):
    """`dropout_keep` on an array of uint64 indices (the NumPy twin's version)."""
    z = np.uint64(seed) + index * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (z >> _S40) >= threshold


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
