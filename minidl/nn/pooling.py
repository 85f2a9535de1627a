"""Pooling layers: `MaxPool2d` and `AvgPool2d`, windows sliding over (H, W).

They hold no parameters, only the window settings, and call `F.max_pool2d` /
`F.avg_pool2d`. As in PyTorch, stride defaults to the kernel size (windows
that tile the image without overlap), and AvgPool2d counts padded zeros in
its average (count_include_pad=True).
"""
from .. import functional as F
from .module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _check_input(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected input of shape (N, C, H, W) or "
                             f"(C, H, W), got shape {tuple(x.shape)}")

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """MaxPool2d(kernel_size, stride=None, padding=0): the largest value of each
    window; (N, C, H, W) -> (N, C, H', W'), H' = (H + 2 * padding - kH) // stride + 1."""

    def forward(self, x):                                           # (N, C, H, W)
        self._check_input(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)   # (N, C, H', W')


class AvgPool2d(_Pool2d):
    """AvgPool2d(kernel_size, stride=None, padding=0): the mean of each window
    (padded zeros included); output size as MaxPool2d."""

    def forward(self, x):                                           # (N, C, H, W)
        self._check_input(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)   # (N, C, H', W')
