"""One NumPy Generator for everything random in minidl (initialisation, dropout,
data shuffling), so that `mdl.manual_seed(0)` makes a run repeatable."""
import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    """The shared `np.random.Generator`; draw from it, do not keep it."""
    return _generator
