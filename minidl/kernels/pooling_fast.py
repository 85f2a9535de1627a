"""The max_pool2d forward loop the "numba" backend runs for 2x2 windows with
stride 2 and no padding (the pooling of every CNN in minidl.models): the same
result as `pooling.max_pool2d_forward_loops` (the readable loop), bit for bit,
argmax included, about 2.5x faster. Every other geometry runs the readable loop.

Contract (the readable loop's, see minidl/kernels/pooling.py):
    max_pool2d_2x2_forward(x) -> (out, argmax)
        x:       (N, C, H, W) float32/float64, C-contiguous, H >= 2, W >= 2,
                 never modified
        out:     (N, C, H // 2, W // 2), x's dtype: the max of each 2x2 window
                 (rows 2i, 2i+1, columns 2j, 2j+1; an odd last row or column
                 is in no window)
        argmax:  (N, C, H // 2, W // 2) int64: flat index r * W + col of the
                 max in its own plane; ties go to the first maximum in scan
                 order (row by row, left to right), the first NaN wins.

What is different from the readable loop, and why:

1. No data-dependent branch. The readable loop asks `if v > best:` for each
   element; on real activations that answer is a coin toss, and the
   mispredicted jumps cost more than the comparisons. Here each window takes
   two steps without jumps: its max `m` (three `max` of two values), then the
   position of the first element equal to `m`, found by testing the four
   elements from last to first and keeping the position of each one equal to
   `m` (a select instruction, not a jump), so the earliest equal one stays.
   The value written is the element at that position, so a -0.0 / 0.0 tie
   writes what the readable loop writes.
2. The window is unrolled: its four elements sit at q, q + 1, q + W and
   q + W + 1 of the flat plane, with q = 2i * W + 2j, so the loop over j
   has no inner loops.
3. `max` and `==` know nothing of NaN's rule, so a plane holding a NaN (found
   by a vectorised count first, as in the readable loop) is pooled by
   `_max_pool_plane_2x2_nan`, which walks each window in scan order and
   takes an element when it is greater than the best so far or is the first
   NaN (the readable loop's rule, written as a select, not a jump).

Planes run in parallel (`prange`), one plane per thread at a time, as in the
readable loop. tests/test_pooling_fast.py holds this equal to the readable loop
(float32 and float64, odd sizes, ties, signed zeros, NaN, infinities,
non-contiguous inputs through the op).
"""
import numpy as np
from numba import njit, prange


@njit(cache=True)
def _max_pool_plane_2x2(plane, w, out, argmax):
    """Every 2x2 window (stride 2) of one plane without NaN: plane (H*W,),
    element (r, col) at r*W + col; out and argmax (OH, OW), written here."""
    oh, ow = out.shape
    for i in range(oh):
        top = 2 * i * w                                  # flat index of the window row 2i, column 0
        for j in range(ow):
            q = top + 2 * j                              # the window's top-left element (2i, 2j)
            v0, v1 = plane[q], plane[q + 1]              # (2i, 2j), (2i, 2j + 1)
            v2, v3 = plane[q + w], plane[q + w + 1]      # (2i + 1, 2j), (2i + 1, 2j + 1)
            m = max(max(v0, v1), max(v2, v3))
            k = q + w + 1                                # last to first: the earliest equal one stays
            k = q + w if v2 == m else k
            k = q + 1 if v1 == m else k
            k = q if v0 == m else k
            out[i, j] = plane[k]
            argmax[i, j] = k


@njit(cache=True)
def _max_pool_plane_2x2_nan(plane, w, out, argmax):
    """As `_max_pool_plane_2x2`, for a plane holding a NaN: the first NaN of a
    window (scan order) wins it, as in the readable loop."""
    oh, ow = out.shape
    for i in range(oh):
        top = 2 * i * w                                  # flat index of the window row 2i, column 0
        for j in range(ow):
            q = top + 2 * j                              # the window's top-left element (2i, 2j)
            best, k = plane[q], q
            for e in (q + 1, q + w, q + w + 1):          # the other three, in scan order
                v = plane[e]
                take = (v > best) | ((v != v) & (best == best))   # greater, or the first NaN
                best = v if take else best
                k = e if take else k
            out[i, j] = best
            argmax[i, j] = k


@njit(parallel=True, cache=True)
def max_pool2d_2x2_forward(x):
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2                              # output rows and columns
    planes = x.reshape(n * c, h * w)                     # (P, H*W), element (r, col) at r*W + col
    out = np.empty((n * c, oh, ow), x.dtype)             # (P, OH, OW)
    argmax = np.empty((n * c, oh, ow), np.int64)         # (P, OH, OW)
    for p in prange(n * c):
        plane = planes[p]
        nans = 0
        for q in range(h * w):                           # vectorised count: does the NaN rule apply?
            nans += plane[q] != plane[q]
        if nans > 0:
            _max_pool_plane_2x2_nan(plane, w, out[p], argmax[p])
        else:
            _max_pool_plane_2x2(plane, w, out[p], argmax[p])
    return out.reshape(n, c, oh, ow), argmax.reshape(n, c, oh, ow)
