"""minidl.nn: Modules (layers with parameters) in PyTorch's shape.

    from minidl import nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
"""
from . import init  # noqa: F401
from .parameter import Parameter  # noqa: F401
from .module import Module  # noqa: F401
from .container import Sequential, ModuleList, ModuleDict  # noqa: F401
from .linear import Linear  # noqa: F401
from .activation import ReLU, LeakyReLU, GELU, Tanh, Sigmoid  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .flatten import Flatten  # noqa: F401
# convolution, pooling, normalisation, embedding
from .conv import Conv2d, ConvTranspose2d  # noqa: F401
from .pooling import MaxPool2d, AvgPool2d  # noqa: F401
from .batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
from .normalization import LayerNorm  # noqa: F401
from .embedding import Embedding  # noqa: F401
from .identity import Identity  # noqa: F401
from .upsample import Upsample  # noqa: F401
# attention and Transformer layers
from .multihead_attention import MultiheadAttention  # noqa: F401
from .transformer import TransformerEncoderLayer, TransformerEncoder  # noqa: F401
from .positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding  # noqa: F401
from . import utils  # noqa: F401,E402  (nn.utils.clip_grad_norm_, clip_grad_value_)
