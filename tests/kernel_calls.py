"""Count the calls of a kernel module's parallel kernels, so that a test can
prove the public op took the path it checks (the real kernels still run)."""
import contextlib


@contextlib.contextmanager
def counting_kernel_calls(module, names=("forward_kernel", "backward_kernel")):
    """While the block is open, each `module.<name>` is wrapped so that its
    calls are counted. Yields a dict from each name without its "_kernel"
    suffix to its count, e.g. {"forward": 1, "backward": 1}; the originals are
    put back when the block closes, also after an error."""
    calls = {name.removesuffix("_kernel"): 0 for name in names}
    originals = {name: getattr(module, name) for name in names}

    def counted(name, kernel):
        key = name.removesuffix("_kernel")

        def call(*args):
            calls[key] += 1
            return kernel(*args)
        return call

    for name, kernel in originals.items():
        setattr(module, name, counted(name, kernel))
    try:
        yield calls
    finally:
        for name, kernel in originals.items():
            setattr(module, name, kernel)
