"""Which implementation of the kernels runs: "numba" (default, compiled loops),
"numpy" (vectorised twins) or "python" (the same loops, interpreted).

    minidl.kernels.use("numpy")          # from now on
    with minidl.kernels.use("python"):   # only inside the block
        y = F.conv2d(x, w)

Each kernel family file asks `current()` (or uses `dispatch`) to pick its code,
and runs its loops interpreted through `interpreted(kernel)`.
"""
import types

import numpy as np
from numba.core.dispatcher import Dispatcher

BACKENDS = ("numba", "numpy", "python")
_current = "numba"


def current():
    """The name of the backend in use."""
    return _current


class use:
    """Switch the kernel backend now; as a context manager, switch back on exit."""

    def __init__(self, name):
        global _current
        if name not in BACKENDS:
            raise ValueError(f"kernels.use: unknown backend {name!r}; choose one of {BACKENDS}")
        self.previous = _current
        _current = name

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        global _current
        _current = self.previous
        return False


def dispatch(loops, twin):
    """The code the current backend runs: the compiled `loops` ("numba"), the
    NumPy `twin` ("numpy"), or the same loops interpreted ("python")."""
    if _current == "numba":
        return loops
    return twin if _current == "numpy" else interpreted(loops)


_interpreted = {}          # plain function -> its interpreted twin


def interpreted(kernel):
    """The plain Python version of an `@njit` kernel, calling plain Python
    versions of every minidl kernel helper it uses, so nothing is compiled.

    `kernel.py_func` alone is not enough: its body would still call the
    compiled helpers (`exp_like`, `scores_block`, ...). Here the function is
    rebuilt over a copy of its module's globals in which every Numba
    dispatcher, and every plain function of `minidl.kernels`, is replaced by
    its interpreted version (the module itself is left untouched, so compiled
    and interpreted calls can run side by side). Under NUMBA_DISABLE_JIT=1
    `@njit` returns the plain function itself, and this changes nothing.
    """
    function = getattr(kernel, "py_func", kernel)
    twin = _interpreted.get(function)
    if twin is not None:
        return twin
    if not isinstance(kernel, Dispatcher) and not function.__module__.startswith(__package__):
        return function                                  # NumPy, math, ...: already plain
    namespace = dict(function.__globals__)
    twin = types.FunctionType(function.__code__, namespace, function.__name__,
                              function.__defaults__, function.__closure__)
    twin.__doc__ = function.__doc__
    _interpreted[function] = twin                        # before recursing: helpers may call back
    for name in function.__code__.co_names:              # the globals the body reads
        value = namespace.get(name)
        if isinstance(value, Dispatcher) or (isinstance(value, types.FunctionType)
                                             and value.__module__.startswith(__package__)):
            namespace[name] = interpreted(value)
    return twin


def kernel_array(array):
    """`array` as the kernels take it: C-contiguous and writeable (a copy only
    when needed). Numba compiles a separate version of a kernel for every
    layout and for read-only arrays; handing it one layout means each kernel
    compiles once per dtype. The kernels never write into their inputs."""
    if array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(array, order="C", copy=True)
