"""The GELU loops the "numba" backend runs: gelu.py's formula, fast.

Contract: as gelu.py's loops (1-D, C-contiguous arrays of one float dtype and
one length; `out`, `cdf` and `grad_x` are written, nothing else is):
    gelu_forward_blocks(x, out, cdf)         out = x Phi(x), cdf = Phi(x)
    gelu_backward_blocks(grad, x, cdf, grad_x)  grad_x = grad (cdf + x phi(x))

What differs from the readable loops, and why:
- erfc: `math.erfc` is one scalar call into the C library per element,
  which a compiler cannot vectorise. `normal_cdf_fast` (erf.py) is plain
  arithmetic without branches, so the loop runs 16 float32 or 8 float64
  lanes per instruction with AVX-512 (8 or 4 with AVX2): for float64 Cody's
  rational approximations with selects instead of branches and one division
  (`normal_cdf_branch_free`); for float32 one formula for every x with one
  division, one exp and 11 multiply-adds (`normal_cdf_float32`, about a third
  of the work: float32 does not need Cody's 19 digits). tests/test_erf.py
  measures both.
- exp: likewise `exp_nonpositive_like` (fast_exp.py: exp for arguments <= 0,
  as -x**2 / 2 is; in float32 results below the smallest normal number
  become 0) in place of `math.exp` in phi(x).
- precision: each element is computed in the arrays' own dtype (the readable
  loops go through float64), so float32 arithmetic runs twice the lanes;
  gelu.py's docstring states the resulting error.
- threads: the array is cut into blocks of BLOCK elements and a `prange` runs
  over the blocks; each block is one serial loop (`_forward_block`,
  `_backward_block`) over 1-D views of the block, which keeps the compile
  short (the parallel function is a bare loop) and each thread's writes in
  its own stretch of memory. The block loops index 0 .. len-1 of their views:
  with an index running from `start` instead, Numba cannot rule out negative
  indices, checks each one, and the loop no longer vectorises (~5x slower).
- one pass: the forward reads x once and writes out and cdf; the backward
  reads grad, x and cdf once and writes grad_x (NumPy's chain ran ~8 passes,
  each with a temporary array).
"""
import numpy as np
from numba import njit, prange

from .erf import normal_cdf_fast
from .fast_exp import cast_like, exp_nonpositive_like
from .gelu import INV_SQRT_2PI

BLOCK = 16384            # elements per parallel task (64 KiB of float32 per array)
# "contract": multiply-adds fused (one rounding instead of two); error_model="numpy":
# no zero-division checks, so the loops stay branch-free
_OPTIONS = dict(cache=True, error_model="numpy", fastmath={"contract"})


@njit(**_OPTIONS)
def _forward_block(x, out, cdf):
    """out[i], cdf[i] for every i of one block (1-D views of equal length)."""
    for i in range(x.shape[0]):
        value = x[i]
        phi_cap = normal_cdf_fast(value)                             # Phi(x), in x's dtype
        cdf[i] = phi_cap
        out[i] = value * phi_cap


@njit(**_OPTIONS)
def _backward_block(grad, x, cdf, grad_x):
    """grad_x[i] for every i of one block (1-D views of equal length)."""
    if x.shape[0] == 0:
        return
    scale = cast_like(INV_SQRT_2PI, x[0])                            # constants in x's dtype
    minus_half = cast_like(-0.5, x[0])
    for i in range(x.shape[0]):
        value = x[i]
        density = scale * exp_nonpositive_like(minus_half * value * value)   # phi(x); -x^2 / 2 <= 0
        grad_x[i] = grad[i] * (cdf[i] + value * density)


@njit(parallel=True, **_OPTIONS)
def gelu_forward_blocks(x, out, cdf):
    n = x.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK                   # the last block may be shorter
    for b in prange(blocks):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)     # block b: elements lo .. hi-1
        _forward_block(x[lo:hi], out[lo:hi], cdf[lo:hi])


@njit(parallel=True, **_OPTIONS)
def gelu_backward_blocks(grad, x, cdf, grad_x):
    n = x.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK
    for b in prange(blocks):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)     # block b: elements lo .. hi-1
        _backward_block(grad[lo:hi], x[lo:hi], cdf[lo:hi], grad_x[lo:hi])
