"""The autograd floor: Tensor, Function, the backward engine and grad modes."""
from .tensor import Tensor, tensor, as_tensor  # noqa: F401
from .function import Function  # noqa: F401
from .grad_mode import (  # noqa: F401
    no_grad, enable_grad, set_grad_enabled, is_grad_enabled, detect_anomaly,
)
