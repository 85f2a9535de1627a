"""`Module`: the base class of every layer and model.

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)       # a sub-module: registered
            self.fc2 = nn.Linear(128, 10)
            self.scale = nn.Parameter(np.ones(1, dtype=np.float32))   # registered

        def forward(self, x):                    # (N, 784) -> (N, 10)
            return self.fc2(F.relu(self.fc1(x))) * self.scale

Assigning a `Parameter` or a `Module` to an attribute registers it under that
name, so a model is a tree: `named_parameters()` walks it and names every
parameter by its path (`fc1.weight`). Buffers (`register_buffer`) are arrays a
layer keeps but does not learn, such as BatchNorm's running mean: they go into
`state_dict()` but not into `parameters()`.

`state_dict()` maps names to ndarray copies (ready for `minidl.save`);
`load_state_dict()` copies arrays back into the existing parameters in place,
so an optimizer holding them keeps working.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd.tensor import Tensor
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of layers: registers parameters, buffers and sub-modules by attribute."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())   # name -> Parameter or None
        object.__setattr__(self, "_buffers", OrderedDict())      # name -> Tensor or None
        object.__setattr__(self, "_non_persistent", set())       # buffers left out of state_dict
        object.__setattr__(self, "_modules", OrderedDict())      # name -> Module or None
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- registration by attribute assignment ----------------------------
    def _registries(self, name):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign '{name}' before Module.__init__() was called; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )
        return self._parameters, self._buffers, self._modules

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            params, buffers, modules = self._registries(name)
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            params, buffers, modules = self._registries(name)
            self._forget(name)
            modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter '{name}' of "
                    f"{type(self).__name__}: use nn.Parameter(...) or None"
                )
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to sub-module '{name}': "
                                "expected a Module or None")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = None if value is None else _as_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove `name` from every registry and from plain attributes."""
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):           # only called when normal lookup fails
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register `param` (a Parameter, or None for an absent one such as bias=False)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._registries(name)
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Keep `tensor` (Tensor, ndarray or None) as state that is saved but not learned."""
        self._registries(name)
        if "." in name or not name:
            raise ValueError(f"register_buffer: invalid name '{name}'")
        self._forget(name)
        self._buffers[name] = None if tensor is None else _as_buffer(name, tensor)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: '{name}' must be a Module, got {type(module).__name__}")
        self._registries(name)
        self._forget(name)
        self._modules[name] = module

    # ---- walking the tree ------------------------------------------------
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, each once."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items()
                        if m is not None]
            stack.extend(reversed(children))    # pre-order, in registration order

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, recurse, skip=None):
        seen = set()
        walk = self.named_modules() if recurse else [("", self)]
        for prefix, module in walk:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen or (skip and name in skip(module)):
                    continue
                seen.add(id(value))                # a shared parameter is listed once
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse=True):
        yield from self._named_members("_parameters", recurse)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse):
            yield param

    def named_buffers(self, recurse=True):
        yield from self._named_members("_buffers", recurse)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse):
            yield buffer

    # ---- modes and gradients ---------------------------------------------
    def train(self, mode=True):
        """Set `training` on this module and all descendants (Dropout, BatchNorm read it)."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget accumulated gradients: `.grad = None` (or zeros if set_to_none=False)."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = np.zeros_like(param.data)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, dtype):
        """Cast every floating-point parameter and buffer to `dtype`, in place."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"to: Modules can only be cast to a floating dtype, got {dtype}")
        for value in list(self.parameters()) + list(self.buffers()):
            if value.dtype.kind == "f":
                value.data = value.data.astype(dtype)
                value.grad = None if value.grad is None else value.grad.astype(dtype)
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    def apply(self, fn):
        """Call `fn(module)` on every descendant and then on this module (for init)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- saving and loading ------------------------------------------------
    def state_dict(self):
        """Ordered {dotted name: ndarray copy} of every parameter and persistent buffer."""
        return OrderedDict((name, value.data.copy()) for name, value in self._state_targets().items())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from `state_dict` into this module's parameters and buffers, in place.

        Every shape and dtype must match. With strict=True, keys missing from
        `state_dict` or not in the module are errors too; with strict=False they
        are returned as (missing_keys, unexpected_keys). Nothing is changed
        unless every entry can be loaded.
        """
        own = self._state_targets()
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        problems = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != target.shape:
                problems.append(f"'{key}': shape {tuple(value.shape)} in the state_dict, "
                                f"but {tuple(target.shape)} in the model")
            elif value.dtype != target.dtype:
                problems.append(f"'{key}': dtype {value.dtype} in the state_dict, but "
                                f"{target.dtype} in the model (cast the array, or the model "
                                f"with .to(dtype))")
        if strict:
            problems += [f"missing key '{key}' (in the model, not in the state_dict)" for key in missing]
            problems += [f"unexpected key '{key}' (in the state_dict, not in the model)"
                         for key in unexpected]
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__} failed: " + "; ".join(problems))
        for key, target in own.items():
            if key in state_dict:
                value = state_dict[key]
                target.data[...] = value.data if isinstance(value, Tensor) else value
        return IncompatibleKeys(missing, unexpected)

    def _state_targets(self):
        """{dotted name: the Tensor itself} for what state_dict() saves."""
        targets = OrderedDict(self.named_parameters())
        targets.update(self._named_members("_buffers", True, skip=lambda m: m._non_persistent))
        return targets

    # ---- printing ----------------------------------------------------------
    def extra_repr(self):
        """Override to show a layer's settings inside its repr, e.g. 'in_features=4'."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _as_buffer(name, value):
    if isinstance(value, Parameter):
        raise TypeError(f"buffer '{name}' cannot be a Parameter; register it as a parameter")
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value)
    raise TypeError(f"buffer '{name}' must be a Tensor or ndarray, got {type(value).__name__}")
