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
from .losses import cross_entropy, binary_cross_entropy_with_logits, mse_loss  # noqa: F401
# core ops: arithmetic, elementwise, activations, reductions, shape,
# indexing, join, pad, selection, comparison
from .arithmetic import pow, matmul  # noqa: F401,E402
from .elementwise import exp, log, sqrt, abs, clamp, clip, maximum, minimum, cast  # noqa: F401,E402
from .activations import relu, leaky_relu, gelu, sigmoid, tanh  # noqa: F401,E402
from .reductions import sum, mean, var, max, min, amax, amin, logsumexp  # noqa: F401,E402
from .shape import reshape, view, transpose, permute, flatten, squeeze, unsqueeze, expand  # noqa: F401,E402
from .indexing import getitem  # noqa: F401,E402
from .join import cat, concatenate, stack, split, chunk  # noqa: F401,E402
from .pad import pad  # noqa: F401,E402
from .selection import where, masked_fill  # noqa: F401,E402
from .comparison import eq, ne, lt, le, gt, ge  # noqa: F401,E402
# convolution: conv2d and its adjoint conv_transpose2d
from .conv import conv2d, conv_transpose2d  # noqa: F401,E402
# attention
from .attention import scaled_dot_product_attention, attention_weights  # noqa: F401,E402
# pooling and softmax
from .pooling import max_pool2d, avg_pool2d  # noqa: F401,E402
from .softmax import softmax, log_softmax  # noqa: F401,E402
from .interpolate import interpolate  # noqa: F401,E402
