"""Benchmark suite for softmax and log_softmax along the last dim (the standard
shapes of the benchmark tables).

For each shape, two cases: forward only, and forward + backward. Implementations:
minidl's op (through autograd) with the "numba" and "numpy" backends, PyTorch's
default call (if torch is importable; float32, 2 threads), and the interpreted
"python" loops on a tiny shape only. Ratios are taken against minidl-numba:
above 1 means slower than ours.

Work in bytes of the arrays the op must touch: forward reads x and writes y
(2 arrays); backward reads the gradient and y and writes dL/dx (3 more).
"""
import numpy as np

from .harness import Case, has_torch
from .. import kernels
from ..autograd.tensor import Tensor
from ..ops.softmax import log_softmax, softmax

# (op, label, shape)
STANDARD = [
    ("softmax", "4096x1000 dim -1", (4096, 1000)),
    ("softmax", "8x8x256x256 dim -1", (8, 8, 256, 256)),
    ("log_softmax", "4096x1000 dim -1", (4096, 1000)),
]
QUICK = [("softmax", "256x100 dim -1", (256, 100)), ("log_softmax", "4x8x32x32 dim -1", (4, 8, 32, 32))]
TINY = [("softmax", "16x32 dim -1 (tiny)", (16, 32)), ("log_softmax", "16x32 dim -1 (tiny)", (16, 32))]
OPS = {"softmax": softmax, "log_softmax": log_softmax}


def _minidl(op, backend, x, backward):
    t = Tensor(x, requires_grad=backward)
    grad = [None]

    def run():
        with kernels.use(backend):
            out = OPS[op](t, dim=-1)
            if backward:
                if grad[0] is None:
                    grad[0] = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
                t.grad = None
                out.backward(grad[0])
        return out
    return run


def _torch(op, x, backward):
    import torch
    torch.set_num_threads(2)
    fn = getattr(torch.nn.functional, op)
    t = torch.from_numpy(x.copy()).requires_grad_(backward)
    grad = [None]

    def run():
        if not backward:
            with torch.no_grad():
                return fn(t, dim=-1)
        out = fn(t, dim=-1)
        if grad[0] is None:
            grad[0] = torch.from_numpy(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32))
        t.grad = None
        out.backward(grad[0])
        return out
    return run


def _input(shape):
    return (np.random.default_rng(0).standard_normal(shape) * 4).astype(np.float32)


def cases(quick=False):
    torch_ok = has_torch()
    for op, label, shape in (QUICK if quick else STANDARD):
        x = _input(shape)
        for backward, suffix, arrays in ((False, "fwd", 2), (True, "fwd+bwd", 5)):
            impls = {f"numba {suffix}": _minidl(op, "numba", x, backward),
                     f"numpy {suffix}": _minidl(op, "numpy", x, backward)}
            if torch_ok:
                impls[f"torch {suffix}"] = _torch(op, x, backward)
            yield Case(op, label, impls, work=arrays * x.nbytes, unit="GB/s", baseline=f"numba {suffix}")
    for op, label, shape in TINY:                         # interpreted loops: tiny shapes only
        x = _input(shape)
        impls = {f"{b} fwd+bwd": _minidl(op, b, x, True) for b in ("numba", "numpy", "python")}
        yield Case(op, label, impls, work=5 * x.nbytes, unit="GB/s", baseline="numba fwd+bwd")
