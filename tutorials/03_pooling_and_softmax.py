# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 · Pooling and softmax
#
# Two small ops that every CNN and Transformer uses, and that are easy to get
# subtly wrong:
#
# 1. **max pooling**: from six Python loops, to NumPy windows, to minidl's
#    Numba kernel, each checked against the last and timed; then where its
#    gradient goes (overlapping windows, ties) and average pooling beside it;
# 2. **softmax**: why the textbook formula overflows, how subtracting the row
#    max fixes it, why `log_softmax` is not `log(softmax)`, the fused backward,
#    and the polynomial `exp` that makes the Numba kernel fast.
#
# Run it as a script (`python tutorials/03_pooling_and_softmax.py`) or as a
# notebook (jupytext). `MINIDL_QUICK=1` shrinks the shapes so the whole file
# runs in a few seconds. Prerequisites: tutorials 01 and 02. The four pictures
# (`03_*.png`) go to `$MINIDL_TUTORIAL_OUT` (default `tutorial_outputs/`) and,
# in a notebook, also appear below their cells.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import minidl as mdl
import minidl.functional as F
from minidl.kernels.fast_exp import fast_exp_array
from minidl.kernels.pooling import max_pool2d_forward
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("03")      # quick mode, the output folder, figures inline in Jupyter
QUICK = tutorial.quick
rng = np.random.default_rng(0)


def best_time(fn, repeats=3):
    """Fastest of a few runs, in milliseconds (the first call may compile)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


# %% [markdown]
# ## Max pooling, as loops
#
# A (kH, kW) window slides over each (H, W) plane with stride s; each output is
# the largest value in its window. With padding p the window may hang over the
# edge; the padding counts as $-\infty$, so it never wins:
#
# $$\text{out}[n, c, i, j] = \max_{d_i, d_j}\; x[n, c,\, i s - p + d_i,\, j s - p + d_j], \qquad
# O_H = \left\lfloor \frac{H + 2p - k_H}{s} \right\rfloor + 1.$$
#
# For the backward pass we also remember *where* each max came from (argmax).

# %%
def max_pool2d_loops(x, k, s, p):
    n_batch, channels, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.empty((n_batch, channels, oh, ow), x.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    best = -np.inf
                    for di in range(k):
                        for dj in range(k):
                            r, col = i * s - p + di, j * s - p + dj
                            if 0 <= r < h and 0 <= col < w and x[n, c, r, col] > best:
                                best = x[n, c, r, col]
                    out[n, c, i, j] = best
    return out


shape = (2, 4, 12, 12) if QUICK else (8, 16, 28, 28)
x = rng.standard_normal(shape).astype(np.float32)        # (N, C, H, W)
y_loops = max_pool2d_loops(x, 2, 2, 0)                   # (N, C, 14, 14) for 28x28
print("loops output:", y_loops.shape)

# %% [markdown]
# ## With NumPy: look at all windows at once
#
# `sliding_window_view` gives every (k, k) window as a view, without copying:
# shape (N, C, H-k+1, W-k+1, k, k). Keeping every s-th window gives the strided
# ones, and `max` over the last two axes does the rest.

# %%
def max_pool2d_numpy(x, k, s):
    windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # (N, C, OH, OW, k, k)
    return windows.max(axis=(-2, -1))


y_numpy = max_pool2d_numpy(x, 2, 2)
assert np.array_equal(y_numpy, y_loops)
print("NumPy matches the loops exactly")

# %% [markdown]
# ## With Numba: minidl's kernel
#
# `minidl/kernels/pooling.py` holds the same loops, decorated with
# `@njit(parallel=True, cache=True)`: the outer loop runs over the N*C planes in
# parallel (each plane belongs to one thread, so the backward scatter has no
# races). It returns the argmax too. `max_pool2d_forward` calls it (the
# "numba" backend is the default; small inputs run on one thread, where a
# parallel region would cost more than it saves). `F.max_pool2d` calls that.

# %%
y_numba, argmax = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
assert np.array_equal(y_numba, y_loops)
assert np.array_equal(F.max_pool2d(mdl.tensor(x), 2).data, y_loops)
print("Numba kernel and F.max_pool2d match; argmax shape", argmax.shape)

timings = {
    "Python loops": best_time(lambda: max_pool2d_loops(x, 2, 2, 0), repeats=1),
    "NumPy windows": best_time(lambda: max_pool2d_numpy(x, 2, 2)),
    "Numba kernel": best_time(lambda: max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))),
}
for name, ms in timings.items():
    print(f"{name:>14}: {ms:9.3f} ms")

fig, ax = plt.subplots(figsize=(6, 2.6))
ax.barh(list(timings), list(timings.values()), color=["tab:red", "tab:orange", "tab:green"])
ax.set_xscale("log")
ax.set_xlabel("milliseconds (log scale)")
ax.set_title(f"max_pool2d 2x2 forward on {shape}")
fig.tight_layout()
tutorial.show(fig, "pool_timings.png")

# %% [markdown]
# **Reading the timings.** The interpreted loops pay the Python interpreter for
# every comparison, so they are slower by orders of magnitude. NumPy's windowed
# `max` and the compiled kernel do the same comparisons in machine code; the
# kernel also records the argmax for the backward pass, which the NumPy line
# above does not, and on a large batch splits the planes over threads. They
# are the best of three runs: on a busy machine every number grows, and the
# NumPy/Numba ratio can move by a factor of two between runs, so compare
# within one run (`minidl bench pool` repeats them in several processes).

# %% [markdown]
# ## Where the gradient goes
#
# Max pooling passes each window's gradient to the one element that won.
# When windows overlap (stride < kernel) an element can win several windows
# and collects all their gradients; when a window holds a tie, PyTorch (and
# minidl) give the gradient to the first maximum in scan order, not to all.

# %%
peak = mdl.tensor(np.array([[1, 2, 1], [2, 9, 2], [1, 2, 1]], np.float32)[None, None],
                  requires_grad=True)
F.max_pool2d(peak, kernel_size=2, stride=1).sum().backward()
print("overlapping windows, one shared max:\n", peak.grad[0, 0])

flat = mdl.tensor(np.ones((1, 1, 3, 3), np.float32), requires_grad=True)
F.max_pool2d(flat, kernel_size=2, stride=1).sum().backward()
print("all ties: each window's first element gets its gradient:\n", flat.grad[0, 0])

# a smooth picture, pooled both ways, and the max-pool gradient map
yy, xx = np.mgrid[0:32, 0:32] / 32.0
picture = (np.sin(6 * xx) * np.cos(4 * yy) + 0.3 * rng.standard_normal((32, 32))).astype(np.float32)
img = mdl.tensor(picture[None, None], requires_grad=True)
pooled_max = F.max_pool2d(img, 3, stride=2, padding=1)
pooled_max.sum().backward()
pooled_avg = F.avg_pool2d(mdl.tensor(picture[None, None]), 3, stride=2, padding=1)

fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for ax, (title, image) in zip(axes, [("input 32x32", picture),
                                     ("max_pool2d k3 s2 p1", pooled_max.data[0, 0]),
                                     ("avg_pool2d k3 s2 p1", pooled_avg.data[0, 0]),
                                     ("max-pool gradient (count)", img.grad[0, 0])]):
    shown = ax.imshow(image, cmap="viridis")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
tutorial.show(fig, "pooling_pictures.png")
print("the gradient map is zero except at window winners; its sum is",
      img.grad.sum(), "= number of windows", pooled_max.data.size)

# %% [markdown]
# ## Softmax, and why the textbook formula breaks
#
# $$\mathrm{softmax}(x)_j = \frac{e^{x_j}}{\sum_k e^{x_k}} = \frac{e^{x_j - m}}{\sum_k e^{x_k - m}}, \qquad m = \max_k x_k.$$
#
# In float32, `exp(89)` is already inf, so a row with a logit above 88.7 gives
# inf / inf = NaN. Subtracting the row max first changes nothing mathematically
# (the factor $e^{-m}$ cancels) but keeps every exponent $\le 0$: the largest
# term is exactly 1, the sum is between 1 and n, nothing overflows. Below, 200
# rows of 10 standard-normal logits, all float32, are multiplied by a growing
# scale (as a float32 number: NumPy 2 would turn `float32_array * float64_scalar`
# into float64, whose exp overflows only above 709).

# %%
def softmax_naive(x):
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_stable(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


logits = np.array([[1.0, 2.0, 3.0]], np.float32)
for scale in (1, 30, 100):
    with np.errstate(over="ignore", invalid="ignore"):
        naive = softmax_naive(logits * scale)
    print(f"scale {scale:>3}: naive {naive[0]}, stable {softmax_stable(logits * scale)[0]}")

scales = np.geomspace(1, 1e4, 40)
nan_rows = []
base = rng.standard_normal((200, 10)).astype(np.float32)
for scale in scales:
    scaled = base * np.float32(scale)                                   # stays float32
    assert scaled.dtype == np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        nan_rows.append(np.isnan(softmax_naive(scaled)).any(axis=1).mean())
first = scales[np.argmax(np.array(nan_rows) > 0)]
print(f"first NaN rows at scale {first:.0f}: the largest logit times the scale passes 88.7 "
      f"(largest logit here {base.max():.2f}, and 88.7 / {base.max():.2f} = {88.7 / base.max():.0f})")
fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogx(scales, nan_rows, label="naive exp(x) / sum exp(x)")
ax.semilogx(scales, [np.isnan(F.softmax(mdl.tensor(base * np.float32(s))).data).any(axis=1).mean()
                     for s in scales], "--", label="minidl F.softmax (max subtracted)")
ax.set_xlabel("logit scale")
ax.set_ylabel("fraction of rows with NaN")
ax.set_title("float32 softmax of 200 rows of 10 logits")
ax.legend()
fig.tight_layout()
tutorial.show(fig, "softmax_overflow.png")

# %% [markdown]
# `log(softmax(x))` has the opposite problem: tiny probabilities underflow to 0
# and their log is $-\infty$. `log_softmax` computes
# $(x - m) - \log \sum_k e^{x_k - m}$ directly and stays finite. Special values follow PyTorch: a -inf logit gets
# probability 0; a row that is entirely -inf has nothing to normalise and
# comes out NaN.

# %%
far = np.array([[0.0, -200.0]], np.float32)
with np.errstate(divide="ignore"):                      # log(0) = -inf is the point here
    print("log(softmax):", np.log(F.softmax(mdl.tensor(far)).data)[0],
          " log_softmax:", F.log_softmax(mdl.tensor(far)).data[0])
special = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]], np.float32)
print("with -inf entries:\n", F.softmax(mdl.tensor(special)).data)

# %% [markdown]
# ## The backward pass never builds the Jacobian
#
# With $y = \mathrm{softmax}(x)$, $\partial y_i / \partial x_j = y_i(\delta_{ij} - y_j)$,
# an n x n matrix per row. But the backward only needs the upstream gradient
# $g$ times that matrix, which simplifies to
#
# $$\frac{\partial L}{\partial x} = y \odot \Big(g - \sum_i g_i y_i\Big):$$
#
# O(n) per row instead of O(n²). We check it against the explicit Jacobian.

# %%
row = rng.standard_normal(6)
g = rng.standard_normal(6)
t = mdl.tensor(row[None], requires_grad=True)
F.softmax(t).backward(g[None])
p = softmax_stable(row[None])[0]
jacobian = np.diag(p) - np.outer(p, p)                    # (6, 6)
print("fused backward == g @ Jacobian:", np.allclose(t.grad[0], g @ jacobian))

# %% [markdown]
# ## Making the Numba softmax fast: a polynomial exp
#
# Inside a Numba loop `np.exp` is a scalar library call per element, which
# dominates a row softmax. minidl's `fast_exp` writes exp as plain arithmetic
# the compiler can vectorise: $e^x = 2^k e^r$ with $k = \mathrm{round}(x / \ln 2)$
# and $|r| \le \ln(2)/2$, a degree-13 polynomial for $e^r$, and $2^k$ built
# from its exponent bits. Its relative error is about one float64 ulp. In the
# plot, points where `fast_exp` equals `np.exp` exactly (error 0) are drawn on
# the bottom line at 1e-18, because a log axis cannot show 0:

# %%
xs = np.linspace(-700, 700, 20_001 if QUICK else 200_001)
rel = np.abs(fast_exp_array(xs) - np.exp(xs)) / np.exp(xs)
print(f"fast_exp max relative error on [-700, 700]: {rel.max():.2e}")
fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogy(xs, np.maximum(rel, 1e-18), ",")
ax.axhline(np.finfo(np.float64).eps, color="tab:red", label="float64 epsilon")
ax.set_xlabel("x")
ax.set_ylabel("relative error vs np.exp")
ax.set_title(f"fast_exp vs np.exp ({np.mean(rel == 0):.0%} exact, drawn at 1e-18)")
ax.legend()
fig.tight_layout()
tutorial.show(fig, "fast_exp_error.png")

rows = np.asarray(rng.standard_normal((256, 100) if QUICK else (4096, 1000)) * 4, np.float32)
with mdl.kernels.use("numpy"):
    numpy_ms = best_time(lambda: F.softmax(mdl.tensor(rows)))
numba_ms = best_time(lambda: F.softmax(mdl.tensor(rows)))
assert np.allclose(F.softmax(mdl.tensor(rows)).data, softmax_stable(rows), atol=1e-6)
print(f"softmax {rows.shape}: NumPy twin {numpy_ms:.2f} ms, Numba kernel {numba_ms:.2f} ms "
      f"(ratio {numpy_ms / numba_ms:.1f})")

# %% [markdown]
# The two lines time the same `F.softmax` call, once with the NumPy twin and
# once with the Numba kernel: the kernel reads each row once for its max and
# once for the polynomial exp and the sum, where NumPy makes several passes
# with temporary arrays. Best of three runs; a loaded machine slows both and
# can shift their ratio between runs, so compare them within one run, and see
# `minidl bench softmax` for a measurement repeated in several processes.

# %% [markdown]
# ## Summary
#
# - Pooling is a window reduction; NumPy's `sliding_window_view` expresses it
#   without loops, Numba runs the loops themselves in parallel over planes.
# - Max pooling routes each window's gradient to one winner (the first, on a
#   tie); overlapping windows add up. Average pooling (padding counted) spreads
#   it evenly.
# - Softmax must subtract the row max; log_softmax must not go through log(softmax).
# - The backward of softmax is O(n) per row: `y * (g - sum(g * y))`.
#
# ## Exercises
#
# Exercises 1 and 3 have checks: `minidl check 03 --init` copies a skeleton to
# `exercises/03_pooling_and_softmax.py`; fill it in, then `minidl check 03`
# says, per exercise, whether it is right, with a hint when it is not.
#
# 1. Write the backward of `max_pool2d_loops` by hand,
#    `max_pool2d_backward(x, grad_out, k, s)` (find each window's first
#    maximum again, or keep the argmax), and check it against `F.max_pool2d`
#    on an input with ties.
# 2. Change the tie rule so the gradient is split equally among tied elements.
#    Is the result still a valid (sub)gradient? Why does PyTorch not do this?
# 3. Implement `avg_pool2d_exclude_pad(x, k, s, p)`, average pooling with
#    `count_include_pad=False` (divide by the number of real pixels in each
#    window), and compare it with `F.avg_pool2d` at the image border.
# 4. With $z = \mathrm{log\_softmax}(x)$ (so $e^z$ is the softmax), derive the
#    backward of log_softmax: $\partial L/\partial x = g - e^{z} \sum_i g_i$.
# 5. Drop the polynomial in `fast_exp` to degree 6. How large does the
#    relative error get, and would it matter for float32 softmax?
