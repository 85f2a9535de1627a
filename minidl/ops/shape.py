"""Shape ops: reshape/view, transpose, permute, flatten, squeeze, unsqueeze, expand.

None of them changes a value; each only moves values to new positions. So each
backward applies the inverse move to the gradient (reshape back, transpose
back, sum over what expand repeated).
"""
import numpy as np

from ..autograd.function import Function
from .broadcast import sum_to
from .dims import normalize_dim


def _shape_args(op_name, shape):
    """Accept f(2, 3) and f((2, 3)) alike; return a tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"{op_name}: sizes must be ints, got {shape}")
    return tuple(int(n) for n in shape)


class Reshape(Function):
    """out = a with a new shape (same elements, row-major order);  dL/da = g reshaped back"""

    def forward(self, a, shape):
        self.input_shape = a.shape
        return a.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.input_shape)


class Permute(Function):
    """out = a with its axes reordered: out axis i is a's axis dims[i];
    dL/da = g with the inverse order (argsort of dims)"""

    def forward(self, a, dims):
        self.dims = dims
        return np.transpose(a, dims)

    def backward(self, grad):
        return np.transpose(grad, np.argsort(self.dims))


class Expand(Function):
    """out = a repeated along its size-1 axes (and new leading axes) to `shape`,
    a read-only view;  dL/da = g summed over the repeated axes (sum_to)"""

    def forward(self, a, shape):
        self.input_shape = a.shape
        return np.broadcast_to(a, shape)

    def backward(self, grad):
        return sum_to(grad, self.input_shape)


def _resolve_shape(op_name, input_shape, shape):
    """Fill in one -1 and check the element count."""
    size = int(np.prod(input_shape))
    if shape.count(-1) > 1:
        raise ValueError(f"{op_name}: only one dimension can be -1, got {shape}")
    if any(n < -1 for n in shape):
        raise ValueError(f"{op_name}: invalid size in {shape}")
    if -1 in shape:
        known = int(np.prod([n for n in shape if n != -1]))
        if known == 0 or size % known:
            raise ValueError(f"{op_name}: cannot reshape a tensor of shape {input_shape} "
                             f"({size} elements) into {shape}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if int(np.prod(shape)) != size:
        raise ValueError(f"{op_name}: cannot reshape a tensor of shape {input_shape} "
                         f"({size} elements) into {shape}")
    return shape


def reshape(input, *shape):
    """`input` with a new shape; one size may be -1 (inferred). `view` is the same."""
    shape = _resolve_shape("reshape", input.shape, _shape_args("reshape", shape))
    if shape == input.shape:
        return input
    return Reshape.apply(input, shape=shape)


view = reshape


def permute(input, *dims):
    dims = _shape_args("permute", dims)
    if len(dims) != input.ndim:
        raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor of shape {input.shape}")
    dims = tuple(normalize_dim("permute", d, input.ndim, input.shape) for d in dims)
    if sorted(dims) != list(range(input.ndim)):
        raise ValueError(f"permute: {dims} is not a reordering of the {input.ndim} dims of {input.shape}")
    return Permute.apply(input, dims=dims)


def transpose(input, dim0, dim1):
    """Swap two axes."""
    dims = list(range(input.ndim))
    d0 = normalize_dim("transpose", dim0, input.ndim, input.shape)
    d1 = normalize_dim("transpose", dim1, input.ndim, input.shape)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(input, dims=tuple(dims))


def flatten(input, start_dim=0, end_dim=-1):
    """Merge the axes start_dim..end_dim (inclusive) into one."""
    if input.ndim == 0:
        return reshape(input, 1)
    start = normalize_dim("flatten", start_dim, input.ndim, input.shape)
    end = normalize_dim("flatten", end_dim, input.ndim, input.shape)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"for a tensor of shape {input.shape}")
    shape = input.shape
    merged = int(np.prod(shape[start:end + 1]))
    return reshape(input, shape[:start] + (merged,) + shape[end + 1:])


def squeeze(input, dim=None):
    """Drop size-1 axes: all of them, or only `dim` (an int or a tuple) where its size is 1."""
    if dim is None:
        dims = [d for d, n in enumerate(input.shape) if n == 1]
    else:
        listed = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = [normalize_dim("squeeze", d, input.ndim, input.shape) for d in listed]
    shape = tuple(n for d, n in enumerate(input.shape) if not (d in dims and n == 1))
    return reshape(input, shape)


def unsqueeze(input, dim):
    """Insert a size-1 axis at position `dim` (in [-ndim-1, ndim])."""
    d = normalize_dim("unsqueeze", dim, input.ndim, input.shape, extra=1)
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


def expand(input, *shape):
    """Repeat size-1 axes to `shape` without copying; -1 keeps an axis's size and
    new axes may be added in front."""
    shape = _shape_args("expand", shape)
    lead = len(shape) - input.ndim
    if lead < 0:
        raise ValueError(f"expand: the target {shape} has fewer dims than the tensor's shape {input.shape}")
    resolved = []
    for i, n in enumerate(shape):
        old = input.shape[i - lead] if i >= lead else None
        if n == -1:
            if old is None:
                raise ValueError(f"expand: -1 is not allowed for the new leading dim {i} in {shape}")
            n = old
        if old is not None and old != 1 and old != n:
            raise ValueError(f"expand: cannot expand a tensor of shape {input.shape} to {shape}: "
                             f"dim {i} has size {old}, which is not 1")
        resolved.append(n)
    resolved = tuple(resolved)
    if resolved == input.shape:
        return input
    return Expand.apply(input, shape=resolved)
