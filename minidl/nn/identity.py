"""`Identity`: a layer that returns its input unchanged.

Useful as a placeholder: a model can switch a block off (`self.norm =
nn.Identity()` instead of `nn.BatchNorm2d(c)`) without changing its forward.
"""
from .module import Module


class Identity(Module):
    """Identity(*args, **kwargs): forward(x) returns x; the arguments are ignored."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
