"""Per-op overhead: a long chain of tiny ops, where the arithmetic is nothing and
the framework's bookkeeping (making nodes, walking the graph) is everything.

The chain on (2, 2) tensors repeats  y = y + w;  y = y * w;  y = tanh(y)
(`length` ops), then sums y and runs backward to get dL/dx and dL/dw.

Implementations:
- "minidl": the chain with minidl tensors;
- "numpy": the same arithmetic on ndarrays with a hand-written backward loop
  (the floor: what the math costs without any framework);
- "torch": PyTorch eager, if installed (the target: within 2x of it).
"""
import numpy as np

from .harness import BuiltOnFirstCall, Case, has_torch

SHAPE = (2, 2)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, SHAPE).astype(np.float32), rng.uniform(0.5, 1, SHAPE).astype(np.float32)


def minidl_chain(x0, w0, length):
    import minidl as mdl

    def run():
        x = mdl.tensor(x0, requires_grad=True)
        w = mdl.tensor(w0, requires_grad=True)
        y = x
        for i in range(length):
            step = i % 3
            if step == 0:
                y = y + w
            elif step == 1:
                y = y * w
            else:
                y = y.tanh()
        y.sum().backward()
        return x.grad, w.grad
    return run


def numpy_chain(x0, w0, length):
    def run():
        y, w = x0, w0
        tape = []                                  # (step, what backward needs)
        for i in range(length):
            step = i % 3
            if step == 0:
                tape.append((0, None))
                y = y + w
            elif step == 1:
                tape.append((1, y))                # dL/dw needs the input
                y = y * w
            else:
                y = np.tanh(y)
                tape.append((2, y))                # tanh' = 1 - out^2
        g = np.ones_like(y)                        # d sum / d y
        grad_w = np.zeros_like(w)
        for step, saved in reversed(tape):
            if step == 0:
                grad_w = grad_w + g
            elif step == 1:
                grad_w = grad_w + g * saved
                g = g * w
            else:
                g = g * (1 - saved * saved)
        return g, grad_w
    return run


def torch_chain(x0, w0, length):
    import torch
    torch.set_num_threads(1)                        # tiny ops: threads only add overhead

    def run():
        x = torch.tensor(x0, requires_grad=True)
        w = torch.tensor(w0, requires_grad=True)
        y = x
        for i in range(length):
            step = i % 3
            if step == 0:
                y = y + w
            elif step == 1:
                y = y * w
            else:
                y = y.tanh()
        y.sum().backward()
        return x.grad, w.grad
    return run


def check_same_step(quick=False, length=30):
    """The implementations compute the same gradients (run before timing, in
    the process that makes the table; each timed process runs only its own)."""
    x0, w0 = _inputs()
    results = [minidl_chain(x0, w0, length)(), numpy_chain(x0, w0, length)()]
    if has_torch():
        results.append(tuple(t.numpy() for t in torch_chain(x0, w0, length)()))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def cases(quick=False):
    x0, w0 = _inputs()
    length = 150 if quick else 1000
    implementations = {
        "minidl": BuiltOnFirstCall(lambda: minidl_chain(x0, w0, length), ("numba", "blas")),
        "numpy": BuiltOnFirstCall(lambda: numpy_chain(x0, w0, length), ("blas",))}
    baseline = "numpy"
    if has_torch():
        implementations["torch"] = BuiltOnFirstCall(lambda: torch_chain(x0, w0, length), ("torch",))
        baseline = "torch"
    yield Case(op="op chain fwd+bwd", shape=f"{length} add/mul/tanh on (2, 2)",
               implementations=implementations, baseline=baseline)
