"""Forward and backward of every kernel op on small float64 inputs, as a table
of named arrays: the same computation under any backend or debugging mode.

Imported by tests/test_debug_paths.py, and run as a script in a subprocess
(with NUMBA_DISABLE_JIT=1 set in its environment):

    python tests/kernel_cases.py OUT.npz numba python

computes every case under each named backend and saves the arrays as
OUT.npz (keys "<backend>/<case>/<what>"), plus "disable_jit" (0 or 1): what
Numba's configuration said in that process.
"""
import sys

import numpy as np

import minidl as mdl
import minidl.functional as F
from minidl import kernels


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal
    distinct = rng.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) / 10.0   # no max ties
    return {
        "conv_x": normal((2, 3, 5, 6)), "conv_w": normal((4, 3, 3, 3)), "conv_b": normal(4),
        "convt_x": normal((2, 4, 3, 4)), "convt_w": normal((4, 3, 3, 3)), "convt_b": normal(3),
        "pool_x": distinct,
        "soft_x": normal((4, 7)) * 3,
        "gelu_x": normal((5, 6)) * 2,
        "norm_x": normal((3, 5, 8)) + 2, "norm_w": normal(8), "norm_b": normal(8),
        "bn_w": normal(5), "bn_b": normal(5), "bn_mean": normal(5), "bn_var": rng.uniform(0.5, 2, 5),
        "q": normal((2, 2, 5, 4)), "k": normal((2, 2, 6, 4)), "v": normal((2, 2, 6, 3)),
        "bool_mask": rng.random((5, 6)) < 0.7, "float_mask": normal((2, 1, 5, 6)),
    }


def _cases(a):
    """name -> (function of the leaf tensors, the leaf arrays that get gradients)."""
    sdpa = F.scaled_dot_product_attention
    bool_mask = a["bool_mask"].copy()
    bool_mask[:, 0] = True                                     # every query sees a key
    return {
        "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), (a["conv_x"], a["conv_w"], a["conv_b"])),
        "conv2d_strided": (lambda x, w: F.conv2d(x, w, stride=2, dilation=(1, 2)),
                           (a["conv_x"], a["conv_w"])),
        "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                output_padding=1),
                             (a["convt_x"], a["convt_w"], a["convt_b"])),
        "max_pool2d": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), (a["pool_x"],)),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, (2, 3), stride=(1, 2), padding=1), (a["pool_x"],)),
        "softmax": (lambda x: F.softmax(x, dim=-1), (a["soft_x"],)),
        "softmax_dim0": (lambda x: F.softmax(x, dim=0), (a["soft_x"],)),
        "log_softmax": (lambda x: F.log_softmax(x, dim=-1), (a["soft_x"],)),
        "gelu": (lambda x: F.gelu(x), (a["gelu_x"],)),
        "relu": (lambda x: F.relu(x), (a["gelu_x"],)),
        "layer_norm": (lambda x, w, b: F.layer_norm(x, 8, w, b), (a["norm_x"], a["norm_w"], a["norm_b"])),
        "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                       (a["norm_x"], a["bn_w"], a["bn_b"])),
        "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, a["bn_mean"], a["bn_var"], w, b),
                            (a["norm_x"], a["bn_w"], a["bn_b"])),
        "sdpa": (lambda q, k, v: sdpa(q, k, v), (a["q"], a["k"], a["v"])),
        "sdpa_causal": (lambda q, k, v: sdpa(q, k, v, is_causal=True), (a["q"], a["k"], a["v"])),
        "sdpa_bool_mask": (lambda q, k, v: sdpa(q, k, v, attn_mask=bool_mask), (a["q"], a["k"], a["v"])),
        "sdpa_float_mask": (lambda q, k, v, m: sdpa(q, k, v, attn_mask=m),
                            (a["q"], a["k"], a["v"], a["float_mask"])),
    }


def compute(backend, seed=0):
    """{"<case>/out": ..., "<case>/grad<i>": ...} for every case under `backend`."""
    arrays = _inputs(seed)
    rng = np.random.default_rng(seed + 1)
    results = {}
    with kernels.use(backend):
        for name, (fn, leaves) in _cases(arrays).items():
            tensors = [mdl.tensor(leaf.copy(), requires_grad=True) for leaf in leaves]
            out = fn(*tensors)
            upstream = rng.standard_normal(out.shape)
            out.backward(upstream)
            results[f"{name}/out"] = out.data
            for i, t in enumerate(tensors):
                results[f"{name}/grad{i}"] = t.grad
    return results


def main(argv):
    import numba
    path, backends = argv[0], argv[1:]
    saved = {"disable_jit": np.array(int(bool(numba.config.DISABLE_JIT)))}
    for backend in backends:
        for key, value in compute(backend).items():
            saved[f"{backend}/{key}"] = value
    np.savez(path, **saved)


if __name__ == "__main__":
    main(sys.argv[1:])
