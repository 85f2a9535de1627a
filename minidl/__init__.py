"""minidl: a small deep-learning framework to read, step through and train with.

    import minidl as mdl
    import minidl.functional as F
    from minidl import nn, optim
"""
import numpy as np

from .autograd import (  # noqa: F401
    Tensor, Function, tensor, no_grad, enable_grad, set_grad_enabled,
    is_grad_enabled, detect_anomaly,
)
from . import kernels  # noqa: F401

__version__ = "0.1.0"

float32 = np.float32
float64 = np.float64
int64 = np.int64


def manual_seed(seed):
    """Seed minidl's random number generator (initialisation, dropout, shuffling)."""
    from . import random
    random.manual_seed(seed)
