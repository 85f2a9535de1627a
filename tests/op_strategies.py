"""Hypothesis strategies for the op table (tests/op_table.py): they draw a
`Case` of input arrays and keyword options.

Shapes are small (sides up to 4) so that gradcheck can perturb every element.
Values come from a NumPy generator seeded by hypothesis (fast to draw), in a
few "kinds" that keep inputs away from kinks and poles: relu/abs at 0, ties of
max/min/maximum, log/sqrt/div near 0.
"""
import dataclasses

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@dataclasses.dataclass
class Case:
    arrays: tuple                 # float64 ndarrays: the inputs gradients flow to
    kwargs: dict                  # everything else (dims, masks, index arrays)

    def __repr__(self):
        shapes = [a.shape for a in self.arrays]
        return f"Case(shapes={shapes}, kwargs={self.kwargs})"


ELEMENTWISE_LAYOUTS = ("contiguous", "transposed", "strided")


def in_layout(x, layout):
    """x's values in one of ELEMENTWISE_LAYOUTS: "contiguous" (x itself),
    "transposed" (a C-contiguous copy of x with its first and last axes
    swapped, seen swapped back: F-order-like strides) or "strided" (every other
    element of an array twice as wide in the last axis). An elementwise kernel
    must give the same result for each."""
    if layout == "transposed" and x.ndim >= 2:
        return np.ascontiguousarray(x.swapaxes(0, -1)).swapaxes(0, -1)
    if layout == "strided" and x.ndim >= 1:
        return np.repeat(x, 2, axis=-1)[..., ::2]
    return x


# ---- value generators (numpy, seeded by hypothesis) -------------------------------
def values(rng, shape, kind):
    if kind == "any":
        return rng.uniform(-2, 2, shape)
    if kind == "wide":
        return rng.uniform(-8, 8, shape)
    if kind == "nonzero":                       # |x| in [0.2, 2]: away from kinks at 0
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2, shape)
    if kind == "positive":                      # away from the poles of log, sqrt, 1/x
        return rng.uniform(0.5, 2, shape)
    if kind == "distinct":                      # no ties: neighbours differ by >= 0.1
        n = int(np.prod(shape))
        return (rng.permutation(n) * 0.1 - 0.05 * n + rng.uniform(0, 0.01, n)).reshape(shape)
    if kind == "integers":                      # integer-valued (for maximum: ties impossible with halves)
        return rng.integers(-3, 4, shape).astype(np.float64)
    if kind == "halves":
        return rng.integers(-3, 4, shape) + 0.5
    if kind == "avoid_half":                    # |x| in [0.2, 2] and |x| not within 0.1 of 0.5
        x = rng.uniform(0.2, 2, shape)
        x = np.where(np.abs(x - 0.5) < 0.1, x + 0.25, x)
        return rng.choice([-1.0, 1.0], shape) * x
    raise ValueError(kind)


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonempty_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2 ** 32 - 1)


@st.composite
def unary(draw, kind="any", shape_strategy=shapes, options=None):
    """One input array; `options(draw, shape)` draws the keyword arguments."""
    shape = draw(shape_strategy)
    rng = np.random.default_rng(draw(seeds))
    kwargs = options(draw, shape) if options else {}
    return Case((values(rng, shape, kind),), kwargs)


@st.composite
def binary(draw, kind_a="any", kind_b="any"):
    """Two arrays whose shapes broadcast together (possibly unequal)."""
    pair = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    rng = np.random.default_rng(draw(seeds))
    a_shape, b_shape = pair.input_shapes
    return Case((values(rng, a_shape, kind_a), values(rng, b_shape, kind_b)), {})


# ---- option generators --------------------------------------------------------------
def reduce_options(draw, shape, keepdim=True):
    ndim = len(shape)
    choice = draw(st.sampled_from(["none", "empty", "int", "tuple"])) if ndim else "none"
    if choice == "none":
        dim = None
    elif choice == "empty":
        dim = ()                                  # every dim, as None (PyTorch's rule)
    elif choice == "int":
        dim = draw(st.integers(-ndim, ndim - 1))
    else:
        dim = tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))
    return dict(dim=dim, keepdim=draw(st.booleans()))


@st.composite
def matmul_case(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    form = draw(st.sampled_from(["2d", "batched", "vec-vec", "vec-mat", "mat-vec"]))
    if form == "batched":
        batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
        a_shape, b_shape = batch.input_shapes[0] + (n, k), batch.input_shapes[1] + (k, m)
    else:
        batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
        a_shape, b_shape = {"2d": ((n, k), (k, m)), "vec-vec": ((k,), (k,)),
                            "vec-mat": ((k,), batch + (k, m)), "mat-vec": (batch + (n, k), (k,))}[form]
    rng = np.random.default_rng(draw(seeds))
    return Case((values(rng, a_shape, "any"), values(rng, b_shape, "any")), {})


def index_options(draw, shape):
    """A basic index: per axis an int, a slice (with step) or a None, maybe an Ellipsis."""
    parts = []
    for n in shape:
        form = draw(st.sampled_from(["int", "slice", "slice", "none"]))
        if form == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif form == "slice":
            start = draw(st.integers(0, n - 1))
            parts.append(slice(start, draw(st.integers(start + 1, n)), draw(st.integers(1, 2))))
        else:
            parts.append(None)
            parts.append(slice(None))
    if parts and draw(st.booleans()):
        parts[0] = Ellipsis if not isinstance(parts[0], int) else parts[0]
    return dict(index=tuple(parts))


def array_index_options(draw, shape):
    n = shape[0]
    picks = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6))   # repeats allowed
    return dict(index=(np.array(picks), Ellipsis))


def mask_index_options(draw, shape):
    rng = np.random.default_rng(draw(seeds))
    return dict(index=rng.random(shape[:draw(st.integers(1, len(shape)))]) < 0.5)


def split_options(draw, shape):
    dim = draw(st.integers(0, len(shape) - 1))
    n = shape[dim]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    return dict(sizes=sizes, dim=dim)


@st.composite
def join_case(draw, same_shape):
    shape = draw(nonempty_shapes)
    dim = draw(st.integers(0, len(shape) - 1))
    count = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(seeds))
    arrays = []
    for _ in range(count):
        s = list(shape)
        if not same_shape:
            s[dim] = draw(st.integers(1, 3))
        arrays.append(values(rng, tuple(s), "any"))
    if same_shape:
        dim = draw(st.integers(-len(shape) - 1, len(shape)))
    return Case(tuple(arrays), dict(dim=dim))


@st.composite
def where_case(draw):
    triple = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4))
    c_shape, a_shape, b_shape = triple.input_shapes
    rng = np.random.default_rng(draw(seeds))
    return Case((values(rng, a_shape, "any"), values(rng, b_shape, "any")),
                dict(condition=rng.random(c_shape) < 0.5))


def masked_fill_options(draw, shape):
    rng = np.random.default_rng(draw(seeds))
    mask_shape = tuple(n if draw(st.booleans()) else 1 for n in shape)[draw(st.integers(0, len(shape))):]
    # (a fill of -1e9 would swamp gradcheck's finite differences of sum(out * r))
    return dict(mask=rng.random(mask_shape) < 0.5, value=draw(st.sampled_from([0.0, -1e4, 2.5])))


@st.composite
def masked_fill_value_case(draw):
    """An input and a 0-d fill value (a tensor: both get gradients), and a mask for the input."""
    shape = draw(shapes)
    mask = masked_fill_options(draw, shape)["mask"]
    rng = np.random.default_rng(draw(seeds))
    return Case((values(rng, shape, "any"), values(rng, (), "any")), dict(mask=mask))


def pad_options(draw, shape):
    pairs = draw(st.integers(0, len(shape)))
    return dict(pad=tuple(draw(st.integers(0, 2)) for _ in range(2 * pairs)),
                value=draw(st.sampled_from([0.0, -1.5])))


def expand_options(draw, shape):
    target = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
    target = [draw(st.integers(1, 2))] * draw(st.integers(0, 1)) + target
    keep = [i for i, n in enumerate(target) if i >= len(target) - len(shape) and draw(st.booleans())]
    return dict(shape=tuple(-1 if i in keep else n for i, n in enumerate(target)))


def squeeze_options(draw, shape):
    if not shape or draw(st.booleans()):
        return dict(dim=None)
    return dict(dim=draw(st.integers(-len(shape), len(shape) - 1)))
