"""minidl.functional: the differentiable ops under PyTorch's names.

    import minidl.functional as F
    y = F.relu(F.conv2d(x, weight, bias, padding=1))

Everything here is implemented in `minidl.ops` (one file per op family); this
module only gathers the public names in one place.
"""
# arithmetic and elementwise math
from .ops.arithmetic import add, sub, mul, div, neg  # noqa: F401
# normalisation and embedding (H8)
from .ops.normalization import batch_norm, layer_norm  # noqa: F401
from .ops.embedding import embedding  # noqa: F401
# linear, dropout and losses (H2)
from .ops.linear import linear  # noqa: F401
from .ops.dropout import dropout  # noqa: F401
