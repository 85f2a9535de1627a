"""`Linear`: y = x W^T + b, the fully connected layer."""
import math

import numpy as np

from .. import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """Linear(in_features, out_features, bias=True): (..., in) -> (..., out).

    weight (out_features, in_features) and bias (out_features,) start as PyTorch's
    do: U(-1/sqrt(in_features), 1/sqrt(in_features)), which is what
    kaiming_uniform_(a=sqrt(5)) gives.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: in_features and out_features must be positive, "
                             f"got {in_features} and {out_features}")
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))  # (out, in)
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))               # (out,)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)            # (..., out)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
