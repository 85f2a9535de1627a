# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 06 · Transformers: one attention head, a Vision Transformer, a GPT
#
# One small set of modules recognises images, writes text and draws digits:
#
# 1. **one attention head** in ten lines of NumPy, checked against minidl's
#    fused `F.scaled_dot_product_attention`; the causal mask;
# 2. **`nn.MultiheadAttention`**: several heads side by side, rebuilt by hand
#    from its weights; why attention needs positions; then the rest of a
#    Transformer block (LayerNorm, the MLP, residual connections, pre- and
#    post-norm), rebuilt by hand and checked against `nn.TransformerEncoderLayer`;
# 3. **a Vision Transformer** (ViT): an 8x8 digit cut into 16 patches, a class
#    token, four encoder layers; where the class token looks;
# 4. **a GPT**: the same blocks with a causal mask predict the next character
#    of *Hamlet*, then the next pixel of a digit whose class we ask for.
#
# Run it as a script (`python tutorials/06_transformer.py`) or as a notebook
# (jupytext). The full run trains three small models (a few minutes each on a
# laptop); `MINIDL_QUICK=1` trains each for a handful of steps only, so the
# pictures show untrained models. Pictures go to `$MINIDL_TUTORIAL_OUT`
# (default `tutorial_outputs/`). For models trained to their targets, use
# `minidl train vit`, `minidl train gpt`, `minidl train pixel-gpt`.
# Prerequisites: tutorial 01b (training loop, cross-entropy) and 04 (attention).
# The seven pictures (`06_*.png`) also appear below their cells in a notebook.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import minidl as mdl
import minidl.functional as F
from minidl import nn, optim, viz
from minidl.data import load_dataset
from minidl.models.gpt import GPT, GPTConfig
from minidl.models.vit import VisionTransformer
from minidl.threads import training_threads
from minidl.training.classifier import prepare_batch
from minidl.training.gpt import LEVELS, CharacterTask, PixelTask
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("06")      # quick mode, the output folder, figures inline in Jupyter
QUICK = tutorial.quick
rng = np.random.default_rng(0)
mdl.manual_seed(0)


def save(fig, name):
    fig.tight_layout()
    tutorial.show(fig, name)


# %% [markdown]
# ## 1. One attention head
#
# Every token (a row of $x$, shape (T, E)) asks a question (its query $q$),
# offers a label (its key $k$) and carries a message (its value $v$), all
# linear maps of the token: $q = xW_q$, $k = xW_k$, $v = xW_v$. Token $i$ then
# reads a weighted mix of everyone's messages, weighted by how well its
# question matches their labels:
#
# $$s_{ij} = \frac{q_i \cdot k_j}{\sqrt{d}}, \qquad a_{ij} = \frac{e^{s_{ij}}}{\sum_{j'} e^{s_{ij'}}}, \qquad \text{out}_i = \sum_j a_{ij}\, v_j,$$
#
# with $d$ the size of $q$ and $k$; each row of weights $a_{i\cdot}$ sums to 1.
# Dividing by $\sqrt{d}$ keeps the scores of random vectors near unit size, so
# the softmax does not saturate at initialisation. A **causal** head (GPT) may
# not read the future: $s_{ij} = -\infty$ for $j > i$.
#
# The shapes, for a head with L queries and S keys (here L = S = T, because
# every token of one sequence attends to the same sequence):

# %%
tutorial.show(viz.plot_attention_shapes(tutorial.path("attention_shapes.png"), L=4, S=6, E=3, Ev=2))

# %%
def attention_head(x, Wq, Wk, Wv, causal=False):
    q, k, v = x @ Wq, x @ Wk, x @ Wv                        # (T, d) each
    scores = q @ k.T / np.sqrt(q.shape[-1])                 # (T, T)
    if causal:
        scores = np.where(np.tril(np.ones_like(scores, dtype=bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)          # (T, T), rows sum to 1
    return weights @ v, weights                             # (T, d), (T, T)


T, E, d = 6, 16, 8
x = rng.standard_normal((T, E))                             # (T, E)
Wq, Wk, Wv = (rng.standard_normal((E, d)) / np.sqrt(E) for _ in range(3))
out, weights = attention_head(x, Wq, Wk, Wv, causal=True)

fused = F.scaled_dot_product_attention(*(mdl.tensor(x @ W) for W in (Wq, Wk, Wv)), is_causal=True)
print("largest difference from the fused kernel:", np.abs(fused.data - out).max())
assert np.allclose(fused.data, out, atol=1e-12)

fig, ax = plt.subplots(figsize=(4, 3))
image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
fig.colorbar(image, ax=ax, label="attention weight")
ax.set_xlabel("key j (read from)"), ax.set_ylabel("query i (reader)")
ax.set_title("one causal head")
save(fig, "one_head.png")

# %% [markdown]
# The causal mask is what lets a GPT train on every position of a sequence at
# once without cheating: output i depends on x[0..i] only. Change the last
# token and only the last output moves:

# %%
x_changed = x.copy()
x_changed[-1] += 1.0
out_changed, _ = attention_head(x_changed, Wq, Wk, Wv, causal=True)
print("change per position:", np.abs(out_changed - out).max(axis=1).round(6))

# %% [markdown]
# ## 2. Many heads: `nn.MultiheadAttention`
#
# One head mixes the values with one pattern of weights. Several heads, each
# with its own smaller q, k, v (d = E / heads), can look for different things
# at once: the previous letter, the start of the word, the same letter
# earlier... Their outputs are concatenated and mixed by one more matrix W_o.
# minidl stores the q, k and v matrices of all heads in one
# `in_proj_weight` (3E, E), like PyTorch. Rebuilding the module's output by
# hand from our `attention_head` checks that we understand every piece:

# %%
heads = 4
mha = nn.MultiheadAttention(E, heads).double()
W, b = mha.in_proj_weight.data, mha.in_proj_bias.data       # (3E, E), (3E,)
dh = E // heads
by_hand = []
for h in range(heads):
    rows = [slice(part * E + h * dh, part * E + (h + 1) * dh) for part in range(3)]
    xb = np.concatenate([x, np.ones((T, 1))], axis=1)         # bias as an extra input column
    Wq_h, Wk_h, Wv_h = (np.concatenate([W[r].T, b[r][None]], axis=0) for r in rows)
    by_hand.append(attention_head(xb, Wq_h, Wk_h, Wv_h, causal=True)[0])     # (T, dh)
by_hand = np.concatenate(by_hand, axis=1) @ mha.out_proj.weight.data.T + mha.out_proj.bias.data
module_out, module_weights = mha(*(mdl.tensor(x[None]),) * 3, is_causal=True)  # (1, T, E)
print("MultiheadAttention vs by hand:", np.abs(module_out.data[0] - by_hand).max())
assert np.allclose(module_out.data[0], by_hand, atol=1e-12)

# %% [markdown]
# **Attention does not know order.** Without a causal mask, shuffling the
# tokens just shuffles the outputs the same way: a set, not a sequence. That
# is why every Transformer adds a position vector to each token first, either
# learned (a table with one trainable row per position: ViT, GPT-2) or the
# fixed sines and cosines of the original Transformer, drawn below.

# %%
order = rng.permutation(T)
plain, _ = mha(*(mdl.tensor(x[None]),) * 3)
shuffled, _ = mha(*(mdl.tensor(x[None, order]),) * 3)
print("outputs follow the shuffle:", np.allclose(shuffled.data[0], plain.data[0][order]))

table = nn.positional.sinusoidal_table(64, 32)                # (positions, dim)
fig, ax = plt.subplots(figsize=(5.5, 3))
image = ax.imshow(table.T, cmap="RdBu", aspect="auto", vmin=-1, vmax=1)
fig.colorbar(image, ax=ax, label="value")
ax.set_xlabel("position"), ax.set_ylabel("dimension")
ax.set_title("sinusoidal positional encoding")
save(fig, "positions.png")

# %% [markdown]
# ## 2b. The rest of a block: LayerNorm, the MLP, residual connections
#
# Attention lets tokens exchange information; a Transformer **block** adds
# three more pieces around it.
#
# **LayerNorm** rescales each token's vector to mean 0 and variance 1 over its
# $E$ features, then applies a learned scale $\gamma$ and shift $\beta$:
#
# $$\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad \mu = \frac{1}{E}\sum_e x_e, \quad \sigma^2 = \frac{1}{E}\sum_e (x_e - \mu)^2.$$
#
# Unlike BatchNorm it never looks across the batch, so it behaves the same in
# training and evaluation and for a batch of one.
#
# **The MLP** (or feed-forward) part works on each token on its own:
# $\mathrm{MLP}(x) = W_2\, \mathrm{act}(W_1 x + b_1) + b_2$, widening to
# `dim_feedforward` features and back. Attention mixes tokens; the MLP
# transforms each one.
#
# **Residual connections** add each part's output to its input,
# $x \leftarrow x + f(x)$, instead of replacing it. The derivative of
# $x + f(x)$ is $I + f'(x)$: the identity gives the gradient a path from the
# loss back to the first layer that no layer can shrink.
#
# Where the LayerNorm goes gives two designs. **Post-norm** (the original
# Transformer, PyTorch's default) normalises after adding,
# $x \leftarrow \mathrm{LN}(x + f(x))$; **pre-norm** (GPT-2, ViT, minidl's
# models) normalises only what goes into the branch,
# $x \leftarrow x + f(\mathrm{LN}(x))$, so the residual path stays untouched.
# We rebuild both from the pieces and compare with `nn.TransformerEncoderLayer`
# (dropout 0, so it is deterministic).

# %%
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)                    # (..., 1)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)     # (..., 1), the biased variance
    return weight * (x - mean) / np.sqrt(var + eps) + bias   # (..., E)


def block_by_hand(layer, x):
    """One encoder layer from its own weights, in NumPy: x is (T, E)."""
    def ln(norm, h):
        return layer_norm(h, norm.weight.data, norm.bias.data, norm.eps)

    def attention(h):
        out, _ = layer.self_attn(*(mdl.tensor(h[None]),) * 3, need_weights=False)   # (1, T, E)
        return out.data[0]                                                         # checked in section 2

    def mlp(h):
        hidden = np.maximum(h @ layer.linear1.weight.data.T + layer.linear1.bias.data, 0)   # (T, F)
        return hidden @ layer.linear2.weight.data.T + layer.linear2.bias.data               # (T, E)

    if layer.norm_first:                                     # pre-norm
        x = x + attention(ln(layer.norm1, x))
        return x + mlp(ln(layer.norm2, x))
    x = ln(layer.norm1, x + attention(x))                    # post-norm
    return ln(layer.norm2, x + mlp(x))


normed = nn.LayerNorm(E).double()
normed.weight.data[...] = rng.uniform(0.5, 1.5, E)
normed.bias.data[...] = rng.uniform(-0.5, 0.5, E)
print("LayerNorm by hand vs nn.LayerNorm:",
      np.abs(layer_norm(x, normed.weight.data, normed.bias.data) - normed(mdl.tensor(x)).data).max())
plain_ln = layer_norm(x, np.ones(E), np.zeros(E))
print("each token after LayerNorm (gamma 1, beta 0): mean", np.abs(plain_ln.mean(axis=1)).max().round(12),
      " variance", plain_ln.var(axis=1).round(4)[:3], "...")
for norm_first in (False, True):
    layer = nn.TransformerEncoderLayer(E, heads, dim_feedforward=32, dropout=0.0, norm_first=norm_first).double()
    layer.eval()
    module_out = layer(mdl.tensor(x[None])).data[0]                    # (T, E)
    difference = np.abs(module_out - block_by_hand(layer, x)).max()
    print(f"{'pre' if norm_first else 'post'}-norm block by hand vs nn.TransformerEncoderLayer: {difference:.1e}")
    assert difference < 1e-10

# %% [markdown]
# **Why the residual path matters.** Stack 24 small MLP blocks and send a
# gradient back from the output. With $x \leftarrow f(x)$ the gradient is
# multiplied by every layer's Jacobian on the way and, for random layers at
# initialisation, shrinks (or grows) geometrically with depth. With
# $x \leftarrow x + f(\mathrm{LN}(x))$ it stays of the same order, because
# every Jacobian is the identity plus a correction.

# %%
def input_gradient_norm(depth, residual, seed=0):
    mdl.manual_seed(seed)
    blocks = [(nn.LayerNorm(E), nn.Linear(E, 4 * E), nn.Linear(4 * E, E)) for _ in range(depth)]
    h = mdl.tensor(x.astype(np.float32), requires_grad=True)           # (T, E)
    out = h
    for norm, up, down in blocks:
        branch = down(F.gelu(up(norm(out) if residual else out)))      # (T, E)
        out = out + branch if residual else branch
    (out * mdl.tensor(np.ones_like(x, dtype=np.float32))).sum().backward()
    return float(np.linalg.norm(h.grad))


for depth in (1, 6, 24):
    print(f"depth {depth:2d}: |dL/dx| without residuals {input_gradient_norm(depth, False):.2e}, "
          f"with pre-norm residuals {input_gradient_norm(depth, True):.2e}")

# %% [markdown]
# ## 3. A Vision Transformer on digits
#
# `VisionTransformer` cuts an 8x8 digit into 2x2 patches with a strided
# convolution (kernel 2, stride 2: each patch becomes one vector of width
# `dim`), prepends a learned **class token**, adds learned positions, runs
# pre-norm encoder layers (the block of the previous section) and reads the
# class from the class token's final vector. The class token has no pixels of
# its own: it can only answer by attending to patches.
#
# Here: 15 epochs, for the pictures. `minidl train vit` trains 30 epochs of a
# variant whose 2x2 patches are read through overlapping 4x4 windows
# (`patch_kernel=4`), a little locality that helps on only 1,347 training
# images; exercise 4 compares patch sizes.

# %%
train = load_dataset("digits", "train")
test = load_dataset("digits", "test")
vit = VisionTransformer(image_size=8, patch_size=2, num_classes=10, dim=64, depth=4, heads=4, mlp_dim=128)
vit_optimizer = optim.AdamW(vit.parameters(), lr=1e-3)
epochs, batch = (1, 64) if QUICK else (15, 64)
steps = 3 if QUICK else None
start = time.perf_counter()
with training_threads():                                   # see tutorial 01b, section 6
    for epoch in range(epochs):
        order = rng.permutation(len(train))
        for step, first in enumerate(range(0, len(train), batch)):
            if steps is not None and step >= steps:
                break
            rows = order[first:first + batch]
            loss = F.cross_entropy(vit(prepare_batch(train.images[rows], "digits")), train.labels[rows])
            vit_optimizer.zero_grad()
            loss.backward()
            vit_optimizer.step()
vit.eval()
scored = slice(0, 100) if QUICK else slice(None)
with mdl.no_grad():
    predictions = vit(prepare_batch(test.images[scored], "digits")).data.argmax(axis=1)
print(f"ViT: test accuracy {np.mean(predictions == test.labels[scored]):.1%} after {epochs} epoch(s), "
      f"{time.perf_counter() - start:.0f} s")

# %% [markdown]
# **Where does the class token look?** Row 0 of each layer's attention
# (averaged over heads) says how much the class token reads from each of the
# 16 patches. Drawn over the digit: in a trained ViT the early layers spread
# out and the last ones concentrate on the strokes that tell digits apart.

# %%
examples = [int(np.flatnonzero(test.labels == digit)[0]) for digit in (0, 3, 4, 7)]
maps = vit.attention_maps(prepare_batch(test.images[examples], "digits"))   # layers x (4, 17, 17)
fig, axes = plt.subplots(len(examples), len(maps) + 1, figsize=(1.6 * (len(maps) + 1), 1.6 * len(examples)))
for row, index in enumerate(examples):
    axes[row, 0].imshow(test.images[index, 0], cmap="gray")
    axes[row, 0].set_title(f"label {test.labels[index]}", fontsize=8)
    for layer, weights in enumerate(maps):
        patches = weights[row, 0, 1:].reshape(4, 4)                         # class token -> patches
        axes[row, layer + 1].imshow(test.images[index, 0], cmap="gray")
        overlay = axes[row, layer + 1].imshow(np.kron(patches, np.ones((2, 2))), cmap="inferno", alpha=0.6,
                                              vmin=0, vmax=max(float(m[:, 0, 1:].max()) for m in maps))
        axes[row, layer + 1].set_title(f"layer {layer + 1}", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()
fig.colorbar(overlay, ax=axes, fraction=0.03, label="class token's attention to the patch")
tutorial.show(fig, "vit_attention.png")

# %% [markdown]
# ## 4. A GPT writes Shakespeare
#
# A GPT is a stack of the same blocks with a **causal** mask, reading token
# ids: a token embedding plus a position embedding, blocks, a last LayerNorm
# and a Linear layer to one score (logit) per vocabulary entry, at every
# position. Trained with cross-entropy to predict token t+1 from tokens <= t,
# each window of text gives T training examples at once.
#
# The yardstick is the **bigram** model: count which character follows which
# in the training text. The GPT has to beat it by using more context.

# %%
text_task = CharacterTask(block_size=64)
config = GPTConfig(vocab_size=text_task.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=64)
gpt = GPT(config)
gpt_optimizer = optim.AdamW(gpt.parameters(), lr=3e-3)
steps = 5 if QUICK else 600
losses, start = [], time.perf_counter()
with training_threads():                                   # see tutorial 01b, section 6
    for step in range(steps):
        inputs, targets = text_task.batch(32, rng)                          # (32, 64) each
        loss = gpt.loss(inputs, targets)
        gpt_optimizer.zero_grad()
        loss.backward()
        gpt_optimizer.step()
        losses.append(loss.item())
window = text_task.eval_windows[:16 if QUICK else 256]
gpt.eval()
with mdl.no_grad():
    validation = gpt.loss(window[:, :-1], window[:, 1:]).item()
gpt.train()
print(f"GPT: {steps} steps in {time.perf_counter() - start:.0f} s; validation loss {validation:.3f} "
      f"nats/char (bigram {text_task.bigram_loss():.3f}, uniform {np.log(text_task.vocab_size):.3f})")

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses, label="training batches")
ax.axhline(text_task.bigram_loss(), color="gray", ls="--", label="bigram baseline")
ax.set_xlabel("step"), ax.set_ylabel("cross-entropy (nats/char)")
ax.legend()
save(fig, "gpt_loss.png")

# %% [markdown]
# **Generating** is the model's own prediction fed back in: take the logits at
# the last position, divide by a *temperature* $\tau$ (below 1 sharpens the
# distribution towards the likely characters: safer, more repetitive text;
# above 1 flattens it: more surprises, more mistakes), keep the `top_k` best,
# sample one, append it, repeat:
#
# $$p(c) = \frac{e^{z_c / \tau}}{\sum_{c'} e^{z_{c'} / \tau}}.$$

# %%
prompt = np.array([[text_task.index[c] for c in "HAMLET.\n"]])
for temperature in (0.5, 1.0):
    sample = gpt.generate(prompt, 30 if QUICK else 300, temperature=temperature, top_k=20,
                          rng=np.random.default_rng(1))
    print(f"--- temperature {temperature} ---\n{text_task.decode(sample[0])}\n")

# %% [markdown]
# **What do the heads look at?** Each head of the last block, over one
# sentence. Rows are the characters being predicted from, columns what they
# read; everything above the diagonal is the forbidden future. Trained heads
# typically specialise: one reads the previous character, one the start of the
# current word, one the last space or newline.

# %%
sentence = "To be, or not to be, that is the question:"
tokens = np.array([[text_task.index[c] for c in sentence]])
gpt.eval()
with mdl.no_grad():
    h = gpt.position_embedding(gpt.token_embedding(tokens))
    for block in gpt.blocks[:-1]:
        h = block(h)
    last = gpt.blocks[-1]
    normed = last.ln_1(h)
    _, per_head = last.attn(normed, normed, normed, is_causal=True, average_attn_weights=False)
gpt.train()
labels = list(sentence)
fig, axes = plt.subplots(1, config.n_head, figsize=(4 * config.n_head, 4.2))
for head, ax in enumerate(axes):
    image = ax.imshow(per_head.data[0, head], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_title(f"last block, head {head + 1}")
fig.tight_layout()
fig.colorbar(image, ax=axes, fraction=0.02, label="attention weight")
tutorial.show(fig, "gpt_heads.png")

# %% [markdown]
# ## 5. The same GPT draws digits
#
# Read an 8x8 digit row by row as 64 tokens, each pixel rounded to one of
# LEVELS = 4 grey levels (tokens 0..3), and put a class token first (4 + the
# digit). The GPT learns p(pixel | class, pixels so far); starting it with
# the token "7" draws a seven. Only the vocabulary changed.

# %%
pixel_task = PixelTask()
pixel_gpt = GPT(GPTConfig(vocab_size=pixel_task.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=64))
pixel_optimizer = optim.AdamW(pixel_gpt.parameters(), lr=3e-3)
steps = 5 if QUICK else 600
with training_threads():                                   # see tutorial 01b, section 6
    for step in range(steps):
        inputs, targets = pixel_task.batch(32, rng)                         # (32, 64) each
        loss = pixel_gpt.loss(inputs, targets)
        pixel_optimizer.zero_grad()
        loss.backward()
        pixel_optimizer.step()
print(f"pixel GPT: training loss {loss.item():.3f} nats/pixel after {steps} steps")

per_class = 1 if QUICK else 4
prompts = (LEVELS + np.arange(10).repeat(per_class))[:, None]               # (10 * per_class, 1)
drawn = pixel_task.images_from(pixel_gpt.generate(prompts, 64, rng=np.random.default_rng(2)))
fig, axes = plt.subplots(per_class, 10, figsize=(10, 1.1 * per_class), squeeze=False)
for i, ax in enumerate(axes.T.flat):
    ax.imshow(drawn[i, 0], cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
for digit in range(10):
    axes[0, digit].set_title(str(digit))
save(fig, "pixel_digits.png")

# %% [markdown]
# ## Summary
#
# - Attention: $\mathrm{softmax}(qk^\top / \sqrt{d})\,v$. Each position reads a
#   weighted mix of the others; the weights come from the data itself.
# - A block wraps attention and an MLP each in a residual connection and a
#   LayerNorm; pre-norm keeps an untouched path from input to output, which is
#   what lets deep stacks train.
# - Multi-head attention runs several small heads side by side and mixes their
#   outputs; without positions it cannot tell order (it is permutation
#   equivariant), so positions are added to the tokens.
# - A causal mask makes output t depend on tokens <= t only: one forward pass
#   trains all positions of a sequence, and generation is a loop of
#   "predict, sample, append".
# - The same encoder blocks classify images (ViT: patches as tokens, a class
#   token that reads them), write text, and draw digits conditioned on a class.
#
# ## Exercises
#
# Exercises 3, 7 and 8 have checks: `minidl check 06 --init` copies a skeleton
# to `exercises/06_transformer.py`; fill it in, then `minidl check 06` says,
# per exercise, whether it is right, with a hint when it is not.
#
# 1. Drop the 1/sqrt(d) in `attention_head` and make d large (256). Look at the
#    weights of random inputs: what happens to the softmax, and to its gradient?
# 2. Train the character GPT without position embeddings (replace
#    `gpt.position_embedding` by a function returning its input). How much worse
#    is the validation loss? Which kind of mistakes appear in the samples?
# 3. Write `sample_next_token(logits, temperature, top_k, rng)`, the sampling
#    step of `GPT.generate`. Then generate text with temperature 0.2, 1.0 and
#    2.0 and top_k None, and explain the three kinds of text you get.
# 4. Give the ViT patches of 1x1 (64 tokens) instead of 2x2. Is it more
#    accurate? How much slower is a step, and why (count the attention work)?
# 5. Train the pixel GPT with 2 and with 8 grey levels. Which digits look
#    better, and what happens to the loss per pixel?
# 6. Use `minidl.training.gpt.class_recognition` with a trained CNN
#    (`minidl train cnn`) to measure how often your drawn digits are read as
#    the class you asked for.
# 7. Write `causal_attention(q, k, v)` for one head in NumPy, with the mask
#    built from `np.triu`, and make it safe for huge scores.
# 8. Write `layer_norm(x, weight, bias, eps)` in NumPy, without looking at
#    section 2b.
