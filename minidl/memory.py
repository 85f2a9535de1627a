"""Keep freed memory in the process, so a training step reuses it.

NumPy makes every result in a fresh array and frees it when the last
reference goes. On Linux, glibc's malloc gives a large block (128 KiB and
up, a threshold that creeps up to 32 MiB as such blocks are freed) its own
fresh pages from the kernel and hands them back when the block is freed; it
also hands back free memory at the top of its heap once more than 128 KiB
is there. A training step makes and drops the same arrays step after step,
so at those defaults every step asks the kernel for the same pages again,
and the kernel zeroes each page on its first touch (a page fault per 4 KiB).

`keep_freed_memory()` raises both thresholds with glibc's `mallopt`: large
blocks come from malloc's heap, and freed ones stay there for the next
step's arrays. The price: the process keeps its peak memory until it ends.
`training_threads()` (and so `minidl train` and every training helper)
calls it; MINIDL_KEEP_FREED_MEMORY=0 turns it off. Elsewhere (macOS,
Windows, a C library without `mallopt`) it does nothing and returns False.
benchmarks/results/gpt_step.md has a GPT training step with and without it.
"""
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1    # mallopt's parameter numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30      # bytes: blocks below 1 GiB come from the heap; up to 1 GiB free stays there

_kept = None             # None until tried; then whether the thresholds were raised


def keep_freed_memory():
    """Raise glibc's trim and mmap thresholds for the rest of the process
    (once; later calls report the first call's result). True if they were
    raised; False where it does not apply or MINIDL_KEEP_FREED_MEMORY=0."""
    global _kept
    if _kept is None:
        value = os.environ.get("MINIDL_KEEP_FREED_MEMORY", "1")
        if value not in ("0", "1"):
            raise ValueError(f"MINIDL_KEEP_FREED_MEMORY must be 0 or 1, got {value!r}")
        _kept = value == "1" and _raise_thresholds()
    return _kept


def _raise_thresholds():
    """Both mallopt calls; False where there is no mallopt or it refuses one."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt    # glibc's, looked up once
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, THRESHOLD) == 1
