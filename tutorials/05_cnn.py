# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 · A convolutional network that recognises real images
#
# Tutorials 02 and 03 built the pieces (convolution, pooling, softmax) and
# checked each one. Here they become a network that learns: the small CNN of
# the classic Keras example (three 3x3 convolutions with 32, 64 and 64
# channels, two 2x2 max-poolings, a dense layer of 64 and 10 outputs). We
#
# 1. look at the **data**: Fashion-MNIST (28x28 pictures of clothes) when it is
#    installed, otherwise the bundled 8x8 handwritten digits;
# 2. **build the CNN layer by layer**, printing the shape after every layer
#    and checking it against the size formula, then compare with
#    `minidl.models.CNN` and its `summary()` table;
# 3. **train** it with minidl's training loop, one step written out first;
# 4. look **inside** it: the first layer's filters before and after training,
#    and the feature maps one image produces;
# 5. look at its **mistakes**: a confusion matrix and the misclassified images.
#
# Run it as a script (`python tutorials/05_cnn.py`) or as a notebook
# (jupytext). `MINIDL_QUICK=1` trains on a small slice of the digits for three
# epochs (seconds). Prerequisites: tutorial 01b (the training loop) and 02-03
# (convolution, pooling, softmax). The eight pictures (`05_*.png`) go to
# `$MINIDL_TUTORIAL_OUT` (default `tutorial_outputs/`) and, in a notebook,
# also appear below their cells. The same training, with a progress bar and a
# run directory, is one command: `minidl train cnn --dataset fashion-mnist --epochs 3`.

# %%
import numpy as np

import minidl as mdl
import minidl.functional as F
from minidl import nn, optim, viz
from minidl.data import ArrayDataset, DataLoader, load_dataset
from minidl.models.cnn import CNN, plan_layout
from minidl.threads import training_threads
from minidl.training import epoch_seed, evaluate, prepare_batch, train_one_epoch
from minidl.tutorial_support import Tutorial

tutorial = Tutorial("05")      # quick mode, the output folder, figures inline in Jupyter
QUICK = tutorial.quick
out = tutorial.path            # out("curves.png") -> OUT_DIR/05_curves.png

# %% [markdown]
# ## 1. The data
#
# `load_dataset` returns images as float32 arrays of shape (N, 1, H, W) with
# pixels in [0, 1], and labels as class indices. Fashion-MNIST is not bundled
# (it is 30 MB); minidl finds it where the Debian package
# `dataset-fashion-mnist` puts it, in `$MINIDL_DATA`, or after
# `minidl data download fashion-mnist`. Without it we use the 8x8 digits that
# ship with minidl, and everything below works the same.

# %%
def pick_dataset():
    if not QUICK:
        try:
            return "fashion-mnist", load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
        except FileNotFoundError as error:
            print(f"Fashion-MNIST not found, using the bundled digits ({str(error).splitlines()[0]})")
    return "digits", load_dataset("digits", "train"), load_dataset("digits", "test")


DATASET, train_set, test_set = pick_dataset()
if QUICK:                                   # a slice, so the whole tutorial takes seconds
    train_set = ArrayDataset(train_set.images[:512], train_set.labels[:512], train_set.classes, DATASET)
CLASSES = train_set.classes
EPOCHS = 3 if QUICK else (3 if DATASET == "fashion-mnist" else 10)
_, C, H, W = train_set.images.shape
print(f"{DATASET}: {len(train_set)} training and {len(test_set)} test images of {C}x{H}x{W}")
print("classes:", ", ".join(CLASSES))
first_of_each = [int(np.flatnonzero(train_set.labels == k)[0]) for k in range(len(CLASSES))]
tutorial.show(viz.plot_image_grid(train_set.images[first_of_each], out("examples.png"),
                                  titles=CLASSES, ncols=5, title=f"one training image per class ({DATASET})"))

# %% [markdown]
# ## 2. Building the CNN layer by layer
#
# A convolution or pooling with kernel $k$, padding $p$ and stride $s$ turns a
# side of length $n$ into
#
# $$n_\text{out} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1,$$
#
# so a 3x3 convolution with stride 1 gives $n + 2p - 2$ and a 2x2 max-pooling
# with stride 2 halves $n$, rounding down. For 28x28 images with $p = 0$ that
# gives the Keras layout
#
# $$28 \xrightarrow{\text{conv}} 26 \xrightarrow{\text{pool}} 13 \xrightarrow{\text{conv}} 11 \xrightarrow{\text{pool}} 5 \xrightarrow{\text{conv}} 3,$$
#
# so the last feature map is 64 x 3 x 3 = 576 numbers per image. An 8x8 digit
# would shrink to nothing (8 -> 6 -> 3 -> 1 -> 0), so for small images minidl's
# CNN pads by one pixel ("same" convolutions) and the map ends at 64 x 2 x 2.
# `plan_layout` makes that choice; we use it and then build the layers by hand,
# feeding a batch of real images through one layer at a time.

# %%
def side_after(side, kernel, padding=0, stride=1):
    """Output length of a convolution or pooling along one axis."""
    return (side + 2 * padding - kernel) // stride + 1


padding, pools, last_map = plan_layout(H, W)
print(f"input {H}x{W}: padding {padding}, {pools} poolings, last feature map {last_map}")
mdl.manual_seed(0)
layers = [
    ("conv1", nn.Conv2d(C, 32, 3, padding=padding)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
    ("conv2", nn.Conv2d(32, 64, 3, padding=padding)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
    ("conv3", nn.Conv2d(64, 64, 3, padding=padding)), ("relu3", nn.ReLU()),
    ("flatten", nn.Flatten()),
    ("fc1", nn.Linear(64 * last_map[0] * last_map[1], 64)), ("relu4", nn.ReLU()),
    ("fc2", nn.Linear(64, len(CLASSES))),
]
x = prepare_batch(train_set.images[:8], DATASET)             # (8, C, H, W), normalised
expected = (H, W)
print(f"{'input':8s} {str(x.shape):20s}")
for name, layer in layers:
    x = layer(x)
    if isinstance(layer, nn.Conv2d):
        expected = tuple(side_after(s, 3, padding) for s in expected)
    elif isinstance(layer, nn.MaxPool2d):
        expected = tuple(side_after(s, 2, stride=2) for s in expected)
    if x.ndim == 4:
        assert x.shape[2:] == expected, (name, x.shape, expected)
    params = sum(p.data.size for p in layer.parameters())
    print(f"{name:8s} {str(x.shape):20s} {params:7,d} parameters")
assert x.shape == (8, len(CLASSES))

# %% [markdown]
# A convolution layer is nothing more than tutorial 02's sum: output channel
# c at pixel (i, j) is the bias plus the 3x3 window of the input times the
# filter. Check one value of `conv1` by hand:

# %%
conv1 = layers[0][1]
image = prepare_batch(train_set.images[:1], DATASET).data      # (1, C, H, W)
padded = np.pad(image, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
c, i, j = 5, 3, 4
by_hand = np.sum(conv1.weight.data[c] * padded[0, :, i:i + 3, j:j + 3]) + conv1.bias.data[c]
print(f"conv1 output[0, {c}, {i}, {j}]: layer {conv1(mdl.tensor(image)).data[0, c, i, j]:.6f}, by hand {by_hand:.6f}")
assert np.isclose(conv1(mdl.tensor(image)).data[0, c, i, j], by_hand, atol=1e-5)

# %% [markdown]
# `minidl.models.CNN` is exactly this stack, with names for the layers. Give it
# the same weights and it computes the same numbers, bit for bit. Its
# `summary()` prints a Keras-like table: the output shape after each layer, the
# parameters and the multiply-adds per image. The parameters are spread over
# the layers: on the 8x8 digits the last convolution holds half of them, on
# 28x28 images it and the first dense layer hold about 40% each (the shares
# are printed below the table). Nearly all the arithmetic, though, happens in
# the convolutions, which reuse their weights at every pixel.

# %%
model = CNN(C, len(CLASSES), (H, W))
by_name = dict(layers)
for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
    getattr(model, name).weight.data[...] = by_name[name].weight.data
    getattr(model, name).bias.data[...] = by_name[name].bias.data
batch = prepare_batch(train_set.images[:8], DATASET)
hand_built = nn.Sequential(*(layer for _, layer in layers))
model.eval(), hand_built.eval()
assert np.array_equal(model(batch).data, hand_built(batch).data)
table = model.summary((C, H, W))
assert table.total_params == sum(p.data.size for p in model.parameters())
print(f"by hand: conv1 {32 * (C * 9) + 32}, conv2 {64 * 32 * 9 + 64}, conv3 {64 * 64 * 9 + 64}, "
      f"fc1 {64 * 64 * last_map[0] * last_map[1] + 64}, fc2 {10 * 64 + 10} parameters")
for row in table.rows:
    if row["params"]:
        print(f"{row['name']:6s} {row['params'] / table.total_params:6.1%} of the parameters, "
              f"{row['mult_adds'] / table.total_mult_adds:6.1%} of the multiply-adds")
convolutions = sum(row["mult_adds"] for row in table.rows if row["name"].startswith("conv"))
print(f"the three convolutions: {convolutions / table.total_mult_adds:.1%} of the multiply-adds")

# %% [markdown]
# ## 3. Training
#
# One training step is tutorial 01b's: forward, loss, `zero_grad`, `backward`,
# `step`. Here it is written out on one mini-batch, from a freshly seeded
# model; the loss starts near $\log 10 = 2.30$, the loss of guessing uniformly
# among ten classes. We use Adam with learning rate 2e-3; `minidl train cnn`
# uses AdamW (Adam with decoupled weight decay) at the same learning rate,
# decays it along a cosine to 0 over the run, and trains against smoothed
# labels (0.91 for the right class, 0.01 for each other: `--label-smoothing`),
# which on the digits turned 97.8% into 99.3% on a validation split; see
# `minidl train --help` for its options.

# %%
mdl.manual_seed(0)
model = CNN(C, len(CLASSES), (H, W))
optimizer = optim.Adam(model.parameters(), lr=2e-3)
initial_filters = model.conv1.weight.data.copy()          # (32, C, 3, 3), to compare later
model.train()
images = prepare_batch(train_set.images[:32], DATASET)     # (32, C, H, W)
labels = mdl.tensor(train_set.labels[:32])                 # (32,)
with training_threads():                                   # see tutorial 01b, section 6
    for step in range(3):
        logits = model(images)                             # (32, 10)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"step {step}: loss {loss.item():.4f} (log 10 = {np.log(10):.4f})")

# %% [markdown]
# `minidl.training.train_one_epoch` runs that step over a `DataLoader` (and
# keeps the running loss and accuracy); `evaluate` runs the test set in eval
# mode under `no_grad`. Each epoch is seeded from the run's seed, as
# `minidl train` does, so running this again gives the same numbers.

# %%
mdl.manual_seed(0)
model = CNN(C, len(CLASSES), (H, W))
optimizer = optim.Adam(model.parameters(), lr=2e-3)
history = []
for epoch in range(1, EPOCHS + 1):
    seed = epoch_seed(0, epoch)
    mdl.manual_seed(seed)
    loader = DataLoader(train_set, batch_size=32, shuffle=True, seed=seed)
    progress = train_one_epoch(model, loader, optimizer, DATASET)
    seconds = progress.seconds
    test = evaluate(model, test_set, DATASET)
    history.append(dict(epoch=epoch, train_loss=progress.loss, train_acc=progress.accuracy,
                        test_loss=test["loss"], test_acc=test["acc"]))
    print(f"epoch {epoch}/{EPOCHS}: train loss {progress.loss:.4f} acc {progress.accuracy:.2%} | "
          f"test loss {test['loss']:.4f} acc {test['acc']:.2%} | {seconds:.1f} s "
          f"({progress.samples_per_second:,.0f} images/s)")
tutorial.show(viz.plot_curves(history, out("curves.png")))

# %% [markdown]
# ## 4. Inside the network: filters and feature maps
#
# The first layer's 32 filters are 3x3 weight patterns (one per output
# channel). At initialisation they are noise; training turns many of them into
# small edge and blob detectors (a positive side next to a negative side
# responds to a change in brightness). With few epochs on small images the
# change is modest but visible.

# %%
tutorial.show(viz.plot_filters(initial_filters, out("filters_initial.png")))
tutorial.show(viz.plot_filters(model.conv1.weight.data, out("filters_trained.png")))
moved = np.abs(model.conv1.weight.data - initial_filters).mean() / np.abs(initial_filters).mean()
print(f"first-layer weights moved by {moved:.0%} of their initial mean size")

# %% [markdown]
# A feature map is what one channel makes of an image: bright where its filter
# matches. After `conv1` and ReLU the maps still look like the image, each
# highlighting different edges; after the second block they are coarser (the
# pooling halved them twice) and respond to larger, more abstract parts.

# %%
model.eval()
sample = prepare_batch(test_set.images[:1], DATASET)          # (1, C, H, W)
with mdl.no_grad():
    block1 = model.relu1(model.conv1(sample))                # (1, 32, H1, W1)
    block2 = model.relu2(model.conv2(model.pool1(block1)))   # (1, 64, H2, W2)
print("feature maps:", block1.shape, "after block 1,", block2.shape, "after block 2")
tutorial.show(viz.plot_feature_maps(test_set.images[0], block1.data[0], out("feature_maps_conv1.png")))
tutorial.show(viz.plot_feature_maps(test_set.images[0], block2.data[0], out("feature_maps_conv2.png")))

# %% [markdown]
# ## 5. Its mistakes
#
# Accuracy is one number; the confusion matrix shows which classes are
# mistaken for which. Row t, column p counts the test images of class t that
# the model called p, so the diagonal holds the correct answers.

# %%
final = evaluate(model, test_set, DATASET)
counts = viz.confusion_matrix(test_set.labels, final["predictions"], len(CLASSES))   # (10, 10)
assert counts.sum() == len(test_set) and np.trace(counts) == final["correct"]
print(f"test accuracy {final['acc']:.2%} ({final['correct']}/{final['total']})")
off_diagonal = counts - np.diag(np.diag(counts))
for flat in np.argsort(off_diagonal, axis=None)[::-1][:3]:
    t, p = np.unravel_index(flat, counts.shape)
    print(f"  {counts[t, p]:4d} x true {CLASSES[t]!r} predicted as {CLASSES[p]!r}")
per_class = np.diag(counts) / counts.sum(axis=1)
print("hardest class:", CLASSES[int(np.argmin(per_class))], f"({per_class.min():.0%} right)")
tutorial.show(viz.plot_confusion_matrix(test_set.labels, final["predictions"], CLASSES, out("confusion_matrix.png")))
tutorial.show(viz.plot_misclassified(test_set.images, test_set.labels, final["predictions"], CLASSES,
                                     out("misclassified.png")))

# %% [markdown]
# Compare the printed list with your own eyes on the misclassified grid. After
# a few epochs on Fashion-MNIST the confusions usually gather among the
# upper-body garments (shirt, T-shirt/top, pullover, coat), which look alike
# at 28x28, and many of those images would make a person hesitate too. On the
# digits they tend to be between shapes that share strokes (such as 4 and 9,
# or 3 and 9). In quick mode the model has seen too little to be judged: run
# the full tutorial for a trained network.

# %% [markdown]
# ## Summary
#
# - A CNN alternates convolutions (local weighted sums, the same small filter
#   at every position) with poolings (keep the strongest response in each 2x2
#   window); the size formula $\lfloor (n + 2p - k) / s \rfloor + 1$ predicts every shape.
# - The convolutions do nearly all the multiply-adds, because each weight is
#   used at every pixel; most parameters sit in the last convolution and the
#   first dense layer. `model.summary(input_shape)` shows both.
# - Training is the step of tutorial 01b (forward, loss, `zero_grad`,
#   `backward`, `step`) repeated over mini-batches; seeding the model and each
#   epoch makes a run repeatable bit for bit.
# - Filters, feature maps and the confusion matrix show what the network
#   learned and where it fails. The same pictures appear in every run
#   directory of `minidl train cnn`.
#
# ## Exercises
#
# Exercises 1 and 4 have checks: `minidl check 05 --init` copies a skeleton to
# `exercises/05_cnn.py`; fill it in, then `minidl check 05` says, per
# exercise, whether it is right, with a hint when it is not.
#
# 1. Write `output_side(side, kernel, padding, stride, dilation)` (the size
#    formula, with dilation) and `conv2d_parameters(in_channels, out_channels,
#    kernel_size, bias)`. Then add a fourth 3x3 convolution (64 -> 64, padding 1)
#    after `conv3`: work out the new shapes and parameter count with your
#    functions, and check them with `summary()`.
# 2. Train with `nn.AvgPool2d(2)` in place of the max-poolings. Does the test
#    accuracy change? How do the feature maps after block 2 differ?
# 3. Turn on augmentation (`train_one_epoch(..., augment=True)`, or
#    `minidl train cnn --augment`) and compare train and test accuracy with and
#    without it after the same number of epochs.
# 4. Write `most_confident_mistakes(probabilities, labels, k)`: the
#    misclassified test images the model was most confident about (largest
#    softmax probability for the wrong class), most confident first. Look at
#    them: are their labels right?
# 5. Replace the first convolution's filters by fixed edge detectors (tutorial
#    02's Sobel filters, frozen with `requires_grad = False`) and train the rest.
#    How much accuracy does learning the first layer buy?
