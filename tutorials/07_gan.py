# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 07 · Generative adversarial networks
#
# A GAN learns to draw images without ever being told what a good image is.
# Two networks play a game:
#
# - the **generator** G turns random noise z into an image G(z);
# - the **discriminator** D looks at an image and says how likely it is real.
#
# D is trained to tell the training images from G's; G is trained to fool D.
# If both keep improving, G's images end up hard to tell from real ones.
#
# This tutorial builds the game on the bundled 8x8 digits, then:
# 1. writes down the two losses and shows why G uses the "non-saturating" one;
# 2. trains a DCGAN and watches a fixed set of noise vectors turn into digits;
# 3. **measures** the result instead of squinting at it: a Frechet distance on
#    a trained CNN's features, and how confidently that CNN recognises samples;
# 4. breaks the game on purpose to show **mode collapse**, the classic failure.
#
# Run it as a script (`python tutorials/07_gan.py`) or as a notebook
# (jupytext). `MINIDL_QUICK=1` trains tiny models for a few dozen steps, so the
# file runs in well under a minute (the pictures are then rough). Prerequisites:
# tutorial 05 (a CNN classifier) and 01b (optimisers). The six pictures
# (`07_*.png`) go to `$MINIDL_TUTORIAL_OUT` (default `tutorial_outputs/`) and,
# in a notebook, also appear below their cells; nothing else is written.

# %%
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

import minidl as mdl
import minidl.functional as F
from minidl.autograd.tensor import Tensor
from minidl.data import load_dataset
from minidl.metrics import classifier_outputs, classifier_report, frechet_distance
from minidl.models.gan import GAN, GANConfig
from minidl.threads import training_threads
from minidl.training.classifier import fit, prepare_batch
from minidl.training.config import TrainConfig
from minidl.training.gan import REFERENCE_RECIPE, OptimizerPair, to_pixels, train_step
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("07")      # quick mode, the output folder, figures inline in Jupyter
QUICK = tutorial.quick


def show_rows(rows, labels, name, title):
    """Rows of images in [0, 1], one row per label, drawn on one fixed 0..1 scale."""
    fig, axes = plt.subplots(len(rows), len(rows[0]), squeeze=False,
                             figsize=(0.8 * len(rows[0]) + 1.2, 0.85 * len(rows) + 0.4))
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c, image in enumerate(row):
            axes[r, c].imshow(image[0], cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return tutorial.show(fig, name, dpi=100)


# %% [markdown]
# ## The data and the two players
#
# The digits are 8x8 pixels in [0, 1]. G ends with `tanh`, whose range is
# [-1, 1], so the real images are rescaled to `2x - 1` before D sees them.
#
# The DCGAN generator starts from a `Linear` layer, reshapes to a 2x2 map with
# many channels, and doubles the size twice with `ConvTranspose2d` (each followed
# by `BatchNorm2d` and `ReLU`, except the last, which is followed by `tanh`). The
# discriminator mirrors it: two strided `Conv2d` + `LeakyReLU(0.2)` blocks halve
# the size, and a `Linear` layer gives one number, a **logit** (not a
# probability: the loss applies the sigmoid itself, which is more accurate).

# %%
train_images = load_dataset("digits", "train").images                # (1347, 1, 8, 8) in [0, 1]
real_data = train_images * 2.0 - 1.0                                   # in [-1, 1], tanh's range
config = GANConfig(image_size=8, latent_dim=16 if QUICK else 32, width=32 if QUICK else 64)
mdl.manual_seed(0)
gan = GAN(config, kind="dcgan")
print(gan.generator)
print(gan.discriminator)
for name, player in (("generator", gan.generator), ("discriminator", gan.discriminator)):
    print(f"{name}: {sum(p.data.size for p in player.parameters()):,} parameters")
z = gan.noise(4)                                                       # (4, latent_dim)
print("z", z.shape, "-> G(z)", gan.generator(Tensor(z)).shape, "-> D(G(z))",
      gan.discriminator(gan.generator(Tensor(z))).shape)

# %% [markdown]
# ## The losses
#
# With the sigmoid $s(t) = 1 / (1 + e^{-t})$ and D's logits, D is an ordinary
# binary classifier: real images have label 1, generated ones label 0,
#
# $$L_D = \mathrm{bce}(D(x), 1) + \mathrm{bce}(D(G(z)), 0) = -\log s(D(x)) - \log\big(1 - s(D(G(z)))\big).$$
#
# The game as first written gives G the opposite of D's second term,
# "minimise $\log(1 - s(D(G(z))))$" (the *saturating* loss). Early in training
# D easily rejects G's images, $s(D(G(z)))$ is near 0, and there this loss is
# flat: G gets almost no gradient. The fix used in practice is to let G
# *maximise* $\log s(D(G(z)))$, i.e. `loss_G = bce(D(G(z)), 1)`: the same fixed
# point, but a strong gradient exactly when G is losing. Both derivatives with
# respect to the logit $t = D(G(z))$:
#
# $$\text{saturating: } \frac{d}{dt}\log(1 - s(t)) = -s(t) \xrightarrow{s \to 0} 0, \qquad
# \text{non-saturating: } \frac{d}{dt}\big[-\log s(t)\big] = -(1 - s(t)) \xrightarrow{s \to 0} -1.$$
#
# We check both with minidl's autograd rather than trusting the algebra.

# %%
logits = np.linspace(-8, 8, 161).astype(np.float32)
t_sat = Tensor(logits, requires_grad=True)
(1.0 - F.sigmoid(t_sat)).log().sum().backward()                        # sum of log(1 - s(t))
t_ns = Tensor(logits, requires_grad=True)
F.binary_cross_entropy_with_logits(t_ns, np.ones_like(logits)).backward()   # mean of -log s(t)
grad_ns = t_ns.grad * len(logits)                                       # undo the mean
probability = 1 / (1 + np.exp(-logits))
assert np.allclose(t_sat.grad, -probability, atol=1e-5)
assert np.allclose(grad_ns, -(1 - probability), atol=1e-5)

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(probability, np.abs(t_sat.grad), label="saturating: |d/dt log(1 - D)|")
ax.plot(probability, np.abs(grad_ns), label="non-saturating: |d/dt -log D|")
ax.set_xlabel("s(D(G(z))): how real D finds the generated image")
ax.set_ylabel("gradient size for G")
ax.axvspan(0, 0.1, color="0.9")
ax.text(0.01, 0.5, "early training:\nD wins", fontsize=8)
ax.legend(fontsize=8)
fig.tight_layout()
tutorial.show(fig, "generator_losses.png")

# %% [markdown]
# ## One training step
#
# `minidl.training.gan.train_step` is the whole game in 15 lines; this is what
# it does for one batch of real images x and noise z:
#
#     fake = G(z)
#     loss_D = bce(D(x), 1) + bce(D(fake.detach()), 0)   # detach: D's step leaves G alone
#     D.zero_grad(); loss_D.backward(); adam_D.step()
#     loss_G = bce(D(fake), 1)                            # through D's *updated* weights
#     G.zero_grad(); loss_G.backward(); adam_G.step()    # only G's weights move
#
# Both players use Adam with betas (0.5, 0.999), the DCGAN paper's choice: a
# short momentum memory, because the target keeps moving. The paper's learning
# rate is 2e-4; on our 1,347 tiny digits `minidl train dcgan` uses 5e-4.
#
# G's weights never settle: each step answers D's latest move, so they keep
# circling around a good solution. `minidl train dcgan` therefore also keeps
# a moving average of G's weights, updated after every step
# (average <- 0.999 average + 0.001 G, with a faster start) and draws its
# samples from the average: with 300 epochs instead of 200 that raised the
# share of samples the reference CNN reads confidently from 79% to 82-86%, and
# lowered the Frechet distance from 20 to 14-19 (the ranges are one seed on two
# floating-point code paths; `docs/results/gan/dcgan_recipe.md`,
# where one-sided label smoothing, which the dense GAN below needs, made the
# DCGAN worse).
# We track s(D(x)) and s(D(G(z))): if both hover near 0.5, neither player
# dominates.
#
# ## Watching the grid improve
#
# A fixed batch of noise vectors, drawn once, is pushed through G every so
# often (in `eval()` mode: BatchNorm then uses its running statistics, so each
# image depends on its own z only). The same z becoming better digits is
# the most direct picture of learning.

# %%
steps = 60 if QUICK else 2500
batch = 32 if QUICK else 64
lr = 5e-4
optimizers = OptimizerPair(gan, lr)
fixed_z = gan.noise(10, np.random.default_rng(1))
snapshots, snapshot_steps = [], sorted({0, steps // 8, steps // 4, steps // 2, steps})
curves = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
rng = np.random.default_rng(0)
start = time.perf_counter()
for step in range(steps + 1):
    if step in snapshot_steps:
        snapshots.append(to_pixels(gan.sample(z=fixed_z)))
    if step == steps:
        break
    figures = train_step(gan, optimizers, real_data[rng.integers(0, len(real_data), batch)], gan.noise(batch))
    for key in curves:
        curves[key].append(figures[key])
print(f"{steps} steps of batch {batch} in {time.perf_counter() - start:.1f} s")
show_rows(snapshots, [f"step {s}" for s in snapshot_steps], "grid_progress.png",
          "the same 10 noise vectors through G as training goes on")


def smooth(values, width):
    """Moving average over `width` steps, and the step each average ends at (1-based)."""
    width = max(1, min(width, len(values)))
    averaged = np.convolve(values, np.ones(width) / width, mode="valid")
    return np.arange(width, len(values) + 1), averaged


WINDOW = 25
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
left.plot(*smooth(curves["d_loss"], WINDOW), label="D loss")
left.plot(*smooth(curves["g_loss"], WINDOW), label="G loss")
right.plot(*smooth(curves["d_real"], WINDOW), label="s(D(x)), real")
right.plot(*smooth(curves["d_fake"], WINDOW), label="s(D(G(z))), generated")
right.axhline(0.5, color="gray", ls="--", lw=0.8)
for ax in (left, right):
    ax.set_xlabel(f"training step (each point: mean of the {WINDOW} steps up to it)")
    ax.legend()
fig.tight_layout()
tutorial.show(fig, "curves.png")

# %% [markdown]
# The losses do **not** go down and stay down as in classification: each
# player's loss is measured against an opponent that keeps changing. A GAN's
# loss curves tell you whether the game is balanced (D's probabilities near the
# middle, no player's loss running off), not how good the images are. For that
# we need a measurement.
#
# ## Measuring the samples
#
# We train the CNN of `minidl train cnn` on the same digits, with the fixed
# recipe of the GAN metrics (`minidl.training.gan.REFERENCE_RECIPE`: no label
# smoothing, which would cap every probability it gives near 0.91 and make
# "confidence >= 0.9" a statement about the smoothing), and use it twice:
#
# - **Frechet distance.** Take the CNN's 64 penultimate features of held-out
#   real images and of generated ones, fit a Gaussian to each cloud, and
#   measure the distance between the Gaussians $(\mu_a, \Sigma_a)$ and $(\mu_b, \Sigma_b)$:
#   $$d^2 = \lVert \mu_a - \mu_b \rVert^2 + \mathrm{tr}\big(\Sigma_a + \Sigma_b - 2 (\Sigma_a \Sigma_b)^{1/2}\big).$$
#   (This is the idea of the FID score, with our CNN in place of Inception, so the
#   numbers only compare minidl runs.) Two anchors make it readable: other real
#   images give the **floor** (the distance from sampling alone), uniform noise
#   gives a **ceiling**.
# - **Confidence and coverage.** What share of samples the CNN classifies with
#   probability >= 0.9 (does it look like *some* digit?) and how the predicted
#   classes are spread (does G draw *every* digit?).
#
# `fit` writes a run directory (checkpoint, metrics); we give it a temporary
# one, deleted as soon as the CNN is trained.

# %%
cnn_config = TrainConfig(dataset="digits", **dict(REFERENCE_RECIPE, **({"epochs": 1} if QUICK else {})))
with tempfile.TemporaryDirectory() as run_dir:
    cnn = fit(cnn_config, run_dir, progress=False, plots=False, log=lambda *a: None)["model"]
test_images = load_dataset("digits", "test").images                    # (450, 1, 8, 8)


def measure(model, n=1000, seed=7):
    """Frechet distance (generated vs held-out real, on equal-size sets) and the CNN report."""
    generated = to_pixels(model.sample(z=model.noise(n, np.random.default_rng(seed))))
    real_f, _ = classifier_outputs(cnn, prepare_batch(test_images, "digits").data)
    gen_f, gen_p = classifier_outputs(cnn, prepare_batch(generated, "digits").data)
    report = classifier_report(gen_p)
    report["frechet"] = frechet_distance(real_f, gen_f[:len(real_f)])
    return report, generated


rng = np.random.default_rng(3)
real_f, _ = classifier_outputs(cnn, prepare_batch(test_images, "digits").data)
other_f, _ = classifier_outputs(cnn, prepare_batch(train_images[rng.permutation(len(train_images))[:450]],
                                                   "digits").data)
noise_f, _ = classifier_outputs(cnn, prepare_batch(rng.uniform(0, 1, test_images.shape).astype(np.float32),
                                                   "digits").data)
floor, ceiling = frechet_distance(real_f, other_f), frechet_distance(real_f, noise_f)
report, generated = measure(gan)
print(f"Frechet distance: generated {report['frechet']:.1f}, real-vs-real floor {floor:.1f}, "
      f"noise ceiling {ceiling:.1f}")
print(f"{report['confident_fraction']:.1%} of 1000 samples classified with confidence >= 0.9; "
      f"class shares {np.round(report['class_shares'], 3)}")
if report["frechet"] > ceiling:
    print("The generated samples are farther from real digits than uniform noise is: "
          "G has not learned to draw digits yet.")

# %% [markdown]
# Read the generated distance between the two anchors: near the floor, the
# samples' features are as close to the test digits as other real digits are;
# near or above the ceiling, no closer than noise. After the full run it sits
# far below the ceiling. In quick mode G has trained for only 60 steps and its
# blobs usually land *above* the noise ceiling (the CNN's features of a grey
# smudge can be farther from digits than those of random pixels), and hardly
# any sample is classified confidently: the measurement says plainly that G
# cannot draw yet.
#
# ## The classic dense GAN: what makes it train
#
# The first GAN (Goodfellow et al. 2014) used fully connected players, and
# `minidl train gan` keeps that: G is two hidden `Linear` layers and an output
# layer with `tanh`, D two hidden `Linear` layers and a logit. Written plainly,
# with `LeakyReLU` between the layers, it learns slowly and unevenly on our
# data: after a short run it draws two or three blurred shapes, and even after
# many epochs some digits stay rare and its Frechet distance stays well above
# the recipe's. Three changes fix it, and `minidl train gan` uses all three:
#
# - **`BatchNorm1d` after each hidden layer of G.** Each hidden unit is
#   normalised over the batch, so no unit can die or saturate for the whole
#   batch, and different z keep giving different images.
# - **`Dropout(0.3)` after each hidden layer of D.** With 1,347 training digits
#   a dense D soon memorises them, rejects everything else with certainty, and
#   G's gradient loses its direction. Dropout keeps D an honest, slightly
#   noisy judge.
# - **One-sided label smoothing**: D's target for real images is 0.9 instead
#   of 1 (`GAN.real_label`; generated images keep the target 0). D is never
#   paid for total certainty, so its logits stay moderate and G's gradient
#   keeps pointing somewhere useful.
#
# `minidl train gan` also draws its samples from a moving average of G's
# weights, as the DCGAN above does: a dense GAN's samples wobble from epoch to
# epoch, and the average smooths that out. The comparison below leaves the
# average out, to show what the three changes do on their own.
#
# Below, the same number of steps (the registry's 150 epochs of batch 64) for
# the plain version and the recipe, both measured as above.

# %%
from minidl import nn                                                  # noqa: E402
from minidl.models.gan import MLPDiscriminator, MLPGenerator, Reshape  # noqa: E402


def plain_dense_gan(config):
    """The dense GAN without batch norm in G, dropout in D or label smoothing."""
    model = GAN(config, kind="mlp", real_label=1.0)
    hidden, size = 2 * config.width, config.image_size
    model.generator.net = nn.Sequential(
        nn.Linear(config.latent_dim, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, 2 * hidden), nn.LeakyReLU(0.2),
        nn.Linear(2 * hidden, size * size), nn.Tanh(), Reshape(1, size, size))
    model.discriminator = MLPDiscriminator(config, dropout=0.0)
    return model


def train_dense(model, steps, batch=64, lr=2e-4, seed=0):
    optimizers = OptimizerPair(model, lr)
    draw = np.random.default_rng(seed)
    for _ in range(steps):
        train_step(model, optimizers, real_data[draw.integers(0, len(real_data), batch)], model.noise(batch))
    return model


dense_config = GANConfig(image_size=8, latent_dim=32, width=16 if QUICK else 64)
dense_steps = 60 if QUICK else 150 * (len(real_data) // 64)            # 150 epochs of batch 64
rows, labels = [], []
for label, make in (("plain", plain_dense_gan), ("the recipe", lambda c: GAN(c, kind="mlp"))):
    mdl.manual_seed(0)
    dense = train_dense(make(dense_config), dense_steps)
    dense_report, dense_images = measure(dense)
    print(f"{label:>10}: {dense_report['confident_fraction']:.1%} confident, smallest class share "
          f"{dense_report['min_class_share']:.1%}, Frechet {dense_report['frechet']:.1f} "
          f"({dense_report['frechet'] / ceiling:.1%} of the noise ceiling)")
    rows.append(dense_images[:12])
    labels.append(label)
assert isinstance(GAN(dense_config, kind="mlp").generator, MLPGenerator)
show_rows(rows, labels, "dense_gan.png", f"dense GAN after {dense_steps} steps: plain vs the recipe")

# %% [markdown]
# Compare the two lines: the smallest class share says whether every digit is
# drawn, the Frechet distance how close the whole set of samples is to real
# digits (in quick mode both models are far too short-trained to draw digits,
# so only the full run is worth reading). The slow test
# `tests/test_models_gan.py` checks the registry's defaults reach >= 60%
# confident samples, every class >= 4% and a Frechet distance <= 5% of the
# ceiling.
#
# ## Failure mode: mode collapse
#
# Nothing in G's loss asks for *variety*. G is paid for each image D finds
# real, one image at a time; if one kind of image fools D best, the cheapest
# way for G to win is to draw it every time. The only thing that stops this is
# D: once G over-produces one digit, D learns to reject that digit, and G must
# move on. Take away the opponent's reaction and collapse follows.
#
# We show it by breaking the balance on purpose. Starting from the model
# trained above, we **freeze D** and give G many steps at a learning rate 10x
# too high. Against a fixed D, G's best answer is a single image (whatever
# D happens to score highest), and that is what it converges to. Two numbers
# expose it: the mean pixel distance between pairs of samples (diversity), and
# the class shares of the measurement above.

# %%
def diversity(images):
    """Mean absolute pixel difference between consecutive samples (pairs of independent draws)."""
    flat = images.reshape(len(images), -1)
    return float(np.mean(np.abs(flat[1:] - flat[:-1])))


collapse_steps = 40 if QUICK else 300
greedy = OptimizerPair(gan, 10 * lr)                    # only its generator half is used
with training_threads():                                   # see tutorial 01b, section 6
    for step in range(collapse_steps):
        fake = gan.generator(Tensor(gan.noise(batch)))
        loss_g = F.binary_cross_entropy_with_logits(gan.discriminator(fake), np.ones((batch, 1), np.float32))
        greedy.generator.zero_grad()
        loss_g.backward()
        greedy.generator.step()                         # D never steps: it cannot react
collapsed_report, collapsed = measure(gan)
print(f"diversity: balanced {diversity(generated):.3f}, after {collapse_steps} greedy G steps "
      f"{diversity(collapsed):.3f}")
print(f"class shares after collapse: {np.round(collapsed_report['class_shares'], 3)}; "
      f"Frechet {report['frechet']:.1f} -> {collapsed_report['frechet']:.1f}")

show_rows([generated[:12], collapsed[:12]], ["balanced", "D frozen"], "mode_collapse.png",
          "12 samples each: the game vs. G alone against a frozen D")
fig, ax = plt.subplots(figsize=(6, 3))
positions = np.arange(10)
ax.bar(positions - 0.2, report["class_shares"], width=0.4, label="balanced game")
ax.bar(positions + 0.2, collapsed_report["class_shares"], width=0.4, label="D frozen (collapse)")
ax.axhline(0.1, color="gray", ls="--", lw=0.8)
ax.set_xticks(positions), ax.set_xlabel("class predicted by the CNN"), ax.set_ylabel("share of 1000 samples")
ax.legend(fontsize=8)
fig.tight_layout()
tutorial.show(fig, "class_shares.png")

# %% [markdown]
# Mode collapse also happens partially in ordinary runs (some digits drawn far
# more often than others), which is why the class coverage is part of the
# measurement: a generator that draws perfect 1s only would have a high
# confidence score and still be a failure. Other failure modes to recognise:
#
# - **D wins outright**: s(D(G(z))) goes to 0 and stays there; G's gradient
#   comes only from the non-saturating loss, and the samples stop improving.
#   Typical causes: D much larger or faster than G.
# - **Oscillation**: samples change style from epoch to epoch without getting
#   better; the two players chase each other. Lower learning rates help.
# - **Eval-mode surprise**: BatchNorm's running statistics lag behind a
#   quickly changing G, so `eval()` samples can look worse than training
#   batches early on.
#
# ## Summary
#
# - A GAN is two networks and two losses: D classifies real vs generated, G is
#   trained through D to make D say "real". G uses the non-saturating loss
#   `bce(D(G(z)), 1)`, whose gradient is strong when G is losing.
# - Loss curves show the balance of the game, not image quality. Measure
#   quality with a trained classifier: a Frechet distance between feature
#   Gaussians (read it between the real-vs-real floor and the noise ceiling),
#   and confidence plus class coverage of the samples.
# - Mode collapse is G's rational answer to an opponent that does not react;
#   coverage numbers catch it where a single confidence number does not.
#
# `minidl train dcgan` runs all of this with a progress bar, a grid per epoch,
# curves, an interpolation strip and the quality report in `quality.json`;
# `minidl sample RUN_DIR` draws a new grid from a checkpoint.
#
# ## Exercises
#
# Exercises 1, 2 and 5 have checks: `minidl check 07 --init` copies a skeleton
# to `exercises/07_gan.py`; fill it in, then `minidl check 07` says, per
# exercise, whether it is right, with a hint when it is not.
#
# 1. Write `saturating_generator_loss(fake_logits)`, the mean of
#    $\log(1 - s(t))$, from minidl ops and finite for any logit. Train G with
#    it instead (G *minimises* it). Does it learn from the same start? Plot
#    s(D(G(z))) for both.
# 2. Write `interpolate(a, b, steps)` and use it between two latent vectors
#    (then push them through G) and between the two *images* pixel by pixel.
#    Why does the latent path look like digits the whole way, and the pixel
#    path does not?
# 3. Remove `BatchNorm2d` from the generator. What happens to training speed
#    and to the class shares?
# 4. Make D twice as wide as G, then half as wide. Which failure mode do you
#    see in each case, and in the s(D(x)), s(D(G(z))) curves?
# 5. Write `frechet_distance(features_a, features_b)` yourself (with
#    `scipy.linalg.sqrtm`). The distance depends on the number of samples:
#    compute it for real-vs-real with 50, 100, 200 and 450 images. Why does it
#    shrink, and why must the generated and the floor numbers use the same count?
