# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01b · A multilayer perceptron, trained: layers, loss, optimisers, the loop
#
# Tutorial 01 built autograd: give it a scalar computed from tensors and it
# returns the gradient with respect to each of them. This tutorial uses that
# engine to train a real classifier, the **multilayer perceptron** (MLP), on the
# 8x8 handwritten digits that ship with minidl, and writes every piece out by
# hand before using minidl's version of it:
#
# 1. the **data**, with a validation set split off the training images;
# 2. the **linear layer**, built from `Tensor` operations and compared with `nn.Linear`;
# 3. **softmax and cross-entropy**: derived on paper, written out, and checked
#    against `F.cross_entropy` and against finite differences;
# 4. **SGD, momentum and Adam**, each a few lines, compared step by step with
#    `minidl.optim`;
# 5. the **training loop**: mini-batches, epochs, a validation curve;
# 6. **overfitting**: what happens when the network can memorise its training
#    set, and how the validation split shows it.
#
# Prerequisite: tutorial 01 (the chain rule, `Tensor`, `backward()`, `gradcheck`).
# Run it as a script (`python tutorials/01b_mlp_and_training.py`) or as a
# notebook (jupytext). `MINIDL_QUICK=1` trains for fewer epochs; pictures go to
# `$MINIDL_TUTORIAL_OUT` (default `tutorial_outputs/`), one PNG per figure
# below, named `01b_*.png`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import minidl as mdl
import minidl.functional as F
from minidl import nn, optim, viz
from minidl.data import load_dataset
from minidl.threads import training_threads
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("01b")
QUICK = tutorial.quick

# %% [markdown]
# ## 1. The data, and a validation split
#
# The bundled digits are 1,797 scans of handwritten digits, 8x8 pixels with
# values in [0, 1], already split into 1,347 training and 450 test images. An
# MLP does not know that pixels sit on a grid: each image becomes one row of
# 64 numbers.
#
# The test set is for the **last** measurement only. Every decision we make
# while training (how many epochs, which learning rate) needs its own held-out
# images, or we would be tuning on the test set and our final number would be
# too optimistic. So we split a **validation** set off the training images: 20%,
# chosen at random once, with a fixed seed.

# %%
train_full = load_dataset("digits", "train")
test_set = load_dataset("digits", "test")
rng = np.random.default_rng(0)
order = rng.permutation(len(train_full))
n_val = len(train_full) // 5
val_rows, train_rows = order[:n_val], order[n_val:]
x_train = train_full.images[train_rows].reshape(len(train_rows), -1)    # (1078, 64)
y_train = train_full.labels[train_rows]                                  # (1078,)
x_val = train_full.images[val_rows].reshape(n_val, -1)                   # (269, 64)
y_val = train_full.labels[val_rows]
x_test = test_set.images.reshape(len(test_set), -1)                      # (450, 64)
y_test = test_set.labels
assert not set(train_rows) & set(val_rows)
print(f"train {x_train.shape}, validation {x_val.shape}, test {x_test.shape}, dtype {x_train.dtype}")
print("images per class in train:", np.bincount(y_train, minlength=10))
tutorial.show(viz.plot_image_grid(train_full.images[train_rows[:20]], tutorial.path("digits.png"),
                                  titles=[str(label) for label in y_train[:20]], ncols=10,
                                  title="the first 20 training digits (8x8 pixels)"))

# %% [markdown]
# ## 2. The linear layer
#
# A linear (or fully connected, or dense) layer maps a row $x$ of `in_features`
# numbers to `out_features` numbers: every output is a weighted sum of all the
# inputs plus a bias. For a batch $X$ of $N$ rows, with PyTorch's weight layout
# $W \in \mathbb{R}^{\text{out} \times \text{in}}$:
#
# $$Y = X W^\top + b, \qquad X: (N, \text{in}),\; W: (\text{out}, \text{in}),\; b: (\text{out},),\; Y: (N, \text{out}).$$
#
# The starting weights matter: too large and the outputs explode through the
# layers, too small and they vanish. PyTorch (and minidl) draw them uniformly
# from $[-1/\sqrt{\text{in}}, 1/\sqrt{\text{in}}]$, so that an output, a sum of
# `in` terms, stays of the same size as one input. Built from `Tensor`
# operations, autograd differentiates it for us; with the upstream gradient
# $G = \partial L / \partial Y$ the chain rule gives
#
# $$\frac{\partial L}{\partial W} = G^\top X, \qquad \frac{\partial L}{\partial b} = \sum_{n} G_{n,:}, \qquad \frac{\partial L}{\partial X} = G W.$$

# %%
class MyLinear:
    """y = x @ W.T + b, with PyTorch's initialisation U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features, out_features, rng):
        bound = 1 / math.sqrt(in_features)
        self.weight = mdl.tensor(rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32),
                                 requires_grad=True)                      # (out, in)
        self.bias = mdl.tensor(rng.uniform(-bound, bound, out_features).astype(np.float32),
                               requires_grad=True)                        # (out,)

    def __call__(self, x):
        return x @ self.weight.T + self.bias                              # (N, out)

    def parameters(self):
        return [self.weight, self.bias]


layer = MyLinear(64, 10, np.random.default_rng(1))
reference = nn.Linear(64, 10)
reference.weight.data[...] = layer.weight.data
reference.bias.data[...] = layer.bias.data
batch = mdl.tensor(x_train[:5])                                           # (5, 64)
print("largest difference from nn.Linear:", np.abs(layer(batch).data - reference(batch).data).max())
assert np.allclose(layer(batch).data, reference(batch).data, atol=1e-6)

upstream = np.random.default_rng(2).standard_normal((5, 10)).astype(np.float32)   # G, (5, 10)
(layer(batch) * mdl.tensor(upstream)).sum().backward()                    # a loss whose dL/dY is G
np.testing.assert_allclose(layer.weight.grad, upstream.T @ x_train[:5], rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(layer.bias.grad, upstream.sum(axis=0), rtol=1e-5, atol=1e-6)
print("dL/dW = G^T X and dL/db = sum of G's rows: both as autograd computed them")

# %% [markdown]
# ## 3. Softmax and cross-entropy, derived and checked
#
# The last layer gives ten numbers per image, the **logits** $z_0, \dots, z_9$:
# any real numbers, larger meaning "more likely". **Softmax** turns them into
# probabilities, and **cross-entropy** scores the probability given to the true
# class $y$:
#
# $$p_k = \frac{e^{z_k}}{\sum_j e^{z_j}}, \qquad L = -\log p_y = -z_y + \log \sum_j e^{z_j}.$$
#
# A confident right answer costs almost 0; a confident wrong one costs a lot;
# guessing uniformly costs $\log 10 \approx 2.30$. The derivative is short.
# Since $\partial \log \sum_j e^{z_j} / \partial z_k = e^{z_k} / \sum_j e^{z_j} = p_k$,
#
# $$\frac{\partial L}{\partial z_k} = p_k - [k = y],$$
#
# the predicted probabilities minus the one-hot target: push the true class up
# by how much it is missing, every other class down by what it took. Averaged
# over a batch of $N$ images, each row of the gradient is divided by $N$.
#
# Computed as written, $e^{z}$ overflows for logits above ~88 in float32. Since
# adding a constant to every logit changes neither $p$ nor $L$, we subtract the
# row's largest logit first (the *log-sum-exp trick*); then every exponent is at
# most $e^0 = 1$.

# %%
def my_cross_entropy(logits, labels):
    """Mean cross-entropy of (N, K) logits against N class indices, from Tensor ops."""
    n = logits.shape[0]
    shifted = logits - logits.max(dim=1, keepdim=True).detach()           # (N, K), row max is 0
    log_sum = shifted.exp().sum(dim=1).log()                              # (N,)
    true_logit = shifted[np.arange(n), labels]                            # (N,)
    return (log_sum - true_logit).mean()


logits_np = np.random.default_rng(3).standard_normal((6, 10))             # float64, for checking
labels_np = np.array([3, 0, 9, 3, 5, 1])
logits = mdl.tensor(logits_np, requires_grad=True)
loss = my_cross_entropy(logits, labels_np)
loss.backward()
reference_loss = F.cross_entropy(mdl.tensor(logits_np), mdl.tensor(labels_np))
print(f"ours {loss.item():.12f}   F.cross_entropy {reference_loss.item():.12f}")
assert abs(loss.item() - reference_loss.item()) < 1e-12

probabilities = np.exp(logits_np) / np.exp(logits_np).sum(axis=1, keepdims=True)   # (6, 10)
one_hot = np.eye(10)[labels_np]                                           # (6, 10)
by_paper = (probabilities - one_hot) / len(labels_np)
print("autograd vs (p - onehot) / N: largest difference", np.abs(logits.grad - by_paper).max())
assert np.allclose(logits.grad, by_paper, atol=1e-12)
print("gradcheck against finite differences:", mdl.gradcheck(lambda z: my_cross_entropy(z, labels_np),
                                                              [logits_np]))

huge = mdl.tensor(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))
with np.errstate(over="ignore", invalid="ignore"):
    naive = -np.log(np.exp(huge.data[0, 0]) / np.exp(huge.data).sum())
print(f"logits (1000, 0, -1000), label 0: naive formula {naive}, shifted {my_cross_entropy(huge, [0]).item()}")

# %% [markdown]
# ## 4. An MLP, and its loss before training
#
# Two linear layers with a **ReLU**, $\max(0, t)$, between them. Without the
# nonlinearity the two layers would multiply out into one linear map and the
# hidden layer would add nothing; with it, the network can bend its decision
# boundaries. 64 inputs, 128 hidden units, 10 logits:
#
# $$z = W_2\,\mathrm{relu}(W_1 x + b_1) + b_2.$$
#
# Before training the logits are small and nearly equal, so the loss should be
# close to $\log 10$.

# %%
class MLP:
    def __init__(self, sizes, seed):
        rng = np.random.default_rng(seed)
        self.layers = [MyLinear(a, b, rng) for a, b in zip(sizes[:-1], sizes[1:])]

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)                                                  # (N, size of layer i)
            if i < len(self.layers) - 1:
                x = x.relu()
        return x                                                          # (N, 10) logits

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


model = MLP([64, 128, 10], seed=0)
print("parameters:", sum(p.data.size for p in model.parameters()), "= 64*128 + 128 + 128*10 + 10")
initial_loss = my_cross_entropy(model(mdl.tensor(x_train)), y_train).item()
print(f"loss before training {initial_loss:.3f}, log 10 = {math.log(10):.3f}")

# %% [markdown]
# ## 5. Optimisers, written out
#
# After `backward()` every parameter $\theta$ has its gradient $g$. An optimiser
# turns gradients into steps. Three classics, with learning rate $\eta$:
#
# **SGD** steps straight down the gradient: $\theta \leftarrow \theta - \eta\, g$.
#
# **SGD with momentum** keeps a running direction $b$ (a "velocity"), so that
# steps that agree from batch to batch add up and steps that zig-zag cancel:
#
# $$b \leftarrow \mu\, b + g, \qquad \theta \leftarrow \theta - \eta\, b \qquad (b = g \text{ on the first step}).$$
#
# **Adam** keeps running averages of the gradient and of its square, and
# divides one by the root of the other, so that every parameter gets a step
# of about $\eta$ whatever the scale of its gradient. At step $t = 1, 2, \dots$:
#
# $$m \leftarrow \beta_1 m + (1 - \beta_1)\, g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2,$$
# $$\hat m = \frac{m}{1 - \beta_1^t}, \qquad \hat v = \frac{v}{1 - \beta_2^t}, \qquad \theta \leftarrow \theta - \eta\, \frac{\hat m}{\sqrt{\hat v} + \epsilon}.$$
#
# $m$ and $v$ start at 0, so early averages are biased towards 0; dividing by
# $1 - \beta^t$ undoes that. Each rule below changes `p.data` in place, like
# `minidl.optim`, and `zero_grad` clears the gradients, which otherwise
# accumulate (tutorial 01).

# %%
class MySGD:
    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.buffers = [None] * len(self.params)                          # one velocity per parameter

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for i, p in enumerate(self.params):
            g = p.grad
            if self.momentum:
                self.buffers[i] = g.copy() if self.buffers[i] is None else self.momentum * self.buffers[i] + g
                g = self.buffers[i]
            p.data -= self.lr * g


class MyAdam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.eps = list(params), lr, eps
        self.beta1, self.beta2 = betas
        self.m = [np.zeros_like(p.data) for p in self.params]            # mean of g
        self.v = [np.zeros_like(p.data) for p in self.params]            # mean of g^2
        self.t = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.t += 1
        for i, p in enumerate(self.params):
            g = p.grad
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            m_hat = self.m[i] / (1 - self.beta1 ** self.t)
            v_hat = self.v[i] / (1 - self.beta2 ** self.t)
            p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


# %% [markdown]
# Now the comparison. Two copies of the same network, one driven by our
# optimiser and one by minidl's, see the same batches; after every step we
# compare their weights. SGD and momentum do the same float32 operations in
# the same order, so the weights agree exactly. `minidl.optim.Adam` computes
# the same formula in another order ($\eta / (1-\beta_1^t)$ first, and
# $\sqrt{v} / \sqrt{1-\beta_2^t}$ rather than $\sqrt{\hat v}$), so its float32
# weights may differ in the last bits: we allow a relative difference of 1e-5.

# %%
def paired(make_ours, make_theirs, steps=5):
    ours, theirs = MLP([64, 32, 10], seed=1), MLP([64, 32, 10], seed=1)
    opt_ours, opt_theirs = make_ours(ours.parameters()), make_theirs(theirs.parameters())
    largest = 0.0
    with training_threads():                    # section 6 says why
        for step in range(steps):
            rows = np.arange(step * 32, (step + 1) * 32)
            for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
                opt.zero_grad()
                my_cross_entropy(net(mdl.tensor(x_train[rows])), y_train[rows]).backward()
                opt.step()
            for a, b in zip(ours.parameters(), theirs.parameters()):
                np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-7)
                largest = max(largest, float(np.abs(a.data - b.data).max()))
    return largest


for name, ours, theirs in [
    ("SGD", lambda p: MySGD(p, lr=0.1), lambda p: optim.SGD(p, lr=0.1)),
    ("momentum", lambda p: MySGD(p, lr=0.1, momentum=0.9), lambda p: optim.SGD(p, lr=0.1, momentum=0.9)),
    ("Adam", lambda p: MyAdam(p, lr=1e-2), lambda p: optim.Adam(p, lr=1e-2)),
]:
    print(f"{name:9s} ours vs minidl.optim after 5 steps: largest weight difference {paired(ours, theirs):.1e}")

# %% [markdown]
# ## 6. The training loop
#
# One **epoch** is one pass over the training images in a fresh random order,
# cut into **mini-batches** of 32. Each step is the same five lines: forward,
# loss, `zero_grad`, `backward`, `step`. After each epoch we measure loss and
# accuracy on the validation set, without building a graph (`mdl.no_grad()`),
# because we will not call `backward` on it.
#
# The loop runs inside `training_threads()`. NumPy's matrix products (BLAS)
# and minidl's compiled kernels each keep a pool of threads, and a pool that
# has just finished keeps its threads busy-waiting for a moment; when the two
# alternate, as they do in every training step, each one's waiting threads
# take the cores from the other, and a step can run several times slower.
# Inside the block the two pools take turns. minidl's training helpers
# (`train_one_epoch`, `evaluate`, `fit`, `minidl train`) open it themselves;
# a loop you write yourself opens it once, around the loop.

# %%
def evaluate(net, x, y):
    with mdl.no_grad():
        logits = net(mdl.tensor(x))                                       # (N, 10)
    loss = F.cross_entropy(logits, mdl.tensor(y)).item()
    return loss, float(np.mean(logits.data.argmax(axis=1) == y))


def train(net, opt, x, y, epochs, batch_size=32, seed=0):
    shuffle = np.random.default_rng(seed)
    history = []
    with training_threads():                    # see the text above
        for epoch in range(1, epochs + 1):
            order = shuffle.permutation(len(x))
            for first in range(0, len(x), batch_size):
                rows = order[first:first + batch_size]
                loss = my_cross_entropy(net(mdl.tensor(x[rows])), y[rows])    # forward + loss
                opt.zero_grad()
                loss.backward()
                opt.step()
            train_loss, train_acc = evaluate(net, x, y)
            val_loss, val_acc = evaluate(net, x_val, y_val)
            history.append(dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                                val_loss=val_loss, val_acc=val_acc))
    return history


EPOCHS = 5 if QUICK else 30
runs = {}
for name, make in [("SGD lr 0.1", lambda p: MySGD(p, lr=0.1)),
                   ("momentum 0.9, lr 0.1", lambda p: MySGD(p, lr=0.1, momentum=0.9)),
                   ("Adam lr 1e-3", lambda p: MyAdam(p, lr=1e-3))]:
    net = MLP([64, 128, 10], seed=0)                                      # the same start for all three
    runs[name] = train(net, make(net.parameters()), x_train, y_train, EPOCHS)
    last = runs[name][-1]
    print(f"{name:22s} after {EPOCHS} epochs: train loss {last['train_loss']:.3f}, "
          f"validation loss {last['val_loss']:.3f}, validation accuracy {last['val_acc']:.1%}")

fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
for name, history in runs.items():
    epochs = [h["epoch"] for h in history]
    line, = loss_ax.plot(epochs, [h["val_loss"] for h in history], "o-", ms=3, label=f"{name}, validation")
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "--", color=line.get_color(), lw=1,
                 label=f"{name}, train")
    acc_ax.plot(epochs, [100 * h["val_acc"] for h in history], "o-", ms=3, color=line.get_color(), label=name)
loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss (dashed: training set)", yscale="log")
acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="validation accuracy")
loss_ax.legend(fontsize=7), acc_ax.legend(fontsize=8)
loss_ax.grid(alpha=0.3), acc_ax.grid(alpha=0.3)
tutorial.show(fig, "optimizers.png")

# %% [markdown]
# Same network, same start, same batches. Momentum at learning rate 0.1 takes
# the training loss down fastest; plain SGD at 0.1 and Adam at its usual
# 1e-3 move more slowly (in the full run they end close to momentum's
# validation accuracy, with a higher training loss). Which optimiser "wins"
# says as much about the learning rate each was given as about the optimiser:
# exercise 4 asks you to tune them. Adam's appeal is that its default learning
# rate works reasonably on most problems without tuning.
#
# ## 7. Overfitting, and what the validation set is for
#
# A network with enough parameters can memorise its training set. To see it
# quickly we train a wide MLP (64 -> 512 -> 10, about 38,000 parameters) on
# only 200 training images, with Adam at a brisk learning rate, for many
# epochs. The training loss falls towards 0. The validation loss falls for
# the first few epochs, then turns and creeps up: the network keeps growing
# more confident on the 200 images it knows, including about the quirks that
# do not carry over, and on unseen digits that confidence is sometimes
# misplaced, which cross-entropy punishes. The epoch with the smallest
# validation loss is the one to keep (**early stopping**), and only the model
# chosen that way is measured, once, on the test set.

# %%
few = 200
wide = MLP([64, 512, 10], seed=0)
memorise_epochs = 60 if QUICK else 150
history = train(wide, MyAdam(wide.parameters(), lr=1e-2), x_train[:few], y_train[:few], memorise_epochs,
                batch_size=50)
best = min(history, key=lambda h: h["val_loss"])
last = history[-1]
print(f"smallest validation loss {best['val_loss']:.3f} at epoch {best['epoch']} "
      f"(validation accuracy {best['val_acc']:.1%}); at epoch {last['epoch']}: train loss "
      f"{last['train_loss']:.4f} (train accuracy {last['train_acc']:.0%}), validation loss "
      f"{last['val_loss']:.3f} (validation accuracy {last['val_acc']:.1%})")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
epochs = [h["epoch"] for h in history]
ax.plot(epochs, [h["train_loss"] for h in history], label=f"training loss ({few} images)")
ax.plot(epochs, [h["val_loss"] for h in history], label=f"validation loss ({n_val} images)")
ax.axvline(best["epoch"], color="0.5", ls=":", label=f"smallest validation loss (epoch {best['epoch']})")
ax.set(xlabel="epoch", ylabel="cross-entropy", yscale="log",
       title=f"a 38k-parameter MLP memorising {few} digits")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
tutorial.show(fig, "overfitting.png")

# %% [markdown]
# Validation *accuracy* barely changes while the validation loss rises: the
# answers stay mostly the same, but the wrong ones are given with more and more
# confidence. Finally, the test set, used once: the momentum run of section 6
# trained on all 1,078 training images, and the wide network that saw 200
# (as it was after its last epoch; exercise 5 asks you to keep its best one).

# %%
net = MLP([64, 128, 10], seed=0)
train(net, MySGD(net.parameters(), lr=0.1, momentum=0.9), x_train, y_train, EPOCHS)
for name, candidate in (("MLP 64-128-10, 1078 images", net), ("MLP 64-512-10, 200 images", wide)):
    test_loss, test_acc = evaluate(candidate, x_test, y_test)
    print(f"{name}: test loss {test_loss:.3f}, test accuracy {test_acc:.1%} on {len(y_test)} images")

# %% [markdown]
# ## Summary
#
# - A linear layer is $Y = XW^\top + b$; autograd gives $G^\top X$, $\sum_n G_n$
#   and $GW$ as its gradients. A ReLU between two of them makes an MLP.
# - Cross-entropy is $-\log$ softmax of the true class; its gradient with
#   respect to the logits is $p - \text{onehot}(y)$ (divided by the batch size).
#   Subtracting the row maximum keeps it finite.
# - SGD, momentum and Adam are a few lines each; `minidl.optim` does exactly
#   what ours do, to the last bits of float32.
# - The training loop: shuffle, mini-batch, forward, loss, `zero_grad`,
#   `backward`, `step`; measure on held-out data after each epoch.
# - The validation set tells when the network starts memorising; the test set
#   is touched once, at the end.
#
# Next: tutorials 02-04 build the kernels of convolution, pooling, softmax and
# attention; tutorial 05 stacks them into a CNN trained with this loop.
#
# ## Exercises
#
# Exercises 1-3 have checks: `minidl check 01b --init` copies a skeleton to
# `exercises/01b_mlp_and_training.py`; fill it in, then `minidl check 01b`
# says, per exercise, whether it is right, with a hint when it is not.
#
# 1. Write cross-entropy and its gradient with NumPy alone (no autograd):
#    `cross_entropy(logits, labels)` and `cross_entropy_grad(logits, labels)`.
# 2. Write one step of SGD with momentum and one step of Adam as functions of
#    arrays that return the new parameter and the new state.
# 3. Write `train_val_split(n, val_fraction, seed)` returning disjoint index
#    arrays, and `accuracy(logits, labels)`.
# 4. Tune the learning rate of plain SGD (try 0.03, 0.3, 1.0). How close does
#    it get to momentum? What goes wrong at 1.0?
# 5. Early stopping: keep a copy of the wide network's weights at its best
#    validation epoch (`p.data.copy()` for each parameter) and measure that
#    copy on the test set. Then add weight decay (`optim.AdamW(...,
#    weight_decay=0.1)`): does the validation loss still turn upwards?
# 6. Replace ReLU by `tanh` in the MLP. Is training slower or faster, and why
#    might saturation matter?
