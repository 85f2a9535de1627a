"""`Function`: one differentiable op, as a forward/backward pair over ndarrays.

Writing an op means subclassing `Function` and filling in two methods:

    class Mul(Function):
        def forward(self, a, b):                 # ndarrays in, one ndarray out
            self.save_for_backward(a, b)
            return a * b

        def backward(self, grad_output):         # dL/dout -> (dL/da, dL/db)
            a, b = self.saved_tensors
            return grad_output * b, grad_output * a

and calling it as `Mul.apply(x, y)` on Tensors. `apply` unwraps the tensors,
runs `forward` on plain arrays, wraps the result, and (when gradients are
wanted) remembers the op as the result's `grad_fn` so that `backward()` can
later call `backward` with the gradient of the output. That is the whole chain
rule: each op only knows how to turn dL/d(output) into dL/d(inputs).

Conventions:
- `forward` receives ndarrays for the Tensor arguments, and any other argument
  (ints, tuples, flags) unchanged. Non-tensor arguments are passed by keyword.
- `backward` returns one gradient per Tensor argument, in order, each with that
  input's shape (`sum_to` undoes broadcasting), or None where no gradient flows.
- Arrays needed by backward go through `save_for_backward`, so that the engine
  can free them after backward (unless `retain_graph=True`). Small values
  (shapes, axes) are kept as plain attributes.
- Neither method may modify its input arrays in place.
"""
import numpy as np

from . import grad_mode
from .grad_mode import check_finite  # noqa: F401  (re-exported: anomaly checks)
from .tensor import Tensor  # tensor.py is always imported first (see autograd/__init__)


class Function:
    """Base class of every differentiable op. An instance is one node of the graph."""

    # Per-node state. Class-level defaults (not set in __init__) keep creating a
    # node cheap; `apply` and `save_for_backward` set instance values as needed.
    inputs = ()                    # the Tensor arguments, in order
    needs_input_grad = ()          # one bool per input: does it require grad?
    saved_tensors = ()             # arrays kept for backward
    freed = False                  # True once backward ran without retain_graph
    output_retains_grad = None     # the output Tensor, if it asked retain_grad()

    @property
    def name(self):
        return type(self).__name__

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays

    def release(self):
        """Drop what was saved for backward (called by the engine)."""
        self.saved_tensors = ()
        self.freed = True

    def forward(self, *arrays, **options):
        raise NotImplementedError(f"{self.name} must define forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{self.name} has no backward: it is not differentiable")

    @classmethod
    def apply(cls, *args, **options):
        """Run the op on Tensors (or things convertible to them); return a Tensor.

        The output joins the graph only if grad mode is on, some input requires
        grad and the output is floating point (comparisons, argmax and casts to
        integers give tensors without gradient, as in PyTorch)."""
        function = cls()
        tensors = [a if isinstance(a, Tensor) else Tensor(a) for a in args]
        output = function.forward(*[t.data for t in tensors], **options)
        if type(output) is not np.ndarray:
            output = np.asarray(output)
        if grad_mode._anomaly_enabled:
            check_finite(function.name, "forward", output)

        if grad_mode._grad_enabled and output.dtype.kind == "f":
            needs = tuple([t.requires_grad for t in tensors])
            if True in needs:
                function.inputs = tensors
                function.needs_input_grad = needs
                return Tensor._from_op(output, function)
        return Tensor._from_array(output)
