"""Run small problems on one thread.

Entering a Numba parallel region costs tens of microseconds on a quiet machine,
and on a busy one (more runnable processes than cores) the region's end waits
for a descheduled worker thread: measured here, a 256x100 softmax took 0.06 ms
on one thread and 30-40 ms on two under load. Work too small to gain from a
second thread therefore runs with `numba.set_num_threads(1)`; the compiled
kernel is the same, its prange simply gets one chunk.

    with single_thread_if_small(x.size):
        y = kernel(x)
"""
import contextlib

import numba

SMALL = 1 << 18          # elements: below this one thread is as fast as two


@contextlib.contextmanager
def single_thread_if_small(size, threshold=SMALL):
    """Within the block, Numba parallel kernels use one thread if size < threshold."""
    if size >= threshold:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
