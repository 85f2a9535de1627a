"""Scaled dot-product attention kernels: the entry points the autograd op calls.

    out, lse = forward(q, k, v, bias, bias_index, causal, scale, dropout_p, seed)
    dq, dk, dv = backward(q, k, v, bias, bias_index, causal, scale, dropout_p, seed,
                          out, lse, dout)

Shapes: q (BH, L, E), k (BH, S, E), v (BH, S, Ev), C-contiguous, one float
dtype (float32 or float64); bias (MB, Lb, S) additive mask in that dtype with
Lb in {1, L} (MB == 0: no mask) and bias_index (BH,) int64 picking its slice
for each batch-head. The caller (minidl/ops/attention.py) validates, so these
functions assume good input.

Which code runs follows `minidl.kernels.use(...)`:
- "numba":  the fused loops of attention_forward / attention_backward, compiled;
            memory beyond inputs and outputs is the (BH, L) logsumexp plus a
            few KiB of tiles per thread: never an L x S matrix.
- "python": the same loops interpreted (`backend.interpreted`), for tiny shapes.
- "numpy":  attention_numpy, the twin that materialises (BH, L, S).

Fully masked rows (every key masked for a query) give an output row of zeros,
logsumexp -inf, and zero gradients (PyTorch's math backend gives NaN there).

Dropout: weight (b, i, j) is kept when a 64-bit hash of (seed, its flat index)
passes a threshold, so the three backends draw the same mask and backward
recomputes it instead of storing it. `seed` is drawn by the op from
`minidl.random.generator()`.
"""
import numpy as np

from . import attention_backward as _bwd
from . import attention_forward as _fwd
from . import attention_math as _math
from .attention_numpy import attention_backward_numpy, attention_forward_numpy
from .backend import current, interpreted

def _run(kernel, *args):
    """Run a loop kernel compiled, or interpreted on the "python" backend."""
    if current() == "python":
        kernel = interpreted(kernel)
    with np.errstate(over="ignore"):              # interpreted, the dropout hash wraps around on purpose
        kernel(*args)


def _writeable(*arrays):
    """The arrays, copying any read-only one (a broadcast view, say): Numba
    compiles a separate version for read-only arrays, and one signature per
    dtype is enough. The kernels never write into their inputs."""
    return tuple(a if a.flags.writeable else a.copy() for a in arrays)


def _dropout_args(dropout_p, seed, dtype):
    threshold = _math.dropout_threshold(dropout_p)
    keep_scale = dtype.type(1.0 / (1.0 - dropout_p))
    return np.uint64(seed), threshold, keep_scale


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
    args = (q, k, v, bias, bias_index, bool(causal), scale, seed, threshold, keep_scale,
            out, lse)
    _run(_fwd.attention_forward_loops, *args)
    return out, lse


def backward(q, k, v, bias, bias_index, causal, scale, dropout_p, seed, out, lse, dout,
             need_bias_grad=False):
    """Gradients dq, dk, dv (and dS (BH, L, S) for the additive mask when
    `need_bias_grad`: that one is always computed by the NumPy twin, since
    it is an L x S matrix anyway)."""
    scale = q.dtype.type(scale)
    seed, threshold, keep_scale = _dropout_args(dropout_p, seed, q.dtype)
    args = (q, k, v, bias, bias_index, bool(causal), scale, seed, threshold, keep_scale,
            out, lse, dout)
    if current() == "numpy" or need_bias_grad:
        dq, dk, dv, ds = attention_backward_numpy(*args)
        return (dq, dk, dv, ds) if need_bias_grad else (dq, dk, dv)
    args = _writeable(*args[:5]) + args[5:10] + _writeable(*args[10:])
    grads = (np.zeros_like(q), np.zeros_like(k), np.zeros_like(v))
    _run(_bwd.attention_backward_loops, *args, *grads)
    return grads


def weights(q, k, bias, bias_index, causal, scale):
    """The (BH, L, S) attention probabilities (no dropout), for plots; always
    computed by the NumPy twin. Fully masked rows are 0."""
    from .attention_numpy import attention_scores, softmax_rows
    return softmax_rows(attention_scores(q, k, bias, bias_index, causal, q.dtype.type(scale)))[0]
