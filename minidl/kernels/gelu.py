"""GELU, exact (erf) form, forward and backward over a flat array.

    gelu(x) = x Phi(x),   Phi(x) = (1 + erf(x / sqrt 2)) / 2   (the normal CDF)
                                 = erfc(-x / sqrt 2) / 2       (how it is computed)
    d gelu / dx = Phi(x) + x phi(x),   phi(x) = exp(-x**2 / 2) / sqrt(2 pi)

Contract (all backends):
    gelu_forward(x) -> (out, cdf)
        x:   (n,) float32/float64, C-contiguous, never modified
             (the op flattens its input; any shape becomes (n,))
        out: (n,) x's dtype, out[i] = x[i] Phi(x[i])
        cdf: (n,) x's dtype, cdf[i] = Phi(x[i]), kept for the backward
    gelu_backward(grad, x, cdf) -> grad_x
        grad, x, cdf: (n,) of one dtype, C-contiguous, never modified
        grad_x: (n,) new, grad_x[i] = grad[i] (cdf[i] + x[i] phi(x[i]))

Phi is computed as erfc(-x / sqrt 2) / 2, not as (1 + erf) / 2: for x < 0 the
latter subtracts two numbers close to 1 and loses the relative precision of
small probabilities (in float32, Phi(-5) would keep one digit); erfc keeps it.

Precision: the readable loops and the twin compute in float64 and round once
to x's dtype. The fast loops compute in x's own precision (float32 arithmetic
for float32 input, twice the SIMD lanes): relative error within a few units
in the last place for moderate |x|, growing like eps * x**2 in the far lower
tail (exp(-x**2 / 2) amplifies the rounding of x**2 / 2), e.g. ~1e-5 at
x = -14 in float32, where Phi(x) ~ 1e-44. NaN gives NaN; gelu(+inf) = +inf;
gelu(-inf) is NaN (-inf * 0).

Which code runs:
- "python": the loops below, interpreted: `math.erfc` and `math.exp`, one
  element at a time. They are the readable reference.
- "numba": gelu_fast.py, compiled: the same formula over blocks of elements
  in parallel, with the branch-free normal CDF of erf.py and the polynomial
  exp of fast_exp.py, so every block's loop compiles to SIMD code.
- "numpy": the twin below, vectorised with erf.py's NumPy normal CDF.
tests/test_gelu.py holds the three equal, and against SciPy's erf.
"""
import math

import numpy as np
from numba import njit

from .backend import current, interpreted, kernel_array
from .erf import normal_cdf_numpy
from ..threads import single_thread_if_small

SQRT_HALF = math.sqrt(0.5)                     # x / sqrt 2 = x * SQRT_HALF
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)  # phi(0)


# ---- loop kernels (the readable reference; interpreted by the "python" backend) ------------
@njit(cache=True)
def gelu_forward_loops(x, out, cdf):
    """out[i] = x[i] Phi(x[i]) and cdf[i] = Phi(x[i]) for 1-D arrays of one length."""
    for i in range(x.shape[0]):
        value = np.float64(x[i])
        phi_cap = 0.5 * math.erfc(-value * SQRT_HALF)              # Phi(x), in float64
        cdf[i] = phi_cap
        out[i] = value * phi_cap


@njit(cache=True)
def gelu_backward_loops(grad, x, cdf, grad_x):
    """grad_x[i] = grad[i] (cdf[i] + x[i] phi(x[i])) for 1-D arrays of one length."""
    for i in range(x.shape[0]):
        value = np.float64(x[i])
        density = INV_SQRT_2PI * math.exp(-0.5 * value * value)   # phi(x)
        grad_x[i] = grad[i] * (cdf[i] + value * density)


# ---- NumPy twin (vectorised) ---------------------------------------------------------------
def gelu_forward_numpy(x):
    value = x.astype(np.float64)
    phi_cap = normal_cdf_numpy(value)
    return (value * phi_cap).astype(x.dtype), phi_cap.astype(x.dtype)


def gelu_backward_numpy(grad, x, cdf):
    value = x.astype(np.float64)
    density = INV_SQRT_2PI * np.exp(-0.5 * value * value)
    return (grad * (cdf + value * density)).astype(x.dtype)


# ---- entry points: pick the backend ----------------------------------------------------------
def _check_flat(name, *arrays):
    """The contract's shapes and dtypes (the op guarantees them; this guards
    direct calls, so no kernel ever indexes past an array)."""
    first = arrays[0]
    for array in arrays:
        if array.ndim != 1 or array.shape != first.shape or array.dtype != first.dtype \
                or array.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name}: expected 1-D float32/float64 arrays of one shape and dtype, got "
                             + ", ".join(f"{a.shape} {a.dtype}" for a in arrays))


def gelu_forward(x):
    """(x Phi(x), Phi(x)) elementwise for a 1-D float array; see the module docstring."""
    _check_flat("gelu_forward", x)
    if current() == "numpy":
        return gelu_forward_numpy(x)
    x = kernel_array(x)
    out, cdf = np.empty_like(x), np.empty_like(x)
    if current() == "python":
        interpreted(gelu_forward_loops)(x, out, cdf)
    else:
        from .gelu_fast import gelu_forward_blocks
        with single_thread_if_small(x.size):
            gelu_forward_blocks(x, out, cdf)
    return out, cdf


def gelu_backward(grad, x, cdf):
    """grad (Phi(x) + x phi(x)) elementwise, given the forward's cdf; see above."""
    _check_flat("gelu_backward", grad, x, cdf)
    if current() == "numpy":
        return gelu_backward_numpy(grad, x, cdf)
    grad, x, cdf = kernel_array(grad), kernel_array(x), kernel_array(cdf)
    grad_x = np.empty_like(x)
    if current() == "python":
        interpreted(gelu_backward_loops)(grad, x, cdf, grad_x)
    else:
        from .gelu_fast import gelu_backward_blocks
        with single_thread_if_small(x.size):
            gelu_backward_blocks(grad, x, cdf, grad_x)
    return grad_x
