"""A benchmark suite for tests/test_bench_harness.py: the same NumPy product
timed against itself (A/A), and timed next to a Numba kernel and alone.

The product runs on one BLAS thread: the test is about the harness, and a
two-thread BLAS on a busy two-core machine (the test suite runs two workers)
measures the scheduler more than the code."""
import numpy as np

from minidl.bench.harness import Case

N = 256


def _matmul():
    from minidl.threads import _blas_libraries
    _blas_libraries().limit(limits=1)               # this child process only
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((N, N)), rng.standard_normal((N, N))
    return lambda: a @ b


def _numba_softmax():
    from minidl.kernels.softmax import softmax_forward
    x = np.random.default_rng(1).standard_normal((512, 256)).astype(np.float32)
    return lambda: softmax_forward(x)


def cases(quick=False):
    yield Case("matmul", "A/A", {"A": _matmul(), "A again": _matmul()}, baseline="A")
    yield Case("matmul", "in a suite", {"numba softmax": _numba_softmax(), "numpy matmul": _matmul()})
    yield Case("matmul", "alone", {"numpy matmul": _matmul()})
