"""ReLU, forward and backward over a flat array, with the mask between them.

    relu(x) = x where x > 0 (or x is NaN), +0.0 elsewhere
    d relu / dx = 1 where x > 0 (or x is NaN), 0 elsewhere (0 at x = 0)

Contract (all backends):
    relu_forward(x) -> (out, keep)
        x:    (n,) float32/float64, never modified
              (the op flattens its input; any shape becomes (n,))
        out:  (n,) new, x's dtype: out[i] = x[i] if keep[i] else +0.0
        keep: (n,) new, bool: keep[i] = not (x[i] <= 0), so NaN is kept
              (relu(NaN) = NaN, as in PyTorch: a NaN is never hidden)
    relu_backward(grad, keep) -> grad_x
        grad: (n,) float32/float64; keep: (n,) bool; never modified
        grad_x: (n,) new, grad's dtype: grad_x[i] = grad[i] if keep[i] else +0.0

The mask costs one byte per element, a quarter of a float32 output: the
backward reads grad and keep (5 bytes an element) rather than grad and the
saved input or output (8), and nothing the op returns is needed again, so
a later change to the output's array cannot change the gradient.

Which code runs:
- "python": `relu_forward_loops` and `relu_backward_loops`, interpreted, one
  element at a time: the readable reference.
- "numba": the same loop bodies over blocks of BLOCK elements, the blocks
  shared among Numba's threads (`prange`); one pass each way. NumPy's
  version reads and writes the array three or four times, each pass on one
  core (the comparison, the mask, the selection): benchmarks/results/step_profile.md
  shows ReLU's share of the CNN step.
- "numpy": the twin, vectorised.
tests/test_relu_kernel.py holds the three equal, and against np.where.
"""
import numpy as np
from numba import njit, prange

from .backend import current, interpreted, kernel_array
from .fast_exp import cast_like
from ..threads import single_thread_if_small

BLOCK = 16384            # elements per parallel task (64 KiB of float32)
_OPTIONS = dict(cache=True, error_model="numpy")


# ---- loop kernels (the readable reference; interpreted by the "python" backend) ------------
@njit(**_OPTIONS)
def relu_forward_loops(x, out, keep):
    """out[i] = x[i] or +0.0, keep[i] = not (x[i] <= 0), for 1-D arrays of one length."""
    if x.shape[0] == 0:
        return
    zero = cast_like(0.0, x[0])                  # +0.0 in x's dtype (the select stays in one type)
    for i in range(x.shape[0]):
        kept = not (x[i] <= 0)                   # False for x <= 0 (-0.0 too); True for NaN
        keep[i] = kept
        out[i] = x[i] if kept else zero


@njit(**_OPTIONS)
def relu_backward_loops(grad, keep, grad_x):
    """grad_x[i] = grad[i] where keep[i], +0.0 elsewhere, for 1-D arrays of one length."""
    if grad.shape[0] == 0:
        return
    zero = cast_like(0.0, grad[0])               # +0.0 in grad's dtype
    for i in range(grad.shape[0]):
        grad_x[i] = grad[i] if keep[i] else zero


# ---- the "numba" backend: the same loops, over blocks in parallel ----------------------------
@njit(parallel=True, **_OPTIONS)
def relu_forward_blocks(x, out, keep):
    n = x.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK                   # the last block may be shorter
    for b in prange(blocks):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)     # block b: elements lo .. hi-1
        relu_forward_loops(x[lo:hi], out[lo:hi], keep[lo:hi])


@njit(parallel=True, **_OPTIONS)
def relu_backward_blocks(grad, keep, grad_x):
    n = grad.shape[0]
    blocks = (n + BLOCK - 1) // BLOCK
    for b in prange(blocks):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)     # block b: elements lo .. hi-1
        relu_backward_loops(grad[lo:hi], keep[lo:hi], grad_x[lo:hi])


# ---- NumPy twin (vectorised) ---------------------------------------------------------------
def relu_forward_numpy(x):
    keep = ~(x <= 0)                                    # NaN <= 0 is False: NaN is kept
    out = np.zeros_like(x)                              # +0.0 where not kept
    np.copyto(out, x, where=keep)
    return out, keep


def relu_backward_numpy(grad, keep):
    grad_x = np.zeros_like(grad)
    np.copyto(grad_x, grad, where=keep)
    return grad_x


# ---- entry points: pick the backend ----------------------------------------------------------
def _check_flat(name, *pairs):
    """The contract's shapes and dtypes (the op guarantees them; this guards
    direct calls, so no kernel ever indexes past an array)."""
    length = pairs[0][1].shape
    for expected, array in pairs:
        wrong_dtype = array.dtype != np.bool_ if expected == "bool" else array.dtype not in (np.float32, np.float64)
        if array.ndim != 1 or array.shape != length or wrong_dtype:
            raise ValueError(f"{name}: expected 1-D arrays of one length ("
                             + ", ".join(f"{kind}" for kind, _ in pairs) + "), got "
                             + ", ".join(f"{a.shape} {a.dtype}" for _, a in pairs))


def relu_forward(x):
    """(relu(x), keep) elementwise for a 1-D float array; see the module docstring."""
    _check_flat("relu_forward", ("float32/float64", x))
    if current() == "numpy":
        return relu_forward_numpy(x)
    x = kernel_array(x)
    out, keep = np.empty_like(x), np.empty(x.shape, np.bool_)
    if current() == "python":
        interpreted(relu_forward_loops)(x, out, keep)
    else:
        with single_thread_if_small(x.size):
            relu_forward_blocks(x, out, keep)
    return out, keep


def relu_backward(grad, keep):
    """grad where keep, +0.0 elsewhere, for 1-D arrays; see the module docstring."""
    _check_flat("relu_backward", ("float32/float64", grad), ("bool", keep))
    if current() == "numpy":
        return relu_backward_numpy(grad, keep)
    grad, keep = kernel_array(grad), kernel_array(keep)
    grad_x = np.empty_like(grad)
    if current() == "python":
        interpreted(relu_backward_loops)(grad, keep, grad_x)
    else:
        with single_thread_if_small(grad.size):
            relu_backward_blocks(grad, keep, grad_x)
    return grad_x
