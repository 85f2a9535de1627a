"""`Flatten`: merge dimensions start_dim..end_dim into one, e.g. (N, C, H, W) -> (N, C*H*W)."""
from .module import Module


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        shape = x.shape
        start = self.start_dim + len(shape) if self.start_dim < 0 else self.start_dim
        end = self.end_dim + len(shape) if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < max(len(shape), 1):
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} "
                             f"do not select a range of dimensions of a tensor of shape {shape}")
        merged = 1
        for size in shape[start:end + 1]:
            merged *= size
        return x.reshape(*shape[:start], merged, *shape[end + 1:])   # (..., prod, ...)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
