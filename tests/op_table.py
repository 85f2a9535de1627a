"""The op table: one row per differentiable op (MyGrad-style), read by
tests/test_ops_properties.py. Adding an op means adding one row here.

A row names the op, calls it the minidl way, gives an independent NumPy
reference (float64), and a hypothesis strategy (tests/op_strategies.py) that
draws a `Case`: the float input arrays (what gradients flow to) and keyword
options (dims, masks, index arrays, ...). Input values are drawn away from
kinks and poles (relu/abs at 0, ties of max/min/maximum, log/sqrt/div near 0)
so finite differences are valid.
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

from op_strategies import (
    array_index_options, binary, expand_options, index_options, join_case, mask_index_options,
    masked_fill_options, masked_fill_value_case, matmul_case, nonempty_shapes, pad_options,
    reduce_options, split_options, squeeze_options, unary, where_case,
)


@dataclasses.dataclass
class Op:
    name: str
    fn: Callable                  # (*tensors, **kwargs) -> Tensor
    ref: Callable                 # (*arrays, **kwargs) -> ndarray, in float64
    cases: st.SearchStrategy      # draws a Case
    differentiable: bool = True
    atol32: float = 1e-5          # float32 forward tolerance (relative to the reference's scale)
    out_dtype: object = None      # None: the output keeps the input's float dtype


def _axes(dim, ndim):
    if dim is None or dim == ():                  # an empty tuple reduces every dim, as in PyTorch
        return tuple(range(ndim))
    return tuple(d % ndim for d in (dim if isinstance(dim, tuple) else (dim,)))


def matmul_ref(a, b):
    """matmul written as einsum, with NumPy's rules for 1-D operands."""
    if a.ndim == 1 and b.ndim == 1:
        return np.einsum("i,i->", a, b)
    if a.ndim == 1:
        return np.einsum("i,...ik->...k", a, b)
    if b.ndim == 1:
        return np.einsum("...ij,j->...i", a, b)
    return np.einsum("...ij,...jk->...ik", a, b)


def _split_ref(a, sizes, dim):
    pieces = np.split(a, np.cumsum(sizes)[:-1], axis=dim)
    return np.concatenate(pieces[::-1], axis=dim)


def _pad_ref(a, pad, value):
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    out = np.full([n + lo + hi for n, (lo, hi) in zip(a.shape, widths)], value)
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, widths))] = a
    return out


def _expand_ref(a, shape):
    lead = len(shape) - a.ndim
    full = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    return np.broadcast_to(a, full)


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
             options=squeeze_options)),
    Op("unsqueeze", lambda a, dim: a.unsqueeze(dim), lambda a, dim: np.expand_dims(a, dim),
       unary(options=lambda d, s: dict(dim=d(st.integers(-len(s) - 1, len(s)))))),
    Op("expand", lambda a, shape: a.expand(*shape), _expand_ref,
       unary(shape_strategy=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=2),
             options=expand_options)),
    # indexing
    Op("getitem_basic", lambda a, index: a[index], lambda a, index: a[index],
       unary(shape_strategy=nonempty_shapes, options=index_options)),
    Op("getitem_int_array", lambda a, index: a[mdl.tensor(index[0]), ...],
       lambda a, index: np.stack([a[i] for i in index[0]]),
       unary(shape_strategy=nonempty_shapes, options=array_index_options)),
    Op("getitem_bool_mask", lambda a, index: a[mdl.tensor(index)],
       lambda a, index: np.array([a[i] for i in np.ndindex(index.shape) if index[i]]).reshape(
           (-1,) + a.shape[index.ndim:]),
       unary(shape_strategy=nonempty_shapes, options=mask_index_options)),
    # join
    Op("cat", lambda *xs, dim: mdl.cat(list(xs), dim=dim), lambda *xs, dim: np.concatenate(xs, axis=dim),
       join_case(same_shape=False)),
    Op("stack", lambda *xs, dim: mdl.stack(list(xs), dim=dim), lambda *xs, dim: np.stack(xs, axis=dim),
       join_case(same_shape=True)),
    Op("split_then_cat_reversed", lambda a, sizes, dim: mdl.cat(a.split(sizes, dim)[::-1], dim=dim), _split_ref,
       unary(shape_strategy=nonempty_shapes, options=split_options)),
    Op("pad", lambda a, pad, value: F.pad(a, pad, value=value), _pad_ref, unary(options=pad_options)),
    # selection
    Op("where", lambda a, b, condition: mdl.where(condition, a, b),
       lambda a, b, condition: condition * a + ~condition * b,
       where_case()),
    Op("masked_fill", lambda a, mask, value: a.masked_fill(mdl.tensor(mask), value),
       lambda a, mask, value: ~mask * a + mask * value, unary(options=masked_fill_options)),
    Op("masked_fill_tensor_value", lambda a, value, mask: a.masked_fill(mdl.tensor(mask), value),
       lambda a, value, mask: ~mask * a + mask * value, masked_fill_value_case()),
] + _compare_rows()

BY_NAME = {op.name: op for op in ROWS}
assert len(BY_NAME) == len(ROWS), "op names must be unique"
