# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 · Autograd, from the chain rule on paper to `loss.backward()`
#
# Training a network means following the gradient of a loss with respect to
# millions of weights. Nobody writes those derivatives by hand: an *automatic
# differentiation* engine records how the loss was computed and applies the
# chain rule backwards through that record. This tutorial builds that idea up
# in four steps, checking each against the one before:
#
# 1. the chain rule **by hand** on a small expression, checked with finite differences;
# 2. a **tiny scalar engine** (one class of about 50 lines) that does the same automatically;
# 3. **minidl's `Tensor`**: the same engine for arrays, and a picture of its graph;
# 4. **gradcheck**: how minidl tests every op's backward, why it works in
#    float64 and not in float32, and how it catches a wrong backward.
#
# Run it as a script (`python tutorials/01_autograd.py`) or as a notebook
# (jupytext). `MINIDL_QUICK=1` makes the slow demonstration smaller; the three
# pictures (`01_graph.png`, `01_graph_layer.png`, `01_finite_difference_error.png`)
# go to `$MINIDL_TUTORIAL_OUT` (default `tutorial_outputs/`), and in a notebook
# they also appear below their cells.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import minidl as mdl
from minidl import viz
from minidl.autograd.function import Function
from minidl.gradcheck import GradcheckError
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("01")      # quick mode, the output folder, figures inline in Jupyter
QUICK = tutorial.quick

# %% [markdown]
# ## 1. The chain rule by hand
#
# Take $f(x, y) = \log(x y + e^x)$. Give every intermediate result a name:
#
# $$u = x y, \qquad v = e^x, \qquad z = u + v, \qquad f = \log z.$$
#
# Each step has a derivative we know: $\partial f/\partial z = 1/z$,
# $\partial z/\partial u = \partial z/\partial v = 1$, $\partial u/\partial x = y$,
# $\partial u/\partial y = x$, $\partial v/\partial x = e^x$. The chain rule
# multiplies them along every path from $f$ back to an input, and adds the
# paths ($x$ reaches $f$ twice, through $u$ and through $v$):
#
# $$\frac{\partial f}{\partial x} = \frac{\partial f}{\partial z}\left(\frac{\partial z}{\partial u}\frac{\partial u}{\partial x} + \frac{\partial z}{\partial v}\frac{\partial v}{\partial x}\right) = \frac{y + e^x}{z}, \qquad
# \frac{\partial f}{\partial y} = \frac{\partial f}{\partial z}\frac{\partial z}{\partial u}\frac{\partial u}{\partial y} = \frac{x}{z}.$$
#
# A formula on paper can be wrong, so we check it with a central finite
# difference, $\big(f(x + h) - f(x - h)\big) / 2h$, which approaches
# $\partial f/\partial x$ as $h$ shrinks.

# %%
def f(x, y):
    return math.log(x * y + math.exp(x))


x0, y0 = 1.5, -0.5
z0 = x0 * y0 + math.exp(x0)
by_hand = {"x": (y0 + math.exp(x0)) / z0, "y": x0 / z0}
h = 1e-6
numeric = {"x": (f(x0 + h, y0) - f(x0 - h, y0)) / (2 * h),
           "y": (f(x0, y0 + h) - f(x0, y0 - h)) / (2 * h)}
for name in "xy":
    print(f"df/d{name}: by hand {by_hand[name]:.10f}   finite difference {numeric[name]:.10f}")
    assert abs(by_hand[name] - numeric[name]) < 1e-8

# %% [markdown]
# ## 2. A tiny engine that applies the chain rule for us
#
# The hand computation had two passes. Forward: compute u, v, z, f and keep
# them. Backward: start from df/df = 1 and, going from f back towards the
# inputs, let every step turn "the gradient of f with respect to my output"
# into "the gradient of f with respect to my inputs". That is all an autograd
# engine does. Below, a `Value` remembers which values it was made from and a
# small function (`_backward`) holding its local derivative. `backward()` visits
# the values so that each one is handled after everything that used it (a
# *topological order*, found here with an explicit stack rather than recursion,
# so that long chains work), and gradients from several uses are **added**.

# %%
class Value:
    def __init__(self, data, parents=(), op=""):
        self.data, self.grad = float(data), 0.0
        self.parents, self.op = parents, op
        self._backward = lambda: None          # pushes self.grad to the parents

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():                       # d(a + b)/da = d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():                       # d(ab)/da = b,  d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():                       # d exp(a)/da = exp(a)
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,), "log")

        def _backward():                       # d log(a)/da = 1/a
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    def backward(self):
        order, visited, stack = [], set(), [(self, False)]
        while stack:                           # post-order depth-first walk, no recursion
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node.parents)
        self.grad = 1.0                        # df/df
        for node in reversed(order):           # outputs first, inputs last
            node._backward()


x, y = Value(x0), Value(y0)
out = (x * y + x.exp()).log()
out.backward()
print(f"tiny engine: f = {out.data:.10f}, df/dx = {x.grad:.10f}, df/dy = {y.grad:.10f}")
assert abs(x.grad - by_hand["x"]) < 1e-12 and abs(y.grad - by_hand["y"]) < 1e-12

# %% [markdown]
# ## 3. minidl's Tensor: the same idea for arrays
#
# minidl's engine (`minidl/autograd/`) is this tiny engine with arrays instead
# of numbers. Each op is a `Function` with a `forward` and a `backward` over
# NumPy arrays; the result of an op remembers it as `grad_fn`, and the
# Function remembers its `inputs`. `loss.backward()` sorts the graph (again
# with a stack) and calls every `backward` in turn. Leaves created with
# `requires_grad=True` collect their gradient in `.grad`.

# %%
x = mdl.tensor(np.array(x0), requires_grad=True)      # a NumPy float64 stays float64
y = mdl.tensor(np.array(y0), requires_grad=True)
u = x * y
z = u + x.exp()
f_t = z.log()
f_t.backward()
print("minidl:      f =", f_t.item(), " df/dx =", x.grad, " df/dy =", y.grad)
assert abs(float(x.grad) - by_hand["x"]) < 1e-12 and abs(float(y.grad) - by_hand["y"]) < 1e-12
print("f was made by", f_t.grad_fn.name, "from", [t.grad_fn.name if t.grad_fn else "a leaf"
                                                  for t in f_t.grad_fn.inputs])

# %% [markdown]
# `minidl.viz.plot_computation_graph` walks the same `grad_fn` / `inputs`
# links and draws them: inputs on the left, each op placed by its distance
# from the output. Data flows to the right; `backward()` walks it to the left.
# Notice that `x` has two arrows out of it, one to `Mul` and one to `Exp`:
# that is why its gradient is a sum of two paths.

# %%
tutorial.show(viz.plot_computation_graph(f_t, tutorial.path("graph.png"),
                                         names={x: "x", y: "y", u: "u", z: "z", f_t: "f"},
                                         title="f = log(x*y + exp(x))"))

# %% [markdown]
# With arrays the chain rule works the same way, one array per node. A linear
# layer followed by tanh and a sum: every gradient has the shape of its input,
# and the bias, broadcast over the 4 rows, gets the sum of the 4 rows' gradients.

# %%
rng = np.random.default_rng(0)
inputs = mdl.tensor(rng.standard_normal((4, 3)))                    # (N, in), a constant
weight = mdl.tensor(rng.standard_normal((3, 2)), requires_grad=True)  # (in, out)
bias = mdl.tensor(np.zeros(2), requires_grad=True)                  # (out,), broadcast over N
loss = (inputs @ weight + bias).tanh().sum()
loss.backward()
print("weight.grad", weight.grad.shape, " bias.grad", bias.grad.shape)
hidden = np.tanh(inputs.data @ weight.data + bias.data)             # (N, out)
np.testing.assert_allclose(weight.grad, inputs.data.T @ (1 - hidden ** 2))   # by hand
np.testing.assert_allclose(bias.grad, (1 - hidden ** 2).sum(axis=0))
tutorial.show(viz.plot_computation_graph(loss, tutorial.path("graph_layer.png"),
                                         names={inputs: "inputs", weight: "weight", bias: "bias", loss: "loss"},
                                         title="loss = tanh(inputs @ weight + bias).sum()"))

# %% [markdown]
# Three habits of the engine, each like PyTorch's:
#
# - gradients **accumulate**: a second `backward()` adds to `.grad`, which is
#   why training loops call `zero_grad()` before each step;
# - the values an op saved for backward are **freed** after the first
#   backward; going through the graph again needs `retain_graph=True`;
# - the sort uses no recursion, so a chain of 100,000 ops is fine.

# %%
w = mdl.tensor(np.array(2.0), requires_grad=True)
(w * w).backward()
(w * w).backward()                       # a new graph each time; the grads add up
print("after two backward passes, d(w*w)/dw =", w.grad, "(2 * 2w = 8)")
w.zero_grad()

square = w * w
square.backward(retain_graph=True)
square.backward()                        # allowed: the first pass kept the saved values
try:
    square.backward()                    # the second pass freed them
except RuntimeError as error:
    print("third pass:", error)

chain_length = 2_000 if QUICK else 100_000
a = mdl.tensor(np.array(1.0), requires_grad=True)
b = a
for _ in range(chain_length):
    b = b * 1.0001
b.backward()
print(f"chain of {chain_length} multiplications: d/da = {float(a.grad):.6f} "
      f"(exactly 1.0001**{chain_length} = {1.0001 ** chain_length:.6f})")

# %% [markdown]
# ## 4. gradcheck: testing a backward against finite differences
#
# Every op in minidl has a hand-written backward, and every one is tested the
# way we tested the paper formula in part 1: `mdl.gradcheck(fn, inputs)`
# perturbs each input element by ±eps, measures how the output changes, and
# compares with what `backward()` says. (For an output with many elements it
# checks $\sum_i \text{output}_i \, r_i$ for a fixed random $r$.) It works in float64.

# %%
xs = np.array([0.3, -1.2, 0.8])
ys = np.array([1.1, -0.3, 2.0])                 # keeps x*y + exp(x) > 0
print("gradcheck of log(x*y + exp(x)):", mdl.gradcheck(lambda a, b: (a * b + a.exp()).log(), [xs, ys]))

# %% [markdown]
# Now a deliberately wrong op: the square of a number, whose backward forgets
# the factor 2. Its forward is right, so using it gives correct values, and a
# model would still train, just badly. gradcheck names the input, the index
# and the two values.

# %%
class WrongSquare(Function):
    """out = a**2; the correct backward is 2 a g; this one returns a g."""

    def forward(self, a):
        self.save_for_backward(a)
        return a * a

    def backward(self, grad):
        (a,) = self.saved_tensors
        return grad * a                          # BUG: should be 2 * a * grad


try:
    mdl.gradcheck(lambda a: WrongSquare.apply(a), [np.array([0.5, -1.5])])
    raise SystemExit("gradcheck should have failed")
except GradcheckError as error:
    print("caught:", error)

# %% [markdown]
# ### Why float64?
#
# A finite difference has two errors pulling in opposite directions. The
# *truncation* error of the central difference shrinks like $\epsilon^2$. The
# *rounding* error grows like $u\,|f| / \epsilon$, with $u$ the machine
# precision, because we divide a tiny difference of two rounded numbers by a
# tiny $\epsilon$:
#
# $$\left|\frac{f(x+\epsilon) - f(x-\epsilon)}{2\epsilon} - f'(x)\right| \approx \frac{|f'''(x)|}{6}\,\epsilon^2 + \frac{u\,|f(x)|}{\epsilon}.$$
#
# $u$ is about 1e-16 in float64 but 1e-7 in float32. Let us measure the
# error of the derivative of tanh at x = 0.7 for many eps, in both types.

# %%
def central_difference(fn, x, eps, dtype):
    x, eps = dtype(x), dtype(eps)
    return float((fn(x + eps) - fn(x - eps)) / (dtype(2) * eps))


point = 0.7
exact = 1 - np.tanh(point) ** 2
epsilons = np.logspace(-12, -1, 23 if QUICK else 45)
errors = {name: [abs(central_difference(np.tanh, point, e, dtype) - exact) + 1e-18 for e in epsilons]
          for name, dtype in (("float32", np.float32), ("float64", np.float64))}
for name, errs in errors.items():
    best = int(np.argmin(errs))
    print(f"{name}: smallest error {errs[best]:.1e} at eps = {epsilons[best]:.0e}")

fig, ax = plt.subplots(figsize=(7, 4.5))
for name, errs in errors.items():
    ax.loglog(epsilons, errs, "o-", ms=3, label=name)
ax.axvline(1e-6, color="0.5", ls=":", label="gradcheck's eps = 1e-6")
ax.set(xlabel="eps", ylabel="|finite difference - exact derivative|",
       title="Central differences of tanh at 0.7: rounding (left) vs truncation (right)")
ax.legend()
ax.grid(alpha=0.3, which="both")
fig.tight_layout()
tutorial.show(fig, "finite_difference_error.png")

# %% [markdown]
# In float64 the error bottoms out near 1e-12 around eps = 1e-5 (and is about
# 1e-11 at gradcheck's eps = 1e-6). In float32 the best we can get is about
# 1e-6, at eps near 5e-3; at eps = 1e-6 the "derivative" is off by about 1%,
# and below eps = 1e-8 it is 0 altogether, because 0.7 + eps rounds back to
# 0.7 in float32 (the flat line on the left: the error is the whole derivative).
# So a correct backward checked in float32 would look wrong. That is why
# `gradcheck` casts everything to float64 first. Here is the same correct op,
# tanh, checked by hand at eps = 1e-6 in each type:

# %%
for name, dtype in (("float32", np.float32), ("float64", np.float64)):
    estimate = central_difference(np.tanh, point, 1e-6, dtype)
    relative = abs(estimate - exact) / exact
    verdict = "would pass" if relative < 1e-3 else "would FAIL"
    print(f"{name}: finite difference {estimate:.8f} vs exact {exact:.8f}, relative error "
          f"{relative:.1e} -> {verdict} gradcheck's rtol of 1e-3")

# %% [markdown]
# ## Summary
#
# - The chain rule multiplies local derivatives along each path from the
#   output to an input and adds the paths.
# - An autograd engine records the computation as a graph (`grad_fn`,
#   `inputs`), sorts it, and lets every op turn the gradient of its output
#   into gradients of its inputs. Our 50-line `Value` and minidl's `Tensor`
#   give the same numbers as the paper formula.
# - Gradients accumulate in `.grad` until `zero_grad()`; saved values are
#   freed after one backward unless `retain_graph=True`.
# - `gradcheck` compares every backward with central differences, in float64,
#   where the finite-difference error (~1e-10) is far below any real bug.
#
# ## Exercises
#
# Exercises 1 and 6 have checks: `minidl check 01 --init` copies a skeleton
# (the `Value` class above, with the methods to write left empty) to
# `exercises/01_autograd.py`; fill it in, then `minidl check 01` says, per
# exercise, whether it is right, with a hint when it is not.
#
# 1. Add `tanh` and `__pow__` (number exponent) to `Value`, and check them
#    against minidl on f(x) = tanh(x)**3.
# 2. Draw the graph of `(x * x).sum()` with `viz.plot_computation_graph`.
#    The drawing shows one arrow from `x` to `Mul`, because both of `Mul`'s
#    inputs are the same tensor. What does `Mul.backward` return for each of
#    its two inputs, and how do they become `x.grad = 2 * x`?
# 3. In the float32/float64 plot, the right-hand slope is 2 and the left-hand
#    slope is -1 on the log-log axes. Derive both from the Taylor expansion of
#    f(x ± eps) and the size of a rounding error.
# 4. Write `WrongSquare` with a backward of `2 * a * grad + 1e-9`. Does
#    gradcheck notice? Which of its tolerances (`atol`, `rtol`) decides?
# 5. Time `backward()` on the chain of 100,000 multiplications. How many
#    microseconds per op? Where do you think they go?
# 6. Write `numerical_gradient(f, x, eps=1e-6)`: the central-difference
#    gradient of a scalar function f at an array x, one element at a time,
#    leaving x unchanged. It is the heart of `gradcheck`.
