"""Pure ndarray -> ndarray math, no autograd. One file per op family; each holds
loop kernels written once with `@njit(cache=True)` and a vectorised NumPy twin.

Run with `NUMBA_DISABLE_JIT=1` to step through the loops in a debugger.
"""
from .backend import BACKENDS, current, use, dispatch, interpreted  # noqa: F401
from .warmup import announce_compilation

announce_compilation()
