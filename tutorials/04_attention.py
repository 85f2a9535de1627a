# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 04 · Attention, from loops to a fused kernel
#
# Scaled dot-product attention is the heart of a Transformer. Each query
# vector q_i looks at every key k_j, scores how well they match, turns the
# scores into weights with a softmax, and returns the weighted average of the
# values v_j:
#
# $$s_{ij} = \frac{q_i \cdot k_j}{\sqrt{E}}, \qquad p_{ij} = \frac{e^{s_{ij}}}{\sum_{j'} e^{s_{ij'}}}, \qquad \text{out}_i = \sum_j p_{ij}\, v_j.$$
#
# With a mask, some scores are set to $-\infty$ before the softmax ("query i
# may not look at key j"): a *causal* mask hides the future (j > i) in a
# language model. The shapes, for one head with L queries and S keys (a batch
# and heads add leading axes):
#
# We write it three ways, each checked against the last and timed:
#
# 1. **loops**, straight from the formula;
# 2. **NumPy**: the whole L x S score matrix at once, as most code does;
# 3. the **fused kernel** behind `minidl.functional.scaled_dot_product_attention`,
#    which never stores that whole matrix: with a causal mask over more than
#    256 positions it walks it in small tiles thanks to the *online softmax*;
#    otherwise in blocks of 128 query rows.
#
# Then we derive the backward pass and check it against the fused kernel,
# look at attention weights as a heat map and measure memory against sequence
# length. Run as a script or a notebook; `MINIDL_QUICK=1` makes it run in
# seconds. Prerequisites: tutorials 01 and 03 (softmax and its backward). The
# three pictures (`04_*.png`) go to `$MINIDL_TUTORIAL_OUT` (default
# `tutorial_outputs/`) and, in a notebook, also appear below their cells.

# %%
import math
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

import minidl as mdl
import minidl.functional as F
from minidl import kernels, viz
from minidl.threads import numba_threads
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("04")      # quick mode, the output folder, figures inline in Jupyter
QUICK = tutorial.quick
rng = np.random.default_rng(0)
tutorial.show(viz.plot_attention_shapes(tutorial.path("attention_shapes.png"), L=4, S=6, E=3, Ev=2))


def best_time(fn, repeat=3):
    """Best of `repeat` wall-clock times of fn(), in milliseconds (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


# %% [markdown]
# ## 1. Loops, straight from the formula
#
# One query at a time: score every key, take the softmax (subtracting the
# largest score first, so that exp never overflows), average the values.

# %%
def attention_loops(q, k, v, causal=False):
    L, E = q.shape
    S, Ev = v.shape
    out = np.zeros((L, Ev))
    for i in range(L):
        scores = []
        for j in range(S):
            if causal and j > i:
                scores.append(-math.inf)                       # query i may not see key j
            else:
                scores.append(sum(q[i, e] * k[j, e] for e in range(E)) / math.sqrt(E))
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]        # exp(-inf) = 0
        total = sum(weights)
        for j in range(S):
            for d in range(Ev):
                out[i, d] += weights[j] / total * v[j, d]
    return out


L, S, E = 6, 8, 4
q, k, v = rng.standard_normal((L, E)), rng.standard_normal((S, E)), rng.standard_normal((S, E))
out_loops = attention_loops(q, k, v)
print("loops output, first row:", np.round(out_loops[0], 4))

# %% [markdown]
# ## 2. NumPy: the whole score matrix at once
#
# `q @ k.T` gives every score in one matrix product; the softmax runs along
# each row; one more product averages the values. Short and fast, but it
# builds an L x S matrix (and a few temporaries of that size) per head.

# %%
def attention_numpy(q, k, v, causal=False):
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])          # (..., L, S)
    if causal:
        L, S = scores.shape[-2:]
        scores = np.where(np.tril(np.ones((L, S), dtype=bool)), scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)                    # (..., L, S)
    return weights @ v                                                # (..., L, Ev)


out_numpy = attention_numpy(q, k, v)
print("NumPy vs loops, max difference:", np.abs(out_numpy - out_loops).max())
assert np.allclose(out_numpy, out_loops, atol=1e-12)
assert np.allclose(attention_numpy(q, k, v, causal=True), attention_loops(q, k, v, causal=True),
                   atol=1e-12)

# %% [markdown]
# ## 3. The online softmax: one pass over the keys, no score matrix
#
# Can we compute out_i while reading the keys block by block, keeping only a
# few numbers per query? The softmax seems to need the maximum and the sum of
# *all* scores first. The trick is to keep running values and repair them:
#
# $$m = \max_{j \text{ so far}} s_j, \qquad \ell = \sum_{j \text{ so far}} e^{s_j - m}, \qquad \text{acc} = \sum_{j \text{ so far}} e^{s_j - m}\, v_j.$$
#
# When a new block brings a larger maximum $m'$, everything accumulated so far
# was computed relative to the old $m$, and $e^{s - m} = e^{s - m'} e^{m' - m}$,
# so we multiply $\ell$ and acc by $\alpha = e^{m - m'}$ and carry on. At the
# end, $\text{out} = \text{acc} / \ell$. This is the "online softmax" of FlashAttention; the memory
# per query is one row of Ev numbers plus two scalars, whatever S is.

# %%
def attention_online(q, k, v, block=3):
    L, E = q.shape
    out = np.zeros((L, v.shape[1]))
    for i in range(L):
        m, l, acc = -np.inf, 0.0, np.zeros(v.shape[1])
        for j0 in range(0, k.shape[0], block):                   # one block of keys at a time
            s = k[j0:j0 + block] @ q[i] / math.sqrt(E)           # (block,) scores
            m_new = max(m, s.max())
            alpha = math.exp(m - m_new)                          # rescale the old sums
            p = np.exp(s - m_new)
            l = l * alpha + p.sum()
            acc = acc * alpha + p @ v[j0:j0 + block]
            m = m_new
        out[i] = acc / l
    return out


out_online = attention_online(q, k, v)
print("online softmax vs NumPy, max difference:", np.abs(out_online - out_numpy).max())
assert np.allclose(out_online, out_numpy, atol=1e-12)

# %% [markdown]
# minidl's fast kernel (`minidl/kernels/attention_fast.py`) does exactly this
# with Numba, for a block of 32 queries against blocks of 64 keys at a time, in
# parallel over (batch x heads x query blocks). It saves only the output and
# each row's log-sum-exp, lse_i = m_i + log(l_i); the backward pass rebuilds
# every weight as p_ij = exp(s_ij - lse_i), tile by tile, instead of storing them.
#
# Three implementations, selected with `minidl.kernels.use`: "numba" runs those
# tiled loops compiled; "python" runs the readable loops of
# `minidl/kernels/attention.py` interpreted (one query row at a time, the
# whole softmax then the weighted sum, like `attention_loops` above); "numpy"
# runs the NumPy twin. The tests hold the tiled loops equal to the readable ones.

# %%
B, H = (2, 2) if QUICK else (4, 8)
T, D = (64, 16) if QUICK else (256, 64)
qb, kb, vb = (rng.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(3))
results, timings = {}, {}
for backend in ("numba", "numpy"):
    with kernels.use(backend):
        results[backend] = F.scaled_dot_product_attention(qb, kb, vb, is_causal=True).data
        timings[backend] = best_time(
            lambda: F.scaled_dot_product_attention(qb, kb, vb, is_causal=True))
timings["student NumPy"] = best_time(lambda: attention_numpy(qb, kb, vb, causal=True))
tiny = (rng.standard_normal((1, 2, 8, 4)) for _ in range(3))
tq, tk, tv = tiny
with kernels.use("python"):
    timings["python (tiny 1x2x8x4)"] = best_time(
        lambda: F.scaled_dot_product_attention(tq, tk, tv, is_causal=True), repeat=1)
    tiny_python = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True).data
assert np.allclose(tiny_python, attention_numpy(tq, tk, tv, causal=True), atol=1e-12)
reference = attention_numpy(qb.astype(np.float64), kb.astype(np.float64), vb.astype(np.float64),
                            causal=True)
for name, out in results.items():
    print(f"{name:>6}: max difference from the float64 NumPy version {np.abs(out - reference).max():.2e}")
    assert np.allclose(out, reference, atol=1e-4)
print(f"causal attention, B{B} H{H} T{T} D{D} float32:")
for name, ms in timings.items():
    print(f"  {name:<24} {ms:8.2f} ms")

# %% [markdown]
# **Reading the timings.** "numba" and "numpy" are the same `F.scaled_dot_product_attention`
# call on two backends; "student NumPy" is `attention_numpy` above, without an
# op's argument checks or the log-sum-exp the backward needs; the interpreted
# "python" loops get only a tiny input, because every multiply-add goes
# through the Python interpreter.
# The NumPy versions spend their time in large matrix products and in passes
# over the T x T score matrix; the fused kernel does the same arithmetic in
# tiles that stay in the cache and runs tiles in parallel, so which is faster
# depends on T, D and the number of cores: at small T the NumPy products can
# win. Each number is the best of three runs. A loaded machine (other programs
# busy, load average near the number of cores) slows the parallel kernel most,
# and ratios can move by a factor of two between runs: compare within one run,
# and use `minidl bench attention`, which repeats in several processes.

# %% [markdown]
# ## The backward pass
#
# Write one head as three steps with saved intermediates,
# $S = QK^\top/\sqrt{E}$, $P = \mathrm{softmax}(S)$ row by row, $O = PV$.
# Given $dO = \partial L / \partial O$, the matrix-product rule gives
#
# $$dV = P^\top dO, \qquad dP = dO\, V^\top.$$
#
# Each row of $P$ is a softmax, whose backward (tutorial 03) is
# $dS_{i} = P_{i} \odot (dP_{i} - \sum_j dP_{ij} P_{ij})$. The sum simplifies:
# $\sum_j dP_{ij} P_{ij} = \sum_j P_{ij} (dO_i \cdot v_j) = dO_i \cdot O_i$, so
#
# $$dS = P \odot \big(dP - \mathrm{rowsum}(dO \odot O)\big), \qquad dQ = \frac{dS\, K}{\sqrt{E}}, \qquad dK = \frac{dS^\top Q}{\sqrt{E}}.$$
#
# Masked entries have $P_{ij} = 0$, so they get no gradient. The fused kernel
# does not store $P$: it rebuilds each tile as $P_{ij} = e^{S_{ij} - \mathrm{lse}_i}$
# from the saved log-sum-exp. Here is the whole backward in NumPy, checked
# against what autograd gets from the fused kernel:

# %%
def attention_backward_numpy(q, k, v, grad_out, causal=False):
    E = q.shape[-1]
    scores = q @ k.T / math.sqrt(E)                                   # (L, S)
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape, dtype=bool)), scores, -np.inf)
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)                                # (L, S) weights P
    out = p @ v                                                       # (L, Ev)
    grad_v = p.T @ grad_out                                           # (S, Ev)   dV = P^T dO
    grad_p = grad_out @ v.T                                           # (L, S)    dP = dO V^T
    grad_s = p * (grad_p - (grad_out * out).sum(axis=-1, keepdims=True))   # (L, S)
    return grad_s @ k / math.sqrt(E), grad_s.T @ q / math.sqrt(E), grad_v  # dQ (L, E), dK (S, E), dV


grad_out = rng.standard_normal((L, E))                                # dO for the (L, Ev = E) output
for causal in (False, True):
    qt, kt, vt = (mdl.tensor(a.copy(), requires_grad=True) for a in (q, k[:L], v[:L]))
    (F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal) * mdl.tensor(grad_out)).sum().backward()
    by_hand = attention_backward_numpy(q, k[:L], v[:L], grad_out, causal=causal)
    worst = max(np.abs(mine - t.grad).max() for mine, t in zip(by_hand, (qt, kt, vt)))
    print(f"{'causal' if causal else 'full'} attention: dQ, dK, dV by hand vs the fused kernel's "
          f"backward, largest difference {worst:.1e}")
    assert worst < 1e-10

# %% [markdown]
# And the fused backward is checked against finite differences in float64,
# the same way every minidl op is tested:

# %%
small = [rng.standard_normal((2, 4, 3)) for _ in range(3)]
print("gradcheck (causal):", mdl.gradcheck(lambda a, b, c: F.scaled_dot_product_attention(
    a, b, c, is_causal=True), small))

# %% [markdown]
# ## 4. What the weights look like
#
# `F.attention_weights` returns the (…, L, S) probabilities for plots. With a
# causal mask the upper triangle is exactly zero: token i only looks back.
# With a padding mask (the last keys are padding, False = may not attend)
# whole columns vanish.

# %%
n = 12
qs, ks = rng.standard_normal((n, 8)), rng.standard_normal((n, 8))
causal_w = F.attention_weights(qs, ks, is_causal=True).data               # (n, n)
padding = np.arange(n) < n - 4                                            # last 4 keys are padding
padded_w = F.attention_weights(qs, ks, attn_mask=padding).data            # (n, n)
assert np.all(np.triu(causal_w, 1) == 0) and np.allclose(causal_w.sum(-1), 1)
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, weights, title in ((axes[0], causal_w, "causal mask"), (axes[1], padded_w, "padding mask")):
    image = ax.imshow(weights, cmap="viridis", vmin=0)
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
fig.tight_layout()
tutorial.show(fig, "attention_weights.png")

# %% [markdown]
# ## 5. Memory against sequence length
#
# `tracemalloc` records every NumPy allocation, also those made inside a Numba
# kernel. We measure the peak during one forward of a single head (D = 64) as
# T grows: the NumPy version holds several T x T float32 matrices (4 T² bytes
# each), the fused kernel only the output, the log-sum-exp and, per thread,
# one block of scores: 128 x T floats here (no mask), a few small tiles with a
# causal mask over more than 512 positions. With two threads, whether their two blocks are alive at the same
# moment depends on timing, so we measure on one thread: exactly one block,
# and a curve that does not change from run to run. (Both curves also include
# the copies minidl makes when it wraps the NumPy inputs in Tensors:
# 3 x T x 64 floats.) `benchmarks/results/attention_memory.md` has the same
# measurement on two threads.

# %%
def peak_mib(backend, T):
    x = [rng.standard_normal((1, T, 64)).astype(np.float32) for _ in range(3)]
    with kernels.use(backend), numba_threads(1):
        F.scaled_dot_product_attention(*x)                           # warm-up
        tracemalloc.start()
        F.scaled_dot_product_attention(*x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


lengths = [128, 256, 512] if QUICK else [256, 512, 1024, 2048]
peaks = {b: [peak_mib(b, T) for T in lengths] for b in ("numba", "numpy")}
for i, T in enumerate(lengths):
    print(f"T={T:5d}: fused {peaks['numba'][i]:7.3f} MiB   NumPy twin {peaks['numpy'][i]:8.2f} MiB")
fig, ax = plt.subplots(figsize=(5.5, 4))
for backend, label in (("numba", "fused kernel (numba)"), ("numpy", "NumPy twin")):
    ax.loglog(lengths, peaks[backend], "o-", label=label)
ax.set_xlabel("sequence length T")
ax.set_ylabel("peak memory of one forward (MiB)")
ax.set_title("attention memory: linear vs quadratic in T")
ax.legend()
fig.tight_layout()
tutorial.show(fig, "attention_memory.png")
# doubling T doubles the fused peak, and quadruples the NumPy one
assert peaks["numba"][-1] / peaks["numba"][-2] < 2.6
assert peaks["numpy"][-1] / peaks["numpy"][-2] > 3.0

# %% [markdown]
# ## Summary
#
# - Attention is two matrix products around a row softmax; with loops it is a
#   dozen lines, with NumPy three.
# - The NumPy version stores an L x S matrix per head: memory grows as T².
# - The online softmax keeps a running maximum and sum per query and rescales
#   them when the maximum grows, so keys can be read block by block and memory
#   grows as T. Backward recomputes the weights from the saved log-sum-exp.
# - The backward is two products for dV and dP, the softmax backward
#   $dS = P \odot (dP - \mathrm{rowsum}(dO \odot O))$, and two products for
#   dQ and dK.
# - Masks are just -inf added to scores; a row with nothing to attend to gets
#   zeros in minidl (PyTorch's math backend gives NaN).
#
# ## Exercises
#
# Exercises 4 and 5 have checks: `minidl check 04 --init` copies a skeleton to
# `exercises/04_attention.py`; fill it in, then `minidl check 04` says, per
# exercise, whether it is right, with a hint when it is not.
#
# 1. In `attention_online`, print alpha for each block. When is it 1? When is
#    it tiny? What happens if you forget to rescale `acc`?
# 2. Change `attention_loops` to skip the max subtraction and try scores of
#    size 1000 (multiply q by 100). What breaks, and why does the online
#    version not need a separate max pass?
# 3. Derive $\sum_j dP_{ij} P_{ij} = dO_i \cdot O_i$ yourself, and check
#    `attention_backward_numpy` with `mdl.gradcheck` on a function that calls
#    it through a custom `Function` (tutorial 01's `WrongSquare` shows how).
# 4. Write `alibi_bias(L, S, slope)`, a float mask that favours recent tokens
#    (ALiBi: bias_ij = −slope·(i − j) for j <= i, and −inf for j > i), pass it
#    as `attn_mask` and plot the weights.
# 5. Write `attention_online_causal(q, k, v, block)`: `attention_online` with a
#    causal mask. Which key blocks can a query skip entirely?
