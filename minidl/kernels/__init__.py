"""Pure ndarray -> ndarray math, no autograd. One entry file per op family
(conv, pooling, softmax, attention, gelu, relu, erf), holding its contract, its readable
loops written once with `@njit(cache=True)`, its vectorised NumPy twin and its
entry points; where a faster loop is worth having, one `<family>_fast.py`
next to it (conv_fast, attention_fast, gelu_fast), tested equal to the readable loops.

Run with `NUMBA_DISABLE_JIT=1`, or under `minidl.kernels.use("python")`, to
step through the loops in a debugger (see ARCHITECTURE.md, "The kernel floor").
"""
from .backend import BACKENDS, current, use, dispatch, interpreted  # noqa: F401
from .cache_check import invalidate_stale_cache
from .warmup import announce_compilation

invalidate_stale_cache()       # before any kernel loads from Numba's cache
announce_compilation()
