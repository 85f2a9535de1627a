"""Turn the `dim` arguments users pass (negative, None, a tuple) into checked
axis numbers, with errors that name the op and the tensor's shape."""


def normalize_dim(op_name, dim, ndim, shape=None, extra=0):
    """One axis in [0, ndim + extra): negative counts from the end, like Python.
    `extra=1` is for ops that may insert a new axis at the end (unsqueeze, stack)."""
    size = ndim + extra
    if isinstance(dim, bool) or not isinstance(dim, (int,)) and not hasattr(dim, "__index__"):
        raise TypeError(f"{op_name}: dim must be an int, got {type(dim).__name__}")
    dim = int(dim)
    if not -size <= dim < size:
        where = f" of shape {tuple(shape)}" if shape is not None else ""
        raise ValueError(
            f"{op_name}: dim {dim} is out of range for a tensor{where} with {ndim} dims "
            f"(expected a dim in [{-size}, {size - 1}])"
        )
    return dim + size if dim < 0 else dim


def normalize_dims(op_name, dim, ndim, shape=None):
    """A sorted tuple of distinct axes; `dim=None` means every axis, and so does
    an empty `dim=()` or `[]` (PyTorch's rule; NumPy's axis=() reduces none)."""
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if dim is None or len(dims) == 0:
        return tuple(range(ndim))
    if ndim == 0:                                 # a 0-d tensor takes dim 0 or -1, as in PyTorch
        for d in dims:
            normalize_dim(op_name, d, 0, shape, extra=1)    # an int in [-1, 0]
        if len(dims) > 1:
            raise ValueError(f"{op_name}: dim {dim} names the same axis twice")
        return ()                                 # and there is no axis to reduce
    axes = tuple(sorted(normalize_dim(op_name, d, ndim, shape) for d in dims))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op_name}: dim {dim} names the same axis twice")
    return axes
