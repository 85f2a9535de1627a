"""The op table: one row per differentiable op (MyGrad-style), read by
tests/test_ops_properties.py. Adding an op means adding one row here.

A row names the op, calls it the minidl way, gives an independent NumPy
reference (float64), and a hypothesis strategy that draws a `Case`: the float
input arrays (what gradients flow to) and keyword options (dims, masks, index
arrays, ...). Input values are drawn away from kinks and poles (relu/abs at 0,
ties of max/min/maximum, log/sqrt/div near 0) so finite differences are valid.
"""
import dataclasses
import math
from typing import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidl as mdl
import minidl.functional as F
from minidl import ops


@dataclasses.dataclass
class Case:
    arrays: tuple                 # float64 ndarrays: the inputs gradients flow to
    kwargs: dict                  # everything else (dims, masks, index arrays)

    def __repr__(self):
        shapes = [a.shape for a in self.arrays]
        return f"Case(shapes={shapes}, kwargs={self.kwargs})"


@dataclasses.dataclass
class Op:
    name: str
    fn: Callable                  # (*tensors, **kwargs) -> Tensor
    ref: Callable                 # (*arrays, **kwargs) -> ndarray, in float64
    cases: st.SearchStrategy      # draws a Case
    differentiable: bool = True
    atol32: float = 1e-5          # float32 forward tolerance (relative to the reference's scale)
    out_dtype: object = None      # None: the output keeps the input's float dtype


# ---- value generators (numpy, seeded by hypothesis) -------------------------------
def _values(rng, shape, kind):
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
    return Case((_values(rng, shape, kind),), kwargs)


@st.composite
def binary(draw, kind_a="any", kind_b="any"):
    """Two arrays whose shapes broadcast together (possibly unequal)."""
    pair = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    rng = np.random.default_rng(draw(seeds))
    a_shape, b_shape = pair.input_shapes
    return Case((_values(rng, a_shape, kind_a), _values(rng, b_shape, kind_b)), {})


# ---- option generators --------------------------------------------------------------
def reduce_options(draw, shape, keepdim=True):
    ndim = len(shape)
    choice = draw(st.sampled_from(["none", "int", "tuple"])) if ndim else "none"
    if choice == "none":
        dim = None
    elif choice == "int":
        dim = draw(st.integers(-ndim, ndim - 1))
    else:
        dim = tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))
    return dict(dim=dim, keepdim=draw(st.booleans()))


def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    return tuple(d % ndim for d in (dim if isinstance(dim, tuple) else (dim,)))


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
    return Case((_values(rng, a_shape, "any"), _values(rng, b_shape, "any")), {})


def matmul_ref(a, b):
    """matmul written as einsum, with NumPy's rules for 1-D operands."""
    if a.ndim == 1 and b.ndim == 1:
        return np.einsum("i,i->", a, b)
    if a.ndim == 1:
        return np.einsum("i,...ik->...k", a, b)
    if b.ndim == 1:
        return np.einsum("...ij,j->...i", a, b)
    return np.einsum("...ij,...jk->...ik", a, b)


def _index_options(draw, shape):
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


def _array_index_options(draw, shape):
    n = shape[0]
    picks = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6))   # repeats allowed
    return dict(index=(np.array(picks), Ellipsis))


def _mask_index_options(draw, shape):
    rng = np.random.default_rng(draw(seeds))
    return dict(index=rng.random(shape[:draw(st.integers(1, len(shape)))]) < 0.5)


def _split_options(draw, shape):
    dim = draw(st.integers(0, len(shape) - 1))
    n = shape[dim]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    return dict(sizes=sizes, dim=dim)


def _split_ref(a, sizes, dim):
    pieces = np.split(a, np.cumsum(sizes)[:-1], axis=dim)
    return np.concatenate(pieces[::-1], axis=dim)


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
        arrays.append(_values(rng, tuple(s), "any"))
    if same_shape:
        dim = draw(st.integers(-len(shape) - 1, len(shape)))
    return Case(tuple(arrays), dict(dim=dim))


@st.composite
def where_case(draw):
    triple = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4))
    c_shape, a_shape, b_shape = triple.input_shapes
    rng = np.random.default_rng(draw(seeds))
    return Case((_values(rng, a_shape, "any"), _values(rng, b_shape, "any")),
                dict(condition=rng.random(c_shape) < 0.5))


def _masked_fill_options(draw, shape):
    rng = np.random.default_rng(draw(seeds))
    mask_shape = tuple(n if draw(st.booleans()) else 1 for n in shape)[draw(st.integers(0, len(shape))):]
    # (a fill of -1e9 would swamp gradcheck's finite differences of sum(out * r))
    return dict(mask=rng.random(mask_shape) < 0.5, value=draw(st.sampled_from([0.0, -1e4, 2.5])))


def _pad_options(draw, shape):
    pairs = draw(st.integers(0, len(shape)))
    return dict(pad=tuple(draw(st.integers(0, 2)) for _ in range(2 * pairs)),
                value=draw(st.sampled_from([0.0, -1.5])))


def _pad_ref(a, pad, value):
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    out = np.full([n + lo + hi for n, (lo, hi) in zip(a.shape, widths)], value)
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, widths))] = a
    return out


def _expand_options(draw, shape):
    target = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
    target = [draw(st.integers(1, 2))] * draw(st.integers(0, 1)) + target
    keep = [i for i, n in enumerate(target) if i >= len(target) - len(shape) and draw(st.booleans())]
    return dict(shape=tuple(-1 if i in keep else n for i, n in enumerate(target)))


def _expand_ref(a, shape):
    lead = len(shape) - a.ndim
    full = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    return np.broadcast_to(a, full)


def _squeeze_options(draw, shape):
    if not shape or draw(st.booleans()):
        return dict(dim=None)
    return dict(dim=draw(st.integers(-len(shape), len(shape) - 1)))


def _squeeze_ref(a, dim):
    if dim is None:
        return np.squeeze(a)
    return np.squeeze(a, axis=dim) if a.shape[dim] == 1 else a


def _var_ref(a, dim, keepdim, unbiased):
    axes = _axes(dim, a.ndim)
    n = int(np.prod([a.shape[d] for d in axes]))
    mean = a.sum(axis=axes, keepdims=True) / n
    return ((a - mean) ** 2).sum(axis=axes, keepdims=keepdim) / (n - unbiased)


def _logsumexp_ref(a, dim, keepdim):
    axes = _axes(dim, a.ndim)
    return np.log(np.exp(a).sum(axis=axes, keepdims=keepdim))      # inputs are small: no overflow


def _gelu_ref(a):
    return a * 0.5 * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))


def _erf_free_gelu_tanh_ref(a):
    return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))


def _compare_rows():
    rows = []
    for name, fn, ref in [("eq", ops.eq, np.equal), ("ne", ops.ne, np.not_equal), ("lt", ops.lt, np.less),
                          ("le", ops.le, np.less_equal), ("gt", ops.gt, np.greater),
                          ("ge", ops.ge, np.greater_equal)]:
        rows.append(Op(name, fn, ref, binary("integers", "integers"), differentiable=False))
    return rows


ROWS = [
    # arithmetic
    Op("add", lambda a, b: a + b, np.add, binary()),
    Op("sub", lambda a, b: a - b, np.subtract, binary()),
    Op("mul", lambda a, b: a * b, np.multiply, binary()),
    Op("div", lambda a, b: a / b, np.divide, binary("any", "nonzero")),
    Op("neg", lambda a: -a, np.negative, unary()),
    Op("pow_tensor", lambda a, b: a ** b, lambda a, b: np.exp(b * np.log(a)), binary("positive", "any")),
    Op("pow_scalar", lambda a, p: a ** p, lambda a, p: np.exp(p * np.log(a)),
       unary("positive", options=lambda d, s: dict(p=d(st.sampled_from([2, 3, 0.5, -1.5, 1 / 3]))))),
    Op("pow_int_negative_base", lambda a, p: a ** p, lambda a, p: np.prod([a] * p, axis=0),
       unary("nonzero", options=lambda d, s: dict(p=d(st.sampled_from([1, 2, 3]))))),
    Op("matmul", lambda a, b: a @ b, matmul_ref, matmul_case()),
    # elementwise
    Op("exp", ops.exp, lambda a: np.e ** a, unary()),
    Op("log", ops.log, np.log, unary("positive")),
    Op("sqrt", ops.sqrt, lambda a: a ** 0.5, unary("positive")),
    Op("abs", abs, lambda a: np.where(a < 0, -a, a), unary("nonzero")),
    Op("clamp", lambda a, lo, hi: a.clamp(lo, hi),
       lambda a, lo, hi: np.minimum(np.maximum(a, -np.inf if lo is None else lo), np.inf if hi is None else hi),
       unary("avoid_half", options=lambda d, s: d(st.sampled_from(
           [dict(lo=-0.5, hi=0.5), dict(lo=None, hi=0.5), dict(lo=-0.5, hi=None)])))),
    Op("maximum", mdl.maximum, lambda a, b: np.where(a > b, a, b), binary("integers", "halves")),
    Op("minimum", mdl.minimum, lambda a, b: np.where(a < b, a, b), binary("integers", "halves")),
    Op("cast_float64", lambda a: a.double(), lambda a: a.astype(np.float64), unary(), out_dtype=np.float64),
    # activations
    Op("relu", F.relu, lambda a: a * (a > 0), unary("nonzero")),
    Op("leaky_relu", lambda a, slope: F.leaky_relu(a, slope), lambda a, slope: np.where(a > 0, a, slope * a),
       unary("nonzero", options=lambda d, s: dict(slope=d(st.sampled_from([0.01, 0.2]))))),
    Op("gelu", F.gelu, _gelu_ref, unary("wide")),
    Op("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), _erf_free_gelu_tanh_ref, unary("wide")),
    Op("sigmoid", F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), unary("wide")),
    Op("tanh", F.tanh, lambda a: (np.exp(2 * a) - 1) / (np.exp(2 * a) + 1), unary("any")),
    # reductions
    Op("sum", lambda a, dim, keepdim: a.sum(dim, keepdim),
       lambda a, dim, keepdim: np.add.reduce(a, axis=_axes(dim, a.ndim), keepdims=keepdim),
       unary(options=reduce_options)),
    Op("mean", lambda a, dim, keepdim: a.mean(dim, keepdim),
       lambda a, dim, keepdim: np.average(a, axis=_axes(dim, a.ndim)) if not keepdim else
       np.expand_dims(np.average(a, axis=_axes(dim, a.ndim)), _axes(dim, a.ndim)),
       unary(options=reduce_options)),
    Op("var", lambda a, dim, keepdim, unbiased: a.var(dim, unbiased, keepdim), _var_ref,
       unary(shape_strategy=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4),
             options=lambda d, s: dict(reduce_options(d, s), unbiased=d(st.booleans())))),
    Op("max", lambda a, dim, keepdim: a.max(dim, keepdim),
       lambda a, dim, keepdim: np.maximum.reduce(a, axis=_axes(dim, a.ndim), keepdims=keepdim),
       unary("distinct", options=reduce_options)),
    Op("min", lambda a, dim, keepdim: a.min(dim, keepdim),
       lambda a, dim, keepdim: np.minimum.reduce(a, axis=_axes(dim, a.ndim), keepdims=keepdim),
       unary("distinct", options=reduce_options)),
    Op("logsumexp", lambda a, dim, keepdim: a.logsumexp(dim, keepdim), _logsumexp_ref,
       unary("wide", options=reduce_options)),
    # shape
    Op("reshape_reversed", lambda a: a.reshape(*a.shape[::-1]), lambda a: a.ravel().reshape(a.shape[::-1]),
       unary()),
    Op("view_minus_one", lambda a: a.view((-1,)), np.ravel, unary()),
    Op("transpose", lambda a, d0, d1: a.transpose(d0, d1), lambda a, d0, d1: np.swapaxes(a, d0, d1),
       unary(shape_strategy=nonempty_shapes,
             options=lambda d, s: dict(d0=d(st.integers(-len(s), len(s) - 1)),
                                       d1=d(st.integers(-len(s), len(s) - 1))))),
    Op("permute", lambda a, dims: a.permute(*dims), lambda a, dims: np.transpose(a, dims),
       unary(options=lambda d, s: dict(dims=tuple(d(st.permutations(range(len(s)))))))),
    Op("flatten", lambda a, start, end: a.flatten(start, end),
       lambda a, start, end: a.reshape(a.shape[:start % a.ndim] + (-1,) + a.shape[end % a.ndim + 1:]),
       unary(shape_strategy=nonempty_shapes,
             options=lambda d, s: (lambda i, j: dict(start=min(i, j), end=max(i, j) - len(s)))(
                 d(st.integers(0, len(s) - 1)), d(st.integers(0, len(s) - 1))))),
    Op("squeeze", lambda a, dim: a.squeeze(dim), _squeeze_ref,
       unary(shape_strategy=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=2),
             options=_squeeze_options)),
    Op("unsqueeze", lambda a, dim: a.unsqueeze(dim), lambda a, dim: np.expand_dims(a, dim),
       unary(options=lambda d, s: dict(dim=d(st.integers(-len(s) - 1, len(s)))))),
    Op("expand", lambda a, shape: a.expand(*shape), _expand_ref,
       unary(shape_strategy=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=2),
             options=_expand_options)),
    # indexing
    Op("getitem_basic", lambda a, index: a[index], lambda a, index: a[index],
       unary(shape_strategy=nonempty_shapes, options=_index_options)),
    Op("getitem_int_array", lambda a, index: a[mdl.tensor(index[0]), ...],
       lambda a, index: np.stack([a[i] for i in index[0]]),
       unary(shape_strategy=nonempty_shapes, options=_array_index_options)),
    Op("getitem_bool_mask", lambda a, index: a[mdl.tensor(index)],
       lambda a, index: np.array([a[i] for i in np.ndindex(index.shape) if index[i]]).reshape(
           (-1,) + a.shape[index.ndim:]),
       unary(shape_strategy=nonempty_shapes, options=_mask_index_options)),
    # join
    Op("cat", lambda *xs, dim: mdl.cat(list(xs), dim=dim), lambda *xs, dim: np.concatenate(xs, axis=dim),
       join_case(same_shape=False)),
    Op("stack", lambda *xs, dim: mdl.stack(list(xs), dim=dim), lambda *xs, dim: np.stack(xs, axis=dim),
       join_case(same_shape=True)),
    Op("split_then_cat_reversed", lambda a, sizes, dim: mdl.cat(a.split(sizes, dim)[::-1], dim=dim), _split_ref,
       unary(shape_strategy=nonempty_shapes, options=_split_options)),
    Op("pad", lambda a, pad, value: F.pad(a, pad, value=value), _pad_ref, unary(options=_pad_options)),
    # selection
    Op("where", lambda a, b, condition: mdl.where(condition, a, b),
       lambda a, b, condition: condition * a + ~condition * b,
       where_case()),
    Op("masked_fill", lambda a, mask, value: a.masked_fill(mdl.tensor(mask), value),
       lambda a, mask, value: ~mask * a + mask * value, unary(options=_masked_fill_options)),
] + _compare_rows()

BY_NAME = {op.name: op for op in ROWS}
assert len(BY_NAME) == len(ROWS), "op names must be unique"
