"""`Optimizer`: holds parameters in groups and updates them from their `.grad`.

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = optim.Adam([{"params": body.parameters()},
                      {"params": head.parameters(), "lr": 1e-2}], lr=1e-3)

    for x, y in loader:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

Each group is a dict with "params" (a list of Parameters) and its own
hyper-parameters (lr, ...), falling back to the optimizer's defaults.
Per-parameter state (momentum buffers, Adam's moments) lives in `self.state`,
keyed by the parameter. `step()` changes `param.data` in place and skips
parameters whose `.grad` is None.

`state_dict()` is flat and made only of ndarrays, so it can go into
`minidl.save` next to the model's:

    "state.<i>.<name>"        state of the i-th parameter (counting over all groups)
    "param_groups.<g>.<hyper>" hyper-parameters of group g (0-d or 1-d arrays)
    "param_groups.<g>.params"  the indices of group g's parameters
"""
import numpy as np

from ..autograd.tensor import Tensor


class Optimizer:
    """Base class: param_groups, state, zero_grad, state_dict/load_state_dict."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}                       # param -> {name: ndarray or int}
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            "(e.g. model.parameters()), got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a param group must be a dict with 'params'")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        known = {id(p) for g in self.param_groups for p in g["params"]}
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, "
                                f"got {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor")
            if id(param) in known:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than one "
                                 "place in the parameter groups")
            known.add(id(param))
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown hyper-parameter(s) {sorted(unknown)}")
        full = dict(self.defaults)
        full.update(group)
        full["params"] = params
        self._check_hyper(full)
        self.param_groups.append(full)

    def _check_hyper(self, group):
        """Subclasses raise ValueError for invalid hyper-parameters."""
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {group['lr']}")

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none or param.grad is None:
                    param.grad = None
                else:
                    param.grad = np.zeros_like(param.data)

    def step(self):
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    # ---- checkpointing ---------------------------------------------------
    def _all_params(self):
        return [param for group in self.param_groups for param in group["params"]]

    def state_dict(self):
        """A flat {name: ndarray} dict (see the module docstring)."""
        out = {}
        for index, param in enumerate(self._all_params()):
            for name, value in self.state.get(param, {}).items():
                out[f"state.{index}.{name}"] = np.array(value)       # a copy
        start = 0
        for g, group in enumerate(self.param_groups):
            for key, value in group.items():
                if key != "params":
                    out[f"param_groups.{g}.{key}"] = np.array(value)
            count = len(group["params"])
            out[f"param_groups.{g}.params"] = np.arange(start, start + count)
            start += count
        return out

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state saved by state_dict()."""
        params = self._all_params()
        name = type(self).__name__
        start = 0
        for g, group in enumerate(self.param_groups):
            key = f"param_groups.{g}.params"
            if key not in state_dict:
                raise ValueError(f"{name}.load_state_dict: missing '{key}'; the state_dict "
                                 f"has no group {g} (this optimizer has {len(self.param_groups)})")
            saved = np.asarray(state_dict[key])
            if len(saved) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {g} has {len(saved)} parameters "
                                 f"in the state_dict but {len(group['params'])} here")
            start += len(saved)
        saved_groups = {key.split(".")[1] for key in state_dict if key.startswith("param_groups.")}
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state_dict has {len(saved_groups)} "
                             f"parameter groups, this optimizer has {len(self.param_groups)}")
        new_state = {}
        for key, value in state_dict.items():
            parts = key.split(".")
            if parts[0] == "state" and len(parts) == 3:
                index = int(parts[1])
                if index >= len(params):
                    raise ValueError(f"{name}.load_state_dict: '{key}' refers to parameter "
                                     f"{index}, but there are only {len(params)}")
                param = params[index]
                value = np.array(value)
                # Floating state (moments, momentum) and any array is per element of
                # the parameter: its shape, cast to its dtype (as PyTorch does), so a
                # float64 checkpoint does not turn a float32 model's updates into
                # float64 ones. Only an integer scalar (the step count) is not.
                if value.dtype.kind == "f" or value.ndim > 0:
                    if value.shape != param.shape:
                        raise ValueError(f"{name}.load_state_dict: '{key}' has shape {value.shape} "
                                         f"but parameter {index} has shape {param.shape}")
                    value = value.astype(param.dtype)
                elif value.dtype.kind in "iu":
                    value = int(value)
                new_state.setdefault(param, {})[parts[2]] = value
            elif parts[0] != "param_groups" or len(parts) != 3:
                raise ValueError(f"{name}.load_state_dict: unexpected key '{key}'")
        for g, group in enumerate(self.param_groups):
            for hyper, current in list(group.items()):
                key = f"param_groups.{g}.{hyper}"
                if hyper == "params" or key not in state_dict:
                    continue
                value = np.asarray(state_dict[key])
                if isinstance(current, tuple):
                    group[hyper] = tuple(value.tolist())
                elif isinstance(current, bool):
                    group[hyper] = bool(value)
                else:
                    group[hyper] = value.item()
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
