"""Differentiable ops on Tensors, one family per file. Each op is a `Function`
(forward/backward over ndarrays) plus a small function that applies it.

`minidl.functional` re-exports the public ones under PyTorch's names; the
Tensor methods and operators call them from here.
"""
from .arithmetic import add, sub, mul, div, neg  # noqa: F401
from .normalization import batch_norm, layer_norm  # noqa: F401
from .embedding import embedding  # noqa: F401
from .linear import linear  # noqa: F401
from .dropout import dropout  # noqa: F401
