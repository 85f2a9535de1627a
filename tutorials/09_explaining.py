# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 09 · Explaining a classifier's decisions
#
# A trained CNN says "this is a 4". Which pixels made it say so? This
# tutorial builds three classic answers, each a map with the image's size,
# and then does what is too often skipped: it **checks** whether a map is
# faithful to the model.
#
# 1. **Saliency**: the gradient of the class score with respect to the pixels.
# 2. **Grad-CAM**: a convolution layer's feature maps, weighted by how much
#    the class score depends on each.
# 3. **Attention rollout**: for a ViT, how much each patch flows into the
#    class token through all the layers.
# 4. **Faithfulness**: hide the pixels a map calls most important; if the map
#    is right, accuracy should fall much more than when hiding as many random
#    pixels.
#
# Run it as a script (`python tutorials/09_explaining.py`) or as a notebook
# (jupytext). `MINIDL_QUICK=1` trains for a moment only, so the file runs in
# well under a minute (the maps are then noisy). Prerequisites: tutorials 05
# (CNN) and 06 (ViT). Pictures (`09_*.png`) go to `$MINIDL_TUTORIAL_OUT`
# (default `tutorial_outputs/`); the classifiers train in a temporary folder.
# The same maps for any classifier run: `minidl explain RUN_DIR`.

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import minidl as mdl
from minidl import explain
from minidl.autograd.tensor import Tensor
from minidl.data import load_dataset
from minidl.training.classifier import fit, prepare_batch
from minidl.training.config import make_config
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("09")
QUICK = tutorial.quick
out = tutorial.path

# %% [markdown]
# ## A classifier to explain
#
# The CNN of tutorial 05 on the bundled 8x8 digits (`minidl train cnn`), a
# few epochs. Its inputs are normalised pixels (`prepare_batch`); the maps
# are computed with respect to those inputs.

# %%
test = load_dataset("digits", "test")
with tempfile.TemporaryDirectory() as folder:
    cnn = fit(make_config("cnn", epochs=1 if QUICK else 6), folder, progress=False, plots=False)["model"]
cnn.eval()
inputs = prepare_batch(test.images, "digits")                       # (450, 1, 8, 8), normalised


def classify(raw_images):
    """Predicted classes for raw [0, 1] images (N, 1, 8, 8)."""
    with mdl.no_grad():
        return cnn(prepare_batch(raw_images, "digits")).data.argmax(axis=1)


print(f"CNN test accuracy: {np.mean(classify(test.images) == test.labels):.1%}")

# %% [markdown]
# ## 1. Saliency: d score / d pixel
#
# The score of class c is the logit `logits[c]` (before softmax, so the other
# classes do not enter). Its gradient with respect to the input says, pixel by
# pixel, how much a small change would move the score. This is one
# `backward()`, with `requires_grad` on the *image* instead of the weights:

# %%
image = Tensor(inputs.data[:1].copy(), requires_grad=True)           # (1, 1, 8, 8)
logits = cnn(image)                                                  # (1, 10)
predicted = int(logits.data.argmax())
logits[0, predicted].backward()
by_hand = np.abs(image.grad[0, 0])
by_hand = by_hand / by_hand.max()
assert np.allclose(by_hand, explain.saliency(cnn, inputs[:1])[0], atol=1e-6)
print(f"predicted {predicted}; the saliency map by hand equals explain.saliency")

# %% [markdown]
# ## 2. Grad-CAM: where a convolution layer looked
#
# Saliency is noisy: one pixel's gradient is a very local question. Grad-CAM
# asks a convolution layer instead. With the layer's output A (K maps of h x w),
#
# $$\alpha_k = \text{mean over the map of } \frac{\partial\,\text{score}}{\partial A_k}, \qquad
# \text{cam} = \mathrm{relu}\Big(\sum_k \alpha_k A_k\Big),$$
#
# resized to the image with `F.interpolate(mode="bilinear")`. A deep layer
# knows more about the class but its maps are coarse (conv3 of this CNN is
# 2x2 on an 8x8 digit); the first layer is sharp but knows little.

# %%
shown = slice(0, 6)
maps = {
    "saliency": explain.saliency(cnn, inputs[shown]),
    "Grad-CAM conv1": explain.grad_cam(cnn, "conv1", inputs[shown]),
    "Grad-CAM conv3": explain.grad_cam(cnn, "conv3", inputs[shown]),
}
titles = [f"{t} -> {p}" for t, p in zip(test.labels[shown], classify(test.images[shown]))]
tutorial.show(explain.plot_explanations(test.images[shown], maps, out("maps.png"), titles))

# %% [markdown]
# ## 3. Attention rollout for a ViT
#
# A ViT reads patches as tokens and classifies from its class token. Each
# layer's attention (averaged over heads) says how much each token reads each
# other token, but tokens also pass through the residual connection, so each
# layer's matrix is mixed with the identity, A' = (A + I) / 2, and the layers
# are multiplied: R = A'_L ... A'_1. Row 0 of R tells how much each patch
# flowed into the class token.

# %%
with tempfile.TemporaryDirectory() as folder:
    vit = fit(make_config("vit", epochs=1 if QUICK else 15), folder, progress=False, plots=False)["model"]
vit.eval()
with mdl.no_grad():
    vit_accuracy = np.mean(vit(inputs).data.argmax(axis=1) == test.labels)
print(f"ViT test accuracy: {vit_accuracy:.1%}")
rollout = explain.attention_rollout(vit, inputs[shown])
tutorial.show(explain.plot_explanations(test.images[shown], {"attention rollout": rollout,
                                                              "ViT saliency": explain.saliency(vit, inputs[shown])},
                                        out("rollout.png"), titles))

# %% [markdown]
# ## 4. Is a map faithful?
#
# A map can look convincing and still not say what the model uses. The
# deletion test: hide (set to 0, the background) the k pixels each map ranks
# highest, in every test image, and measure the accuracy; compare with
# hiding k random pixels. A faithful map makes accuracy fall much faster.

# %%
fractions = [0.05, 0.1, 0.2, 0.3] if not QUICK else [0.1]
methods = {
    "saliency": explain.saliency(cnn, inputs),
    "Grad-CAM conv1": explain.grad_cam(cnn, "conv1", inputs),
    "Grad-CAM conv3": explain.grad_cam(cnn, "conv3", inputs),
}
curves = {name: [] for name in list(methods) + ["random pixels"]}
for fraction in fractions:
    for name, values in methods.items():
        check = explain.deletion_check(classify, test.images, test.labels, values, fraction)
        curves[name].append(check["salient_hidden"])
    curves["random pixels"].append(check["random_hidden"])
    print(f"hiding {check['pixels_hidden']} of 64 pixels: "
          + ", ".join(f"{name} {values[-1]:.1%}" for name, values in curves.items()))

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, values in curves.items():
    ax.plot(fractions, values, "o-", label=name, color="gray" if name == "random pixels" else None)
ax.set_xlabel("share of pixels hidden (the map's top ones, or random)")
ax.set_ylabel("test accuracy")
ax.set_ylim(0, 1)
ax.legend(fontsize=8)
fig.tight_layout()
tutorial.show(fig, "deletion.png")

# %% [markdown]
# ## Summary
#
# - Saliency is one backward pass to the pixels; on these digits it is also
#   the most faithful map: hiding its top 10% of pixels breaks the CNN far
#   more than hiding 10% at random.
# - Grad-CAM is only as sharp as its layer: a 2x2 map on an 8x8 digit cannot
#   point at single strokes, and the deletion test shows it.
# - Attention rollout reads the ViT's own routing of information, but
#   attention is not the gradient: check it like any other map.
# - An explanation is a claim about the model; the deletion test is one way
#   to check it. `minidl explain RUN_DIR` draws the maps of a trained run and
#   writes its deletion figures to RUN_DIR/explain.json.
#
# Exercises: (1) run the deletion test with the *least* important pixels
# hidden first; (2) compute Grad-CAM for the ViT's `patch_embedding` (it is a
# Conv2d) and compare with the rollout; (3) check the saliency of a linear
# model by hand: it is the weight row of the class.
