"""One thread pool at a time: how minidl shares the cores between NumPy's BLAS
and Numba's parallel kernels while training.

A training step alternates Numba kernels (convolution columns, pooling,
attention), which run on Numba's thread pool, with matrix products in NumPy,
which run on OpenBLAS's own pool. Both pools busy-wait after their work, so
on a 2-core machine they steal the cores from each other: measured here, a
step of small products and kernels ran 4-10x slower than its parts alone
(../shared/PERF.md, pitfall 1, and worse still on a loaded machine).

`training_threads()` therefore keeps BLAS to one thread inside the block and
leaves the cores to Numba's pool. Set MINIDL_BLAS_THREADS to change it (e.g.
MINIDL_BLAS_THREADS=2 for a model that is mostly large matrix products).
"""
import contextlib
import os

from threadpoolctl import threadpool_limits


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
