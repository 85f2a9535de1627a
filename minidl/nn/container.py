"""Containers: Sequential (run modules one after another) and ModuleList (a list
whose modules are registered, so their parameters are found)."""
from collections import OrderedDict

from .module import Module


class Sequential(Module):
    """Sequential(m0, m1, ...) or Sequential(OrderedDict(name=module)); forward runs them in order."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def _checked_index(self, index):
        size = len(self._modules)
        if not -size <= index < size:
            raise IndexError(f"{type(self).__name__}: index {index} is out of range for length {size}")
        return index % size

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        return modules[self._checked_index(index)]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(Module):
    """A list of Modules; indexing, len, iteration, append and extend like a Python list."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _checked_index(self, index):
        size = len(self._modules)
        if not -size <= index < size:
            raise IndexError(f"ModuleList: index {index} is out of range for length {size}")
        return index % size

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[self._checked_index(index)]

    def __setitem__(self, index, module):
        self.add_module(str(self._checked_index(index)), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it in your own forward")


class ModuleDict(Module):
    """Modules by name, like a dict whose modules are registered (so their
    parameters are found); keeps insertion order. No forward(): pick the
    module you need in your own forward, e.g. self.heads[task](x)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    @staticmethod
    def _checked_key(key):
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        if "." in key or not key:
            raise KeyError(f"ModuleDict: invalid key {key!r} (non-empty, without '.')")
        return key

    def __getitem__(self, key):
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r}; keys: {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: {key!r} must be a Module, got {type(module).__name__}")
        if key in self._modules:
            self._modules[key] = module                          # replaced in place, like a dict
        else:
            self.add_module(self._checked_key(key), module)

    def __delitem__(self, key):
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r}")
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def clear(self):
        self._modules.clear()

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def update(self, modules):
        """Add (name, module) pairs from a mapping or an iterable of pairs."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for entry in pairs:
            if len(entry) != 2:
                raise ValueError(f"ModuleDict.update: expected (name, module) pairs, got {entry!r}")
            self[entry[0]] = entry[1]
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(); call the module you need: self.blocks[name](x)")
