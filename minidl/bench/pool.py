"""Benchmark suite for max_pool2d and avg_pool2d.

For each shape, two cases: forward only, and forward + backward (gradient for
the input). Implementations: minidl's op (through autograd) with the "numba"
and "numpy" backends, PyTorch's default call (if torch is importable; float32,
2 threads), and the interpreted "python" loops on a tiny shape only. Ratios
are taken against minidl-numba: above 1 means slower than ours.

Work is counted in bytes of the arrays the op must touch: input and output for
the forward; plus output gradient and input gradient for forward + backward
(argmax bookkeeping not counted), so the rate is a lower bound in GB/s.
"""
import numpy as np

from ..kernels.geometry import conv_output_size
from .harness import Case, has_torch
from .. import kernels
from ..autograd.tensor import Tensor
from ..ops.pooling import avg_pool2d, max_pool2d

# (op, label, N, C, H, W, kernel, stride, padding)
STANDARD = [
    ("max_pool2d", "N64 C32 28x28 k2", 64, 32, 28, 28, 2, 2, 0),
    ("max_pool2d", "N32 C64 32x32 k2", 32, 64, 32, 32, 2, 2, 0),
    ("avg_pool2d", "N64 C32 28x28 k2", 64, 32, 28, 28, 2, 2, 0),
    ("avg_pool2d", "N32 C64 32x32 k2", 32, 64, 32, 32, 2, 2, 0),
    ("max_pool2d", "N32 C64 32x32 k3 s1 p1 (overlap)", 32, 64, 32, 32, 3, 1, 1),
]
QUICK = [
    ("max_pool2d", "N4 C8 16x16 k2", 4, 8, 16, 16, 2, 2, 0),
    ("avg_pool2d", "N4 C8 16x16 k3 s1 p1", 4, 8, 16, 16, 3, 1, 1),
]
TINY = [
    ("max_pool2d", "N2 C3 8x8 k2 (tiny)", 2, 3, 8, 8, 2, 2, 0),
    ("avg_pool2d", "N2 C3 8x8 k3 s1 p1 (tiny)", 2, 3, 8, 8, 3, 1, 1),
]
OPS = {"max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d}


def _minidl(op, backend, x, options, backward):
    t = Tensor(x, requires_grad=backward)
    grad = [None]

    def run():
        with kernels.use(backend):
            out = OPS[op](t, **options)
            if backward:
                if grad[0] is None:
                    grad[0] = np.ones_like(out.data)
                t.grad = None
                out.backward(grad[0])
        return out
    return run


def _torch(op, x, options, backward):
    import torch
    torch.set_num_threads(2)
    fn = getattr(torch.nn.functional, op)
    t = torch.from_numpy(x.copy()).requires_grad_(backward)
    grad = [None]

    def run():
        if not backward:
            with torch.no_grad():
                return fn(t, **options)
        out = fn(t, **options)
        if grad[0] is None:
            grad[0] = torch.ones_like(out)
        t.grad = None
        out.backward(grad[0])
        return out
    return run


def _setup(n, c, h, w, k, s, p):
    x = np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float32)  # (N, C, H, W)
    oh, ow = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
    out_bytes = n * c * oh * ow * 4
    return x, dict(kernel_size=k, stride=s, padding=p), x.nbytes + out_bytes


def cases(quick=False):
    torch_ok = has_torch()
    for op, label, *spec in (QUICK if quick else STANDARD):
        x, options, fwd_bytes = _setup(*spec)
        for backward, suffix in ((False, "fwd"), (True, "fwd+bwd")):
            impls = {f"numba {suffix}": _minidl(op, "numba", x, options, backward),
                     f"numpy {suffix}": _minidl(op, "numpy", x, options, backward)}
            if torch_ok:
                impls[f"torch {suffix}"] = _torch(op, x, options, backward)
            yield Case(op, label, impls, work=fwd_bytes * (2 if backward else 1), unit="GB/s",
                       baseline=f"numba {suffix}")
    for op, label, *spec in TINY:                         # interpreted loops: tiny shapes only
        x, options, fwd_bytes = _setup(*spec)
        impls = {f"{b} fwd+bwd": _minidl(op, b, x, options, True) for b in ("numba", "numpy", "python")}
        yield Case(op, label, impls, work=2 * fwd_bytes, unit="GB/s", baseline="numba fwd+bwd")
