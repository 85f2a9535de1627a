"""Thread control, all in one place: how minidl shares the cores between
NumPy's BLAS (OpenBLAS's thread pool) and Numba's parallel kernels.

Both pools busy-wait for a while after their work, so when a Numba kernel and
a BLAS product alternate, each pool's spinning threads steal the cores from
the other: on a machine with few cores the pair runs several times slower
than its parts (see "Benchmarks" in the README). minidl therefore runs one
pool at a time:

- `training_threads()`: while training, BLAS uses MINIDL_BLAS_THREADS threads
  (default 1) and leaves the cores to Numba's pool.
- `single_threaded_blas()`: while a parallel Numba kernel calls BLAS from
  every one of its threads (`np.dot` inside @njit calls SciPy's BLAS), that
  BLAS runs one thread per call.
- `numba_threads(count)`: Numba's parallel kernels use `count` threads inside
  the block; `single_thread_if_small(size)` uses one thread for work too small
  to gain from a second (waking the pool costs more than it saves, and much
  more on a busy machine).
- `thread_setting(threads, blas)`: both at once, for benchmarks.

BLAS is controlled through threadpoolctl.
"""
import contextlib
import os

import numba
from threadpoolctl import ThreadpoolController, threadpool_limits

SMALL = 1 << 18          # elements: below this, one Numba thread is as fast as two

_blas = None             # threadpoolctl's handle on the loaded BLAS libraries


def blas_threads():
    """Threads BLAS may use while training (MINIDL_BLAS_THREADS, default 1)."""
    value = os.environ.get("MINIDL_BLAS_THREADS", "1")
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"MINIDL_BLAS_THREADS must be a positive integer, got {value!r}") from None
    if count < 1:
        raise ValueError(f"MINIDL_BLAS_THREADS must be a positive integer, got {value!r}")
    return count


@contextlib.contextmanager
def training_threads():
    """Within the block, BLAS uses `blas_threads()` threads; restored on exit."""
    with threadpool_limits(limits=blas_threads(), user_api="blas"):
        yield


def _blas_libraries():
    """NumPy's and SciPy's BLAS, found once (scanning the process is slow;
    limiting the found libraries afterwards takes microseconds)."""
    global _blas
    if _blas is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that np.dot in @njit calls)
        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


@contextlib.contextmanager
def single_threaded_blas():
    """Within the block, BLAS (NumPy's and SciPy's) runs one thread per call."""
    with _blas_libraries().limit(limits=1):
        yield


@contextlib.contextmanager
def numba_threads(count):
    """Within the block, Numba's parallel loops use `count` threads (at most
    NUMBA_NUM_THREADS); restored on exit."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def single_thread_if_small(size, threshold=SMALL):
    """Within the block, Numba's parallel loops use one thread if size < threshold."""
    if size >= threshold:
        yield
        return
    with numba_threads(1):
        yield


@contextlib.contextmanager
def thread_setting(threads, blas):
    """Numba at `threads` threads and BLAS at `blas` threads inside the block."""
    with numba_threads(threads), threadpool_limits(limits=blas, user_api="blas"):
        yield
