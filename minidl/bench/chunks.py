"""Benchmark suite for the kernels' chunk sizes (`minidl bench chunks`, run
only when named): how fast the same convolution runs when its kernel splits
the work into smaller or larger chunks of samples.

The fast convolution kernels give each thread a block of samples and run it
in chunks: several samples' columns (or Winograd tiles) side by side, one
matrix product per chunk. A larger chunk gives BLAS a larger product, which
it runs closer to its peak; a smaller one keeps the chunk's buffers (the
columns, or Winograd's V and M) in the core's own cache while the copies
and transforms around the product read and write them. The best size sits
between the two and depends on the processor's caches, so it is measured,
not guessed. Two constants are swept here:

- `winograd.CHUNK_TILES`: tiles per chunk in Winograd F(2x2, 3x3)
  (stride-1 3x3 convolutions with enough channels), on the CNN's second
  convolution and the conv suite's 32->64 row;
- `conv_fast.CHUNK_COLUMNS`: output pixels per chunk in im2col (both the
  strided columns and the channels-last ones), on the conv suite's strided
  rows and the CNN's first and third convolutions.

Every implementation is minidl's "numba" op, forward + backward, with one
value of the constant; each runs in its own fresh process like every suite,
and ratios are taken against the value the kernels use now ("(current)").
The results table is benchmarks/results/chunks.md.
"""
from ..kernels import conv_fast, winograd
from .conv import _flops, _inputs, _minidl
from .harness import Case

# (module, constant, values tried, shapes): shapes as in conv.py's STANDARD,
# (op, label, N, Cin, Cout, H, W, k, stride, padding, output_padding)
SWEEPS = [
    (winograd, "CHUNK_TILES", (64, 128, 256, 512), [
        ("conv2d", "N32 32->64 13x13 k3 (cnn conv2)", 32, 32, 64, 13, 13, 3, 1, 0, 0),
        ("conv2d", "N64 32->64 14x14 k3 p1", 64, 32, 64, 14, 14, 3, 1, 1, 0),
    ]),
    (conv_fast, "CHUNK_COLUMNS", (256, 512, 1024, 2048), [
        ("conv2d", "N32 1->32 28x28 k3 (cnn conv1)", 32, 1, 32, 28, 28, 3, 1, 0, 0),
        ("conv2d", "N32 64->64 5x5 k3 (cnn conv3)", 32, 64, 64, 5, 5, 3, 1, 0, 0),
        ("conv2d", "N16 64->128 16x16 k3 s2 p1", 16, 64, 128, 16, 16, 3, 2, 1, 0),
        ("conv_transpose2d", "N64 128->64 7x7->14x14 k4 s2 p1", 64, 128, 64, 7, 7, 4, 2, 1, 0),
    ]),
]
QUICK_SWEEPS = [
    (winograd, "CHUNK_TILES", (16, 256), [
        ("conv2d", "N4 16->16 10x10 k3 p1", 4, 16, 16, 10, 10, 3, 1, 1, 0),
    ]),
    (conv_fast, "CHUNK_COLUMNS", (64, 512), [
        ("conv2d", "N4 8->8 12x12 k3 s2 p1", 4, 8, 8, 12, 12, 3, 2, 1, 0),
    ]),
]


def with_constant(module, name, value, run):
    """`run` with module.name set to value for the call (and put back after)."""
    def timed():
        saved = getattr(module, name)
        setattr(module, name, value)
        try:
            return run()
        finally:
            setattr(module, name, saved)
    return timed


def implementation_name(name, value, current):
    return f"{name}={value}" + (" (current)" if value == current else "")


def cases(quick=False):
    for module, name, values, shapes in (QUICK_SWEEPS if quick else SWEEPS):
        current = getattr(module, name)
        tried = sorted(set(values) | {current})           # the current value always has its row
        for spec in shapes:
            op, label = spec[0], spec[1]
            x, weight, bias, options = _inputs(op, *spec[2:])
            impls = {implementation_name(name, value, current):
                     with_constant(module, name, value, _minidl(op, "numba", x, weight, bias, options, True))
                     for value in tried}
            yield Case(f"{op} {name}", label, impls, work=3 * _flops(op, *spec[2:]),
                       baseline=implementation_name(name, current, current))


TABLE_NOTE = (
    "Each row: minidl's \"numba\" op, forward + backward, float32, with the named constant "
    "set to that value (minidl/bench/chunks.py). Ratios against the value the kernels use now; "
    "below 1 means that value ran faster. The constants' comments in minidl/kernels/winograd.py and "
    "minidl/kernels/conv_fast.py cite this table.")
