"""Batch normalisation layers: `BatchNorm1d` (N, C) / (N, C, L) and
`BatchNorm2d` (N, C, H, W).

In training, each channel is normalised with the mean and variance of the
current batch, and two buffers follow those statistics with an exponential
moving average (PyTorch's momentum convention: the NEW value gets weight
`momentum`):

    running_mean = (1 - momentum) * running_mean + momentum * batch_mean
    running_var  = (1 - momentum) * running_var  + momentum * batch_var_unbiased

In evaluation (`model.eval()`), the running statistics are used instead, so
one image's prediction does not depend on what else is in its batch. With
momentum=None the average is cumulative (each batch weighs 1 / batches seen).
The buffers and `num_batches_tracked` are in `state_dict()`, not in `parameters()`.
"""
import numpy as np

from .. import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d; they differ only in the input dims."""

    input_dims = ()          # allowed x.ndim values
    input_text = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        layer = type(self).__name__
        if num_features < 1:
            raise ValueError(f"{layer}: num_features must be positive, got {num_features}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{layer}: momentum must be in [0, 1] or None, got {momentum}")
        self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if self.affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))     # (C,) scale
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))      # (C,) shift
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x):
        if x.ndim not in self.input_dims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected input of shape {self.input_text} "
                             f"with C={self.num_features}, got shape {tuple(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1                # in place: the buffer counts
            if self.momentum is None:                         # cumulative moving average
                momentum = 1.0 / int(self.num_batches_tracked.data)
        use_batch_stats = self.training or not self.track_running_stats
        # running stats are passed when they are updated (training) or used (eval)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if keep else None,
                            self.running_var if keep else None, self.weight, self.bias,
                            training=use_batch_stats, momentum=momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """BatchNorm1d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True): per-feature normalisation of (N, C) or (N, C, L)."""

    input_dims = (2, 3)
    input_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True): per-channel normalisation of (N, C, H, W)."""

    input_dims = (4,)
    input_text = "(N, C, H, W)"
