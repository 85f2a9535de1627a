"""Helpers for layer tests: call a Module with stand-in parameter tensors, so that
`gradcheck` (which makes fresh float64 leaves each evaluation) can check the
gradients of a layer's own parameters, not only of its input."""
import numpy as np

from minidl.gradcheck import gradcheck


def functional_call(module, params, *args):
    """module(*args) with module._parameters[name] temporarily replaced by params[name]."""
    saved = dict(module._parameters)
    try:
        for name, value in params.items():
            module._parameters[name] = value
        return module(*args)
    finally:
        module._parameters.clear()
        module._parameters.update(saved)


def gradcheck_module(module, x, **options):
    """gradcheck of module(x) with respect to x and every direct parameter (float64)."""
    module.double()
    names = [n for n, p in module._parameters.items() if p is not None]
    inputs = [np.asarray(x, dtype=np.float64)] + [module._parameters[n].data for n in names]

    def fn(x, *params):
        return functional_call(module, dict(zip(names, params)), x)

    return gradcheck(fn, inputs, **options)
