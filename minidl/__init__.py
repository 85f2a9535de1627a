"""minidl: a small deep-learning framework to read, step through and train with.

    import minidl as mdl
    import minidl.functional as F
    from minidl import nn, optim
"""
import os as _os
import sys as _sys

# NumPy's OpenBLAS reads this once, when NumPy loads it: its idle threads then
# sleep after a few microseconds instead of busy-waiting, so Numba's kernels
# can use the cores between two matrix products (see minidl/threads.py).
_blas_timeout_set_before_numpy = "numpy" not in _sys.modules
if _blas_timeout_set_before_numpy:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

from .autograd import (  # noqa: F401
    Tensor, Function, tensor, no_grad, enable_grad, set_grad_enabled,
    is_grad_enabled, detect_anomaly,
)
from . import kernels  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from .ops import (  # noqa: F401  (torch-style top-level functions: mdl.cat, mdl.exp, ...)
    add, sub, mul, div, neg, pow, matmul,
    exp, log, sqrt, abs, clamp, clip, maximum, minimum,
    relu, sigmoid, tanh,
    sum, mean, var, amax, amin, logsumexp,
    reshape, transpose, permute, flatten, squeeze, unsqueeze,
    cat, concatenate, stack, split, chunk,
    where, masked_fill, eq, ne, lt, le, gt, ge,
)

__version__ = "0.1.0"

float32 = np.float32
float64 = np.float64
int64 = np.int64


def manual_seed(seed):
    """Seed minidl's random number generator (initialisation, dropout, shuffling)."""
    from . import random
    random.manual_seed(seed)


# checkpoints, layers and optimizers
from .serialization import save, load  # noqa: E402,F401
from . import nn, optim  # noqa: E402,F401
