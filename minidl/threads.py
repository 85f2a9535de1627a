"""Thread control, all in one place: how minidl shares the cores between
NumPy's BLAS (OpenBLAS's thread pool) and Numba's parallel kernels.

Both pools, left at their defaults, busy-wait for a while after their work
(OpenBLAS's threads for up to ~0.1 s, Numba's OpenMP threads for a shorter
spin), so when a Numba kernel and a BLAS product alternate, each pool's
spinning threads steal the cores from the other: on a machine with few cores
the pair runs several times slower than its parts (see "Benchmarks" in the
README). minidl lets the two pools take turns on every core instead, by
making their idle threads sleep at once:

- `import minidl` sets OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's idle threads
  sleep after a few microseconds) if NumPy is not loaded yet: OpenBLAS reads
  it once, when NumPy loads it. A value you set yourself is kept.
- `training_threads()` (entered by every training helper, so a script that
  calls them needs nothing else) starts Numba's pool with OpenMP's passive wait policy
  (OMP_WAIT_POLICY=passive only while the pool starts, so other libraries'
  OpenMP runtimes keep their own defaults), then lets BLAS use
  `blas_threads()` threads: every core when both pools sleep when idle, one
  thread otherwise (NumPy imported before minidl, a BLAS other than
  OpenBLAS, or Numba's pool started earlier), as a spinning pool would
  fight. MINIDL_BLAS_THREADS overrides the choice.
  benchmarks/results/gpt_step.md measures the choice: a GPT training step is
  faster with both pools quiet and BLAS on every core than with BLAS on one.
  On entry it also calls `minidl.memory.keep_freed_memory()`, so freed
  arrays stay in the process for the next step (minidl/memory.py).

For single kernels:
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

from .memory import keep_freed_memory

SMALL = 1 << 18          # elements: below this, one Numba thread is as fast as two

_blas = None             # threadpoolctl's handle on the loaded BLAS libraries
_blas_default = 1        # the most threads any of them used when first found (their default)
_numba_pool_quiet = None  # True once Numba's pool was started by us with passive waiting


def _openblas_sleeps_when_idle():
    """True when NumPy's BLAS is OpenBLAS and loaded with a short thread
    timeout (set by `import minidl`, see the module docstring, or by you)."""
    import minidl
    if not minidl._blas_timeout_set_before_numpy and "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
        return False
    return all(lib.internal_api == "openblas" for lib in _blas_libraries().lib_controllers)


def start_numba_pool_quietly():
    """Start Numba's thread pool with OpenMP's passive wait policy (its idle
    threads sleep instead of spinning); True if its threads wait passively.
    Once the pool runs, its policy is fixed: then this only reports it."""
    global _numba_pool_quiet
    if _numba_pool_quiet is None:
        from numba.np.ufunc import parallel
        if parallel._is_initialized:                   # started before, with whatever policy it had
            _numba_pool_quiet = os.environ.get("OMP_WAIT_POLICY", "").lower() == "passive"
        else:
            chosen = os.environ.get("OMP_WAIT_POLICY")
            os.environ["OMP_WAIT_POLICY"] = chosen or "passive"
            try:
                numba.get_num_threads()                    # starts the pool: its OpenMP runtime reads the policy now
            finally:
                if chosen is None:
                    del os.environ["OMP_WAIT_POLICY"]      # other OpenMP runtimes loaded later keep their defaults
            layer = numba.threading_layer()                # "workqueue" threads sleep when idle; OpenMP's as told
            _numba_pool_quiet = layer == "workqueue" or (layer == "omp" and (chosen or "passive").lower() == "passive")
    return _numba_pool_quiet


def blas_threads():
    """Threads BLAS may use while training: MINIDL_BLAS_THREADS if set; else
    every core BLAS would use by default when both pools sleep when idle,
    and 1 when one of them spins (see the module docstring)."""
    value = os.environ.get("MINIDL_BLAS_THREADS")
    if value is None:
        quiet = start_numba_pool_quietly() and _openblas_sleeps_when_idle()
        return _blas_default if quiet else 1
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"MINIDL_BLAS_THREADS must be a positive integer, got {value!r}") from None
    if count < 1:
        raise ValueError(f"MINIDL_BLAS_THREADS must be a positive integer, got {value!r}")
    return count


_training_depth = 0      # how many training_threads() blocks are open (the outermost sets the limits)


@contextlib.contextmanager
def training_threads():
    """Within the block, Numba's pool waits passively and BLAS uses
    `blas_threads()` threads; on exit, also through an exception, BLAS gets
    back the thread count it had before. The training helpers
    (`minidl.training`: `train_one_epoch`, `evaluate`, `fit` and every
    trainer, `gan.train_step`) and `minidl train` enter it themselves; blocks
    nest (an inner block keeps the outer one's setting)."""
    global _training_depth
    if _training_depth:
        yield
        return
    keep_freed_memory()                   # freed arrays stay in the process for the next step
    start_numba_pool_quietly()
    with _blas_libraries().limit(limits=blas_threads()):
        _training_depth += 1
        try:
            yield
        finally:
            _training_depth -= 1


def in_training_threads():
    """True inside a `training_threads()` block."""
    return _training_depth > 0


def set_training_threads():
    """For the rest of the process, the threads `training_threads()` sets
    (a benchmark's process that only trains)."""
    keep_freed_memory()
    start_numba_pool_quietly()
    _blas_libraries().limit(limits=blas_threads())


def _blas_libraries():
    """NumPy's and SciPy's BLAS, found once (scanning the process is slow;
    limiting the found libraries afterwards takes microseconds)."""
    global _blas, _blas_default
    if _blas is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that np.dot in @njit calls)
        _blas = ThreadpoolController().select(user_api="blas")
        _blas_default = max([lib.num_threads for lib in _blas.lib_controllers] + [1])
    return _blas


@contextlib.contextmanager
def single_threaded_blas():
    """Within the block, BLAS (NumPy's and SciPy's) runs one thread per call;
    each library gets back its own count on exit.

    Every conv call enters this block, so it sets the libraries' counts
    directly (about 4 microseconds) rather than through threadpoolctl's
    `limit()`, which also re-reads each library's details (about 12)."""
    libraries = _blas_libraries().lib_controllers
    previous = [library.num_threads for library in libraries]
    for library, count in zip(libraries, previous):
        if count != 1:
            library.set_num_threads(1)
    try:
        yield
    finally:
        for library, count in zip(libraries, previous):
            if count != 1:
                library.set_num_threads(count)


@contextlib.contextmanager
def numba_threads(count):
    """Within the block, Numba's parallel loops use `count` threads (at most
    NUMBA_NUM_THREADS); restored on exit."""
    previous = numba.get_num_threads()
    wanted = max(1, min(count, numba.config.NUMBA_NUM_THREADS))
    if wanted == previous:              # already so: nothing to set or restore
        yield
        return
    numba.set_num_threads(wanted)
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
