"""`Dropout`: randomly zero elements while training (see minidl/ops/dropout.py)."""
from .. import functional as F
from .module import Module


class Dropout(Module):
    """Dropout(p=0.5): in training, zero each element with probability p and scale the
    rest by 1/(1-p); in eval mode, pass the input through unchanged."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
