"""Hold SciPy's BLAS to one thread while a parallel Numba kernel runs.

`np.dot` inside an @njit function calls SciPy's BLAS (OpenBLAS in the wheels).
OpenBLAS would split each call over its own threads; called from every
thread of Numba's pool at once, that puts two thread pools on the same cores,
which costs several times over (PERF.md, pitfall 1). `single_threaded_blas()`
sets that library to one thread for the duration of a `with` block and then
restores the previous count. It finds the library among the shared objects
this process has loaded (Linux: /proc/self/maps; elsewhere threadpoolctl, if
installed). If it cannot find it, it does nothing, and setting
OPENBLAS_NUM_THREADS=1 in the environment has the same effect.
"""
import contextlib
import ctypes
import os

_controls = None        # list of (get_num_threads, set_num_threads) ctypes functions


def _scipy_blas_paths():
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS into the process)
    root = os.path.dirname(os.path.abspath(scipy.__file__))          # .../site-packages/scipy
    prefixes = (root + os.sep, root + ".libs" + os.sep)               # bundled copies live here
    paths = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if path.startswith(prefixes) and "openblas" in os.path.basename(path).lower():
                    paths.add(path)
    except OSError:
        pass
    if not paths:
        try:
            from threadpoolctl import threadpool_info
            paths = {i["filepath"] for i in threadpool_info()
                     if i.get("user_api") == "blas" and i["filepath"].startswith(prefixes)}
        except ImportError:
            pass
    return sorted(paths)


def _find_controls():
    controls = []
    for path in _scipy_blas_paths():
        library = ctypes.CDLL(path)
        for prefix in ("scipy_", ""):
            for suffix in ("", "64_"):
                get = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
                set_ = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                    controls.append((get, set_))
                    break
            else:
                continue
            break
    return controls


@contextlib.contextmanager
def single_threaded_blas():
    """Within the block, SciPy's OpenBLAS uses one thread per call."""
    global _controls
    if _controls is None:
        try:
            _controls = _find_controls()
        except (ImportError, OSError):
            _controls = []
    previous = [get() for get, _ in _controls]
    for _, set_ in _controls:
        set_(1)
    try:
        yield
    finally:
        for (_, set_), count in zip(_controls, previous):
            if count != 1:
                set_(count)
