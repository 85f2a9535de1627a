"""`Upsample`: resize feature maps inside a network (a layer around F.interpolate).

    up = nn.Upsample(scale_factor=2, mode="bilinear")     # (N, C, H, W) -> (N, C, 2H, 2W)

No parameters: the decoder of a U-Net uses it to bring coarse feature maps
back to the size of the skip connection they are joined with.
"""
from .. import functional as F
from .module import Module


class Upsample(Module):
    """Upsample(size=None, scale_factor=None, mode="nearest", align_corners=None):
    F.interpolate with these settings (PyTorch's defaults and semantics)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x):                                            # (N, C, H, W)
        return F.interpolate(x, size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                             align_corners=self.align_corners)       # (N, C, H', W')

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
