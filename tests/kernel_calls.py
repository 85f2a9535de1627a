"""Watch the calls of a kernel module's functions while the real ones still
run: count its parallel kernels, so that a test can prove the public op took
the path it checks, or record the BLAS threads in force when a function runs."""
import contextlib


@contextlib.contextmanager
def _wrapped(module, names, wrap):
    """While the block is open, each `module.<name>` is replaced by
    wrap(name, original); the originals are put back when the block closes,
    also after an error."""
    originals = {name: getattr(module, name) for name in names}
    for name, function in originals.items():
        setattr(module, name, wrap(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


@contextlib.contextmanager
def counting_kernel_calls(module, names=("forward_kernel", "backward_kernel")):
    """While the block is open, the calls of each `module.<name>` are counted.
    Yields a dict from each name without its "_kernel" suffix to its count,
    e.g. {"forward": 1, "backward": 1}."""
    calls = {name.removesuffix("_kernel"): 0 for name in names}

    def counted(name, kernel):
        key = name.removesuffix("_kernel")

        def call(*args):
            calls[key] += 1
            return kernel(*args)
        return call

    with _wrapped(module, names, counted):
        yield calls


def blas_threads_seen(module, names, call):
    """Run `call()` with every loaded BLAS set to two threads, each
    `module.<name>` (a Python function of the module that calls BLAS) wrapped
    to record the BLAS thread count in force when it runs. Returns (seen,
    after): seen maps each name to one entry per call, the most threads any
    BLAS would use then; after is that count once `call()` has returned."""
    from threadpoolctl import threadpool_limits
    from minidl.threads import _blas_libraries

    def most_threads():
        return max(library.num_threads for library in _blas_libraries().lib_controllers)

    seen = {name: [] for name in names}

    def recorded(name, function):
        def wrapper(*args, **kwargs):
            seen[name].append(most_threads())
            return function(*args, **kwargs)
        return wrapper

    with threadpool_limits(limits=2, user_api="blas"):
        with _wrapped(module, names, recorded):
            call()
        return seen, most_threads()
