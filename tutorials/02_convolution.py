# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 · Convolution, from seven loops to a compiled kernel
#
# A convolution layer slides small filters over an image. In this tutorial we
# write it four times, each version checked against the one before and timed:
#
# 1. seven nested Python loops, straight from the definition;
# 2. **im2col** with NumPy: copy every patch into a column, then one matrix product;
# 3. the same im2col as a **Numba** loop kernel (minidl's own), compiled;
# 4. minidl's differentiable `F.conv2d`, which also gives gradients;
#
# then we derive the **backward pass** (the gradients with respect to the
# weights and the input) from the same column matrix and check it, and apply
# hand-made edge filters to a handwritten digit.
#
# Run it as a script (`python tutorials/02_convolution.py`) or as a notebook
# (jupytext). `MINIDL_QUICK=1` shrinks the shapes so the whole file runs in a
# few seconds. Prerequisite: tutorial 01 (autograd, gradcheck). The three
# pictures (`02_im2col.png`, `02_conv_timings.png`, `02_conv_filters.png`) go
# to `$MINIDL_TUTORIAL_OUT` (default `tutorial_outputs/`) and, in a notebook,
# also appear below their cells.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import minidl as mdl
import minidl.functional as F
from minidl import viz
from minidl.kernels.conv import col2im, im2col
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("02")      # quick mode, the output folder, figures inline in Jupyter
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
# ## The definition, as seven loops
#
# For an input `x` of shape (N, C, H, W) and a weight of shape (O, C, kH, kW),
# with stride $s$ and zero padding $p$ (`x_pad` is `x` with $p$ zeros on every side):
#
# $$\text{out}[n, o, o_y, o_x] = \sum_{c}\sum_{i}\sum_{j} w[o, c, i, j]\; x_\text{pad}[n, c, o_y s + i, o_x s + j].$$
#
# Four loops pick the output element (n, o, oy, ox); three more sum over the
# input channel c and the kernel position (i, j). Like PyTorch, we do not flip
# the kernel: strictly speaking this is a cross-correlation.

# %%
def conv2d_loops(x, w, stride=1, padding=0):
    n_batch, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n_batch, c_out, ho, wo), x.dtype)
    for n in range(n_batch):
        for o in range(c_out):
            for oy in range(ho):
                for ox in range(wo):
                    total = 0.0
                    for c in range(c_in):
                        for i in range(kh):
                            for j in range(kw):
                                total += w[o, c, i, j] * x_pad[n, c, oy * stride + i, ox * stride + j]
                    out[n, o, oy, ox] = total
    return out


# a batch of images and a bank of 3x3 filters (small: the loops are slow)
N, C, O, H = (2, 2, 4, 8) if QUICK else (4, 3, 8, 16)
x = rng.standard_normal((N, C, H, H)).astype(np.float32)      # (N, C, H, W)
w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)      # (O, C, kH, kW)
out_loops = conv2d_loops(x, w, padding=1)                      # (N, O, H, W)
print("output shape:", out_loops.shape)

# %% [markdown]
# ## im2col: turn the convolution into one matrix product
#
# Every output pixel reads one C x kH x kW patch. Lay each patch out as a row
# of a matrix `cols` (one row per output pixel), flatten the filters into a
# matrix `W` (one row per filter), and the convolution is `cols @ W.T`.
# NumPy's `sliding_window_view` gives all patches as a view without copying;
# the `reshape` then copies them into the matrix.
#
# minidl's kernels use the transposed layout, one *column* per output pixel.
# The diagram numbers the pixels of a 4x4 image (padding 1 adds the grey
# zeros) and shows the column matrix of a 3x3 convolution: one row per tap
# (i, j), one column per output pixel, the marked column being the window of
# output pixel 5. Each input pixel appears up to nine times: im2col trades
# memory for one large matrix product.

# %%
def conv2d_im2col_numpy(x, w, stride=1, padding=0):
    n_batch, c_in, _, _ = x.shape
    c_out, _, kh, kw = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    patches = sliding_window_view(x_pad, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, kH, kW)
    ho, wo = patches.shape[2:4]
    cols = patches.transpose(0, 2, 3, 1, 4, 5).reshape(n_batch * ho * wo, c_in * kh * kw)  # (N*Ho*Wo, C*kH*kW)
    out = cols @ w.reshape(c_out, -1).T                                                      # (N*Ho*Wo, O)
    return out.reshape(n_batch, ho, wo, c_out).transpose(0, 3, 1, 2)                         # (N, O, Ho, Wo)


out_numpy = conv2d_im2col_numpy(x, w, padding=1)
np.testing.assert_allclose(out_numpy, out_loops, rtol=1e-4, atol=1e-4)
print("im2col + matmul agrees with the seven loops")
tutorial.show(viz.plot_im2col(tutorial.path("im2col.png"), height=4, width=4, kernel=3, padding=1, highlight=5))

# %% [markdown]
# ## The Numba kernel
#
# minidl's readable `im2col` (in `minidl/kernels/conv.py`) is a plain loop over
# the rows of the column matrix, compiled by Numba. It uses the transposed
# layout: one row per (channel, kernel row, kernel column), one column per
# output pixel, so the product is `W @ cols`. Read its docstring: the comment
# on each index line says which pixel it copies. Here we call it per sample,
# then multiply. These readable loops are what `minidl.kernels.use("python")`
# runs (interpreted). The default "numba" backend runs an optimised version of
# the same computation, `minidl/kernels/conv_fast.py`: a parallel loop over
# blocks of samples, each sample copied once into a zero-padded buffer so that
# the column copies need no padding tests (for stride 1, one contiguous copy
# per row), and the columns of several samples set side by side so that one
# single-threaded matrix product serves a whole chunk of samples (small images
# alone make products too small for BLAS to reach its speed). Its docstring
# lists each difference, and the tests hold it equal to the readable loops.

# %%
def conv2d_im2col_numba(x, w, stride=1, padding=0):
    n_batch, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    cols = np.empty((c_in * kh * kw, ho * wo), x.dtype)            # (C*kH*kW, Ho*Wo)
    out = np.empty((n_batch, c_out, ho * wo), x.dtype)              # (N, O, Ho*Wo)
    w_mat = w.reshape(c_out, -1)                                    # (O, C*kH*kW)
    for n in range(n_batch):
        # arguments: x, first channel, kernel, stride, padding, dilation, output size, sample, columns
        im2col(x, 0, kh, kw, stride, stride, padding, padding, 1, 1, ho, wo, n, cols)
        out[n] = w_mat @ cols
    return out.reshape(n_batch, c_out, ho, wo)


out_numba = conv2d_im2col_numba(x, w, padding=1)
np.testing.assert_allclose(out_numba, out_numpy, rtol=1e-4, atol=1e-4)
print("the Numba im2col agrees with NumPy's")

# %% [markdown]
# ## minidl's `F.conv2d`
#
# The op checks its arguments, runs the kernel chosen by
# `minidl.kernels.use(...)` ("numba" by default) and records how to compute the
# gradients. We check it against the previous version, and its gradient against
# finite differences on a tiny float64 problem.

# %%
out_minidl = F.conv2d(mdl.tensor(x), mdl.tensor(w), padding=1).data
np.testing.assert_allclose(out_minidl, out_numba, rtol=1e-4, atol=1e-4)
tiny_x, tiny_w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
assert mdl.gradcheck(lambda a, b: F.conv2d(a, b, padding=1), [tiny_x, tiny_w])
print("F.conv2d agrees, and its gradients pass gradcheck")

# %% [markdown]
# ## The backward pass, from the same columns
#
# Write the forward for one sample as a matrix product, with
# $X_\text{col}$ = `cols` of shape (C kH kW, Ho Wo) and $W$ the filters
# flattened to (O, C kH kW):
#
# $$Y = W X_\text{col}, \qquad Y: (O, H_o W_o).$$
#
# Given the gradient $G = \partial L / \partial Y$ (same shape as $Y$), the
# matrix-product rule of tutorial 01b gives
#
# $$\frac{\partial L}{\partial W} = G\, X_\text{col}^\top \;\;(\text{summed over samples}), \qquad \frac{\partial L}{\partial X_\text{col}} = W^\top G.$$
#
# $\partial L/\partial X_\text{col}$ is a gradient for the *columns*, not for
# the image. Each column entry was copied from one input pixel (or from
# padding), so each pixel's gradient is the sum of the gradients of all its
# copies: that sum is **col2im**, which adds every column entry back onto the
# pixel it came from. col2im is the adjoint (transpose) of im2col, and
# $\partial L / \partial x = \mathrm{col2im}(W^\top G)$ is itself a
# convolution, with the filters transposed and flipped: the *transposed
# convolution* (`F.conv_transpose2d`). We build both gradients from minidl's
# `im2col` and `col2im` kernels and compare them with what autograd gives for
# `F.conv2d`, in float64; `gradcheck` already tied `F.conv2d` to finite
# differences above.

# %%
def conv2d_backward_by_columns(x, w, grad_out, padding):
    n_batch, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    ho, wo = grad_out.shape[2:]
    w_mat = w.reshape(c_out, -1)                                    # (O, C*kH*kW)
    cols = np.empty((c_in * kh * kw, ho * wo), x.dtype)             # (C*kH*kW, Ho*Wo)
    grad_w = np.zeros_like(w_mat)                                   # (O, C*kH*kW)
    grad_x = np.zeros_like(x)                                       # (N, C, H, W), col2im adds into it
    for n in range(n_batch):
        g = grad_out[n].reshape(c_out, ho * wo)                     # (O, Ho*Wo)
        im2col(x, 0, kh, kw, 1, 1, padding, padding, 1, 1, ho, wo, n, cols)
        grad_w += g @ cols.T                                        # dL/dW = G cols^T
        grad_cols = np.ascontiguousarray(w_mat.T @ g)               # (C*kH*kW, Ho*Wo), dL/dcols = W^T G
        col2im(grad_cols, 0, kh, kw, 1, 1, padding, padding, 1, 1, ho, wo, n, grad_x)
    return grad_w.reshape(w.shape), grad_x


x64, w64 = x.astype(np.float64), w.astype(np.float64)
grad_out = rng.standard_normal(out_loops.shape)                     # any upstream gradient G
xt, wt = mdl.tensor(x64, requires_grad=True), mdl.tensor(w64, requires_grad=True)
(F.conv2d(xt, wt, padding=1) * mdl.tensor(grad_out)).sum().backward()   # a loss whose dL/dY is G
grad_w, grad_x = conv2d_backward_by_columns(x64, w64, grad_out, padding=1)
print("dL/dW: largest difference from autograd", np.abs(grad_w - wt.grad).max())
print("dL/dx: largest difference from autograd", np.abs(grad_x - xt.grad).max())
np.testing.assert_allclose(grad_w, wt.grad, rtol=1e-10, atol=1e-10)
np.testing.assert_allclose(grad_x, xt.grad, rtol=1e-10, atol=1e-10)
transposed = F.conv_transpose2d(mdl.tensor(grad_out), mdl.tensor(w64), padding=1).data
print("col2im(W^T G) vs F.conv_transpose2d(G, W): largest difference", np.abs(grad_x - transposed).max())
np.testing.assert_allclose(grad_x, transposed, rtol=1e-10, atol=1e-10)

# %% [markdown]
# ## Timings
#
# The loops are timed on the small batch above; the other three also on a
# bigger one (a batch of 32 images of 32x32 with 16 channels, 32 filters).

# %%
timings = {"seven loops": best_time(lambda: conv2d_loops(x, w, padding=1), repeats=1)}
timings["im2col NumPy"] = best_time(lambda: conv2d_im2col_numpy(x, w, padding=1))
timings["im2col Numba"] = best_time(lambda: conv2d_im2col_numba(x, w, padding=1))
timings["F.conv2d"] = best_time(lambda: F.conv2d(mdl.tensor(x), mdl.tensor(w), padding=1))

big_shape = (4, 4, 8, 16) if QUICK else (32, 16, 32, 32)
bx = rng.standard_normal(big_shape[:2] + (big_shape[3], big_shape[3])).astype(np.float32)
bw = rng.standard_normal((big_shape[2], big_shape[1], 3, 3)).astype(np.float32)
big = {"im2col NumPy": best_time(lambda: conv2d_im2col_numpy(bx, bw, padding=1)),
       "im2col Numba": best_time(lambda: conv2d_im2col_numba(bx, bw, padding=1)),
       "F.conv2d": best_time(lambda: F.conv2d(mdl.tensor(bx), mdl.tensor(bw), padding=1))}
for name, ms in timings.items():
    print(f"small  {name:<14} {ms:10.3f} ms")
for name, ms in big.items():
    print(f"big    {name:<14} {ms:10.3f} ms")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].barh(list(timings), list(timings.values()), color="tab:blue")
axes[0].set_xscale("log")
axes[0].set_title(f"small: {x.shape} * {w.shape}")
axes[1].barh(list(big), list(big.values()), color="tab:orange")
axes[1].set_xscale("log")
axes[1].set_title(f"big: {bx.shape} * {bw.shape}")
for ax in axes:
    ax.set_xlabel("milliseconds (log scale, best of 3)")
    ax.invert_yaxis()
fig.tight_layout()
tutorial.show(fig, "conv_timings.png")
ratio = big["im2col Numba"] / big["im2col NumPy"]
print(f"big batch: this tutorial's Numba im2col takes {ratio:.2f}x the time of the NumPy im2col; "
      f"F.conv2d takes {big['F.conv2d'] / big['im2col NumPy']:.2f}x")

# %% [markdown]
# **Reading the table.** The seven Python loops are hundreds to thousands of
# times slower than everything else: each multiply-add pays for the
# interpreter. The three im2col versions do the same matrix products, so their
# times are close, and which of the two hand-written ones wins depends on the
# shapes and the machine: our `conv2d_im2col_numba` copies the columns one sample at a time
# and runs one matrix product per sample, while the NumPy version copies with
# one big `reshape` and runs a single large product, which a multi-threaded
# BLAS spreads over all cores. `F.conv2d` runs minidl's optimised kernel
# (`conv_fast.py`: blocks of samples in parallel, a chunk of samples per
# matrix product, no padding tests in the copy) plus the
# cost of an op (argument checks, a Tensor around the result). Times are the
# best of three runs; on a busy machine (other programs, or a load average
# near the number of cores) every number grows and the ratios can move by a
# factor of two, so compare versions within one run, and run the file twice
# before trusting a difference of less than about 30%. `minidl bench conv`
# measures them more carefully, in several processes.

# %% [markdown]
# ## What filters see
#
# Trained convolution layers often learn filters that look like these
# hand-made ones: edge detectors (Sobel) for each direction, a spot detector
# (Laplacian) and a blur. We apply them to a handwritten digit from the bundled
# UCI digits (8x8, smoothly enlarged to 32x32) and show each filter with its
# response (red positive, blue negative).

# %%
try:
    from minidl.data import load_dataset
    from scipy.ndimage import zoom
    digit = load_dataset("digits", "train").images[0, 0]                 # (8, 8) in [0, 1]
    image = np.clip(zoom(digit, 4, order=3), 0, 1).astype(np.float32)    # (32, 32), cubic interpolation
except Exception:                                                        # data package missing
    yy, xx = np.mgrid[-1:1:32j, -1:1:32j]
    image = ((np.abs(np.hypot(xx, yy) - 0.6) < 0.15)).astype(np.float32)  # a ring

filters = {
    "vertical edges (Sobel x)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "horizontal edges (Sobel y)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "diagonal edges": [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
    "spots (Laplacian)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "blur": [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
}
bank = np.array(list(filters.values()), np.float32)[:, None]            # (5, 1, 3, 3)
bank[-1] /= bank[-1].sum()
responses = F.conv2d(mdl.tensor(image[None, None]), mdl.tensor(bank), padding=1).data[0]  # (5, 32, 32)

fig, axes = plt.subplots(2, len(filters) + 1, figsize=(2.6 * (len(filters) + 1), 5.0))
axes[0, 0].imshow(image, cmap="gray")
axes[0, 0].set_title("input")
axes[1, 0].axis("off")
for k, name in enumerate(filters):
    weights = axes[0, k + 1].imshow(bank[k, 0], cmap="RdBu_r", vmin=-np.abs(bank[k]).max(),
                                    vmax=np.abs(bank[k]).max())
    fig.colorbar(weights, ax=axes[0, k + 1], fraction=0.046, pad=0.04)
    axes[0, k + 1].set_title(name, fontsize=8)
    scale = np.abs(responses[k]).max()
    response = axes[1, k + 1].imshow(responses[k], cmap="RdBu_r", vmin=-scale, vmax=scale)
    fig.colorbar(response, ax=axes[1, k + 1], fraction=0.046, pad=0.04)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[1, 1].set_ylabel("response", fontsize=8)
fig.tight_layout()
tutorial.show(fig, "conv_filters.png")

# %% [markdown]
# ## Summary
#
# - A convolution is a sum over input channels and kernel taps for every output
#   pixel: seven loops, easy to read, far too slow in Python.
# - im2col copies the patches into a matrix so that one matrix product (BLAS)
#   does all the multiply-adds; the copy costs memory (kH*kW times the input)
#   but the product runs near the machine's peak.
# - The same im2col written as a Numba loop is a plain loop you can read and
#   step through; by itself it is not faster than NumPy's gather. minidl's
#   fast path (`conv_fast.py`) runs the samples in parallel, each with a
#   single-threaded matrix product, so that only one thread pool is busy.
# - The gradient reuses the same pieces: $\partial L/\partial W = G X_\text{col}^\top$,
#   and $\partial L/\partial x$ is `col2im` (im2col's adjoint) of $W^\top G$.
#   `conv_transpose2d` is exactly that input-gradient computation, used forwards.
#
# ## Exercises
#
# Exercises 1 and 2 have checks: `minidl check 02 --init` copies a skeleton to
# `exercises/02_convolution.py`; fill it in, then `minidl check 02` says, per
# exercise, whether it is right, with a hint when it is not.
#
# 1. Add `dilation` to `conv2d_loops` (the tap (i, j) reads `x_pad[..., oy*s + i*d, ox*s + j*d]`)
#    and check it against `F.conv2d(..., dilation=2)`.
# 2. Write `col2im(cols, input_shape, kernel_size, stride, padding)` with NumPy
#    (loop over the kH*kW taps and add strided slices), in minidl's layout
#    (one row per tap (c, i, j), one column per output pixel), and check
#    `<im2col(x), y> == <x, col2im(y)>` for random x, y.
# 3. Time `F.conv2d` under `mdl.kernels.use("numpy")` and `use("numba")` as the
#    number of input channels grows: where does the matrix product start to dominate?
# 4. Make the blur filter 5x5 (a binomial kernel) and compare the Sobel response
#    of the blurred digit with that of the original.
