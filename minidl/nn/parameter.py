"""`Parameter`: a Tensor that a Module learns.

    self.weight = nn.Parameter(np.zeros((3, 4), dtype=np.float32))

It is an ordinary leaf Tensor with `requires_grad=True`. The only thing the
subclass adds is its type: assigning a Parameter to an attribute of a Module
registers it, so that `module.parameters()` finds it and an optimizer can update
it. A plain Tensor assigned to a Module is just an attribute.
"""
from ..autograd.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor registered by Modules; a copy of `data`, requiring grad by default."""

    def __init__(self, data, requires_grad=True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
