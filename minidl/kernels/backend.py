"""Which implementation of the kernels runs: "numba" (default, compiled loops),
"numpy" (vectorised twins) or "python" (the same loops, interpreted).

    minidl.kernels.use("numpy")          # from now on
    with minidl.kernels.use("python"):   # only inside the block
        y = F.conv2d(x, w)

Each kernel family file asks `current()` (or uses `dispatch`) to pick its code.
"""
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


def dispatch(numba, numpy, python):
    """Return whichever of the three callables matches the current backend."""
    return {"numba": numba, "numpy": numpy, "python": python}[_current]
