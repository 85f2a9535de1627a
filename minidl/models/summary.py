"""`summary(model, input_shape)`: a Keras-like table of a model's layers.

    >>> summary(build_model("cnn", (1, 28, 28), 10), (1, 28, 28))
    Layer (type)               Output shape          Params   Mult-adds
    conv1 (Conv2d)             (N, 32, 26, 26)          320     194,688
    ...

How it works: it runs one forward pass on a batch of zeros (eval mode, no
graph) and watches the layers as they run. Module has no hook mechanism, so
summary installs one for the duration of the pass: every leaf module (one
with no sub-modules) gets an instance attribute `forward` that calls the
class's forward and records the output. Instance attributes win over class
attributes, so `module(x)` -> `self.forward(x)` finds the wrapper; afterwards
the attribute is deleted and the class's forward shows through again.

Rows appear in the order the layers ran, which is the order data flows
through the model. Counts are per sample (one image), like Keras:
- parameters: the layer's own parameters (a layer called twice counts once);
  a container's own parameters (e.g. a class token) get a row of their own,
  so the column always adds up to the total;
- multiply-adds (MACs): Linear in*out per output vector; Conv2d one
  Cin/groups*kH*kW dot product per output value; ConvTranspose2d
  Cout/groups*kH*kW per input value; normalisation layers one per output
  value; MultiheadAttention its q/k/v projections and the two attention
  products (its out_proj is a Linear row of its own); pooling, activations
  and reshapes none (they compare or copy).

Traced are the leaf modules and every module that owns parameters directly
(MultiheadAttention's in_proj), a parent's row coming after its children's.
`Identity` placeholders are left out of the table: they do nothing.
"""
import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor


def _mult_adds(module, inputs, output):
    """Multiply-adds of one call of `module`, for the whole batch."""
    out = output.shape
    if isinstance(module, nn.Linear):
        return int(np.prod(out[:-1])) * module.in_features * module.out_features
    if isinstance(module, nn.ConvTranspose2d):
        n, c_in, h, w = inputs[0].shape
        kernel_h, kernel_w = module.kernel_size
        return n * c_in * h * w * (module.out_channels // module.groups) * kernel_h * kernel_w
    if isinstance(module, nn.Conv2d):
        kernel_h, kernel_w = module.kernel_size
        return int(np.prod(out)) * (module.in_channels // module.groups) * kernel_h * kernel_w
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
        return int(np.prod(out))
    if type(module).__name__ == "MultiheadAttention" and len(inputs) >= 2:
        query, key = inputs[0].shape, inputs[1].shape          # (N, L, E), (N, S, E) batch_first
        if not getattr(module, "batch_first", True):
            query, key = (query[1], query[0], query[2]), (key[1], key[0], key[2])
        n, length, embed = query
        source = key[1]
        projections = length * embed * embed + 2 * source * embed * embed   # q; k and v
        attention = 2 * length * source * embed                              # scores; weighted sum
        return n * (projections + attention)                  # out_proj is its own row
    return 0


class ModelSummary:
    """The rows of a summary and their totals; str() is the printed table.

    rows: list of dicts with keys name, type, output_shape (batch axis shown as
    "N"), params, mult_adds (per sample)."""

    def __init__(self, model_name, input_shape, rows, total_params, trainable_params):
        self.model_name, self.input_shape = model_name, tuple(input_shape)
        self.rows = rows
        self.total_params, self.trainable_params = total_params, trainable_params
        self.total_mult_adds = sum(row["mult_adds"] for row in rows)

    def __str__(self):
        header = ("Layer (type)", "Output shape", "Params", "Mult-adds")
        body = [(f"{r['name']} ({r['type']})", _shape_text(r["output_shape"]),
                 f"{r['params']:,}", f"{r['mult_adds']:,}") for r in self.rows]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(4)]

        def line(cells):
            return (f"{cells[0]:<{widths[0]}}   {cells[1]:<{widths[1]}}   "
                    f"{cells[2]:>{widths[2]}}   {cells[3]:>{widths[3]}}")

        rule = "-" * len(line(header))
        parts = [f"{self.model_name}, input {_shape_text(('N',) + self.input_shape)}", rule,
                 line(header), "=" * len(rule)]
        parts += [line(cells) for cells in body]
        parts += ["=" * len(rule),
                  f"Total params: {self.total_params:,}",
                  f"Trainable params: {self.trainable_params:,}",
                  f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                  f"Mult-adds per sample: {self.total_mult_adds:,}", rule]
        return "\n".join(parts)

    def __repr__(self):
        return str(self)


def _shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


def summary(model, input_shape, batch_size=2, dtype=np.float32, print_table=True):
    """Run `model` on zeros of shape (batch_size, *input_shape) and return (and,
    by default, print) a `ModelSummary`. `input_shape` excludes the batch axis,
    e.g. (1, 28, 28). Use dtype=np.int64 for models that take token ids."""
    input_shape = tuple(int(s) for s in input_shape)
    names = {id(m): name for name, m in model.named_modules()}
    rows, counted = [], set()

    def watch(module):
        original = type(module).forward

        def forward(*args, **kwargs):
            output = original(module, *args, **kwargs)
            tensors = [a for a in args if isinstance(a, Tensor)]
            first = output[0] if isinstance(output, tuple) else output
            own = [p for p in module.parameters(recurse=False) if id(p) not in counted]
            counted.update(id(p) for p in own)
            if isinstance(module, nn.Identity):
                return output
            rows.append(dict(name=names.get(id(module)) or "(model)",
                             type=type(module).__name__,
                             output_shape=("N",) + tuple(first.shape[1:]),
                             params=sum(p.data.size for p in own),
                             mult_adds=_mult_adds(module, tensors, first) // batch_size))
            return output

        object.__setattr__(module, "forward", forward)      # instance attribute: shadows the class's

    leaves = [m for m in model.modules()
              if not list(m.children()) or any(True for _ in m.parameters(recurse=False))]
    was_training = [(m, m.training) for m in model.modules()]
    for module in leaves:
        watch(module)
    try:
        model.eval()
        with no_grad():
            model(Tensor(np.zeros((batch_size,) + input_shape, dtype=dtype)))
    finally:
        for module in leaves:
            object.__delattr__(module, "forward")
        for module, mode in was_training:
            module.training = mode

    for name, module in model.named_modules():                # containers' own parameters
        own = [p for p in module.parameters(recurse=False) if id(p) not in counted]
        if own:
            counted.update(id(p) for p in own)
            kind = " own" if list(module.children()) else " (not called)"
            rows.append(dict(name=name or "(model)", type=type(module).__name__ + kind,
                             output_shape=("-",), params=sum(p.data.size for p in own), mult_adds=0))
    params = list(model.parameters())
    table = ModelSummary(type(model).__name__, input_shape, rows,
                         total_params=sum(p.data.size for p in params),
                         trainable_params=sum(p.data.size for p in params if p.requires_grad))
    if print_table:
        print(table)
    return table


class SummaryMixin:
    """Gives a model class `model.summary(input_shape)`."""

    def summary(self, input_shape, **options):
        return summary(self, input_shape, **options)
