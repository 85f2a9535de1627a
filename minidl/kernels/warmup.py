"""Compiling the kernels ahead of use, and saying so when it happens.

Numba compiles an `@njit` kernel the first time it is called with a new
combination of argument types, and with `cache=True` it writes the machine
code to disk (next to the source, in `__pycache__`, or in NUMBA_CACHE_DIR),
so later processes load it in milliseconds. The first run on a new install
therefore pauses while the kernels it uses compile. Two things make that
pause visible and optional:

- `announce_compilation()` (installed when minidl is imported) prints one
  line to stderr the first time a minidl kernel is actually compiled in a
  process: never when every kernel comes from the cache.
- `compile_all()` (the `minidl compile` command) runs forward and backward of
  every kernel family (and the optimizers' compiled Adam update) on tiny inputs, in float32 and float64, with a progress
  bar, so that nothing compiles later.

The families below call the kernel entry points directly, with the argument
types the ops pass, so they compile exactly the versions training uses.
"""
import sys
import time

import numpy as np

NOTICE = "compiling minidl kernels for first use (cached afterwards) ..."
DTYPES = (np.float32, np.float64)
_announced = False
_listener = None


def _on_compile_start(event):
    """Print NOTICE the first time a kernel of minidl (minidl.kernels, minidl.optim) compiles."""
    global _announced
    dispatcher = event.data.get("dispatcher") if isinstance(event.data, dict) else None
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    if not _announced and module.split(".")[0] == __package__.split(".")[0]:    # any minidl kernel
        _announced = True
        print(NOTICE, file=sys.stderr, flush=True)


def announce_compilation():
    """Install the notice (once per process). Numba emits "numba:compile"
    only for a real compilation, not for a load from the cache."""
    global _listener
    if _listener is None:
        from numba.core import event

        class _Notice(event.Listener):
            def on_start(self, event):
                _on_compile_start(event)

            def on_end(self, event):
                pass

        _listener = _Notice()
        event.register("numba:compile", _listener)


# ---- one small forward + backward per family --------------------------------------------
def _conv(dtype):
    from . import conv
    rng = np.random.default_rng(0)
    pairs = lambda a, b: (a, b)                                          # noqa: E731
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    bias = rng.standard_normal(4).astype(dtype)
    for stride in (1, 2):                                                # wide and strided columns
        args = (pairs(stride, stride), pairs(1, 1), pairs(1, 1), 1)
        out = conv.conv2d_forward(x, w, *args, bias=bias)
        conv.conv2d_backward(out, x, w, *args)
        conv.conv2d_backward(out, x, w, *args, need_input=False)
    x8, w8 = rng.standard_normal((2, 8, 6, 6)).astype(dtype), rng.standard_normal((4, 8, 4, 4)).astype(dtype)
    args = (pairs(2, 2), pairs(1, 1), pairs(1, 1), 1)                   # channels-last columns
    out = conv.conv2d_forward(x8, w8, *args, bias=bias)
    conv.conv2d_backward(out, x8, w8, *args)
    from . import winograd                                               # 3x3 stride 1, many channels
    out = winograd.conv2d_forward(x, w, (1, 1), bias=bias)
    winograd.conv2d_backward(out, x, w, (1, 1), x.shape, True, True, need_bias=True)
    t_args = ((2, 2), (1, 1), (1, 1), (1, 1), 1)
    wt = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
    out = conv.conv_transpose2d_forward(x, wt, *t_args)
    conv.conv_transpose2d_backward(out, x, wt, (2, 2), (1, 1), (1, 1), 1)
    from . import conv_transpose_sub_pixel                               # 4x4 kernels, stride 2, padding 1
    wt4 = rng.standard_normal((3, 4, 4, 4)).astype(dtype)
    out = conv_transpose_sub_pixel.conv_transpose2d_forward(x, wt4, (0, 0), bias=bias)
    conv_transpose_sub_pixel.conv_transpose2d_backward(out, x, wt4, True, True, need_bias=True)


def _pooling(dtype):
    from . import pooling
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(dtype)
    out, argmax = pooling.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    pooling.max_pool2d_backward(out, argmax, x.shape)
    out = pooling.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    pooling.avg_pool2d_backward(out, x.shape, (2, 2), (2, 2), (0, 0))


def _softmax(dtype):
    from . import softmax
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(dtype)
    for log in (False, True):
        y = softmax.softmax_forward(x, log)
        softmax.softmax_backward(x, y, log)


def _attention(dtype):
    from . import attention
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 5, 4)).astype(dtype) for _ in range(3))
    no_mask, index = np.zeros((0, 1, 5), dtype), np.zeros(2, np.int64)
    for causal in (True, False):                    # tiled kernels, then the dense ones
        out, lse = attention.forward(q, k, v, no_mask, index, causal, 0.5)
        attention.backward(q, k, v, no_mask, index, causal, 0.5, 0.0, 0, out, lse, out)


def _gelu(dtype):
    from . import gelu
    x = np.linspace(-3, 3, 7).astype(dtype)
    out, cdf = gelu.gelu_forward(x)
    gelu.gelu_backward(out, x, cdf)


def _relu(dtype):
    from . import relu
    x = np.linspace(-3, 3, 7).astype(dtype)
    out, keep = relu.relu_forward(x)
    relu.relu_backward(out, keep)


def _layer_norm(dtype):
    from . import layer_norm
    rng = np.random.default_rng(0)
    x, grad = (rng.standard_normal((3, 5)).astype(dtype) for _ in range(2))
    weight, bias = np.ones(5, dtype), np.zeros(5, dtype)
    out, mean, inv_std = layer_norm.layer_norm_forward(x, weight, bias, 1e-5)
    layer_norm.layer_norm_backward(grad, x, weight, mean, inv_std)


def _batch_norm(dtype):
    from . import batch_norm
    rng = np.random.default_rng(0)
    x, grad = (rng.standard_normal((3, 2, 4)).astype(dtype) for _ in range(2))
    weight, bias = np.ones(2, dtype), np.zeros(2, dtype)
    out, mean, var, inv_std = batch_norm.batch_norm_forward(x, weight, bias, 1e-5)
    batch_norm.batch_norm_normalize(x, weight, bias, mean, inv_std)
    batch_norm.batch_norm_backward(grad, x, weight, mean, inv_std, True)


def _adam(dtype):
    from ..optim.adam_update import adam_constants, adam_update
    p, g, m, v = (np.full(5, value, dtype) for value in (1.0, 0.5, 0.0, 0.0))
    adam_update(p, g, m, v, adam_constants(dtype, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, 1))


FAMILIES = {"conv": _conv, "pooling": _pooling, "softmax": _softmax, "attention": _attention,
            "gelu": _gelu, "relu": _relu, "layer_norm": _layer_norm, "batch_norm": _batch_norm, "adam": _adam}


def compile_family(name, dtypes=DTYPES):
    """Run family `name` forward and backward once per dtype (compiling, or
    loading from the cache, what it needs) on the "numba" backend."""
    from .backend import use
    with use("numba"):
        for dtype in dtypes:
            FAMILIES[name](dtype)


# Families that share no compiled helper (softmax and attention share the fast
# exp), so two processes can compile them at once without both writing the
# same cache entries; the two groups take about as long as each other.
GROUPS = (("attention", "softmax", "gelu", "adam"), ("conv", "pooling", "relu", "layer_norm", "batch_norm"))


def _compile_group(names, dtypes, done):
    """Worker process: compile `names` in order, reporting (name, seconds) on `done`."""
    for name in names:
        start = time.perf_counter()
        compile_family(name, dtypes)
        done.put((name, time.perf_counter() - start))


def compile_all(dtypes=DTYPES, progress=True, processes=2):
    """Compile (or load) every kernel family; returns {family: seconds}.

    Numba compiles one function at a time per process, so with `processes` > 1
    the families are compiled in that many fresh processes at once (GROUPS),
    into the same on-disk cache; this process then loads them from it.

    Ctrl-C is this process's to handle: the workers are started ignoring
    SIGINT (a spawned Python keeps an ignored SIGINT), so a Ctrl-C sent to the
    whole process group prints nothing from them, and on KeyboardInterrupt
    (or any error) here they are terminated and joined before it propagates."""
    import multiprocessing
    import queue
    import signal
    import threading

    from tqdm import tqdm
    seconds = {}
    bar = tqdm(total=len(FAMILIES), desc="compiling minidl kernels", unit="family", disable=not progress)
    if processes > 1:
        context = multiprocessing.get_context("spawn")      # a clean process: no inherited threads
        done = context.Queue()
        workers = [context.Process(target=_compile_group, args=(group, dtypes, done))
                   for group in GROUPS[:processes]]
        in_main_thread = threading.current_thread() is threading.main_thread()   # signal.signal needs it
        try:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
            try:
                for worker in workers:
                    worker.start()
            finally:
                if in_main_thread:
                    signal.signal(signal.SIGINT, previous)
            expected = sum(len(group) for group in GROUPS[:processes])
            while len(seconds) < expected:
                try:
                    name, elapsed = done.get(timeout=1.0)
                except queue.Empty:                         # a worker that died will never report
                    failed = [worker.exitcode for worker in workers if worker.exitcode not in (None, 0)]
                    if failed:
                        raise RuntimeError("compiling minidl kernels failed in a worker "
                                           f"(exit code {failed[0]})") from None
                    continue
                seconds[name] = elapsed
                bar.set_postfix_str(name)
                bar.update()
            for worker in workers:
                worker.join()
                if worker.exitcode != 0:
                    raise RuntimeError(f"compiling minidl kernels failed in a worker (exit code {worker.exitcode})")
        finally:                                            # interrupted or failed: no worker outlives us
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
            for worker in workers:
                if worker.pid is not None:                  # started
                    worker.join()
    for name in FAMILIES:                                   # load what the workers cached (or compile)
        if name not in seconds:
            start = time.perf_counter()
            compile_family(name, dtypes)
            seconds[name] = time.perf_counter() - start
            bar.set_postfix_str(name)
            bar.update()
    bar.close()
    return seconds
