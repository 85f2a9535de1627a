"""minidl.functional: the differentiable ops under PyTorch's names.

    import minidl.functional as F
    y = F.relu(F.conv2d(x, weight, bias, padding=1))

Everything here is implemented in `minidl.ops` (one file per op family); this
module only gathers the public names in one place.
"""
# arithmetic and elementwise math
from .ops.arithmetic import add, sub, mul, div, neg  # noqa: F401
# normalisation and embedding
from .ops.normalization import batch_norm, layer_norm  # noqa: F401
from .ops.embedding import embedding  # noqa: F401
# linear, dropout and losses
from .ops.linear import linear  # noqa: F401
from .ops.dropout import dropout  # noqa: F401
from .ops.losses import cross_entropy, binary_cross_entropy_with_logits, mse_loss  # noqa: F401
# core ops: activations, elementwise math, reductions, shapes, joins, padding, selection
from .ops.arithmetic import pow, matmul  # noqa: F401,E402
from .ops.elementwise import exp, log, sqrt, abs, clamp, clip, maximum, minimum  # noqa: F401,E402
from .ops.activations import relu, leaky_relu, gelu, sigmoid, tanh  # noqa: F401,E402
from .ops.reductions import sum, mean, var, amax, amin, logsumexp  # noqa: F401,E402
from .ops.shape import reshape, transpose, permute, flatten, squeeze, unsqueeze  # noqa: F401,E402
from .ops.join import cat, stack, split, chunk  # noqa: F401,E402
from .ops.pad import pad  # noqa: F401,E402
from .ops.selection import where, masked_fill  # noqa: F401,E402
# convolution: conv2d and its adjoint conv_transpose2d
from .ops.conv import conv2d, conv_transpose2d  # noqa: F401,E402
# attention: fused scaled dot-product attention, and its weights for plots
from .ops.attention import scaled_dot_product_attention, attention_weights  # noqa: F401,E402
# pooling and softmax: max/avg pooling, softmax and log_softmax along any dim
from .ops.pooling import max_pool2d, avg_pool2d  # noqa: F401,E402
from .ops.softmax import softmax, log_softmax  # noqa: F401,E402
# resizing: nearest and (bi)linear interpolation
from .ops.interpolate import interpolate  # noqa: F401,E402
