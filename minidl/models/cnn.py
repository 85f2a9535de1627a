"""The CNN of the classic Keras example, adapted to the input size.

    image (N, C, H, W)
      -> Conv2d(C, 32, 3) -> ReLU -> MaxPool2d(2)
      -> Conv2d(32, 64, 3) -> ReLU -> MaxPool2d(2)
      -> Conv2d(64, 64, 3) -> ReLU
      -> Flatten -> Linear(64 * h * w, 64) -> ReLU -> Linear(64, classes) -> logits

Each 3x3 convolution without padding takes 2 pixels off each side length
(s -> s - 2) and each pooling halves it (s -> s // 2). For 28x28 images that
is the Keras layout: 28 -> 26 -> 13 -> 11 -> 5 -> 3, so the last feature map
is 64 x 3 x 3 and the model has 93,322 parameters for 10 classes.

An 8x8 digit would shrink to nothing (8 -> 6 -> 3 -> 1 -> 0), so `plan_layout`
picks the first of these that leaves at least a 1x1 map, in this order:
  1. padding 0, two pools (Keras, any side >= 18);
  2. padding 1 ("same": a conv keeps the size), two pools (side >= 4):
     8 -> 8 -> 4 -> 4 -> 2 -> 2, a 64 x 2 x 2 map;
  3. padding 1, one pool (side >= 2);  4. padding 1, no pool.
The order prefers Keras's layout, then keeping both pools (they make the
features tolerant to small shifts and keep the dense layer small).

Training recipe (the defaults of `minidl train cnn`, see minidl/models/__init__.py):
AdamW, lr 2e-3, weight decay 0.05, batch 32, 15 epochs, label smoothing 0.1,
the learning rate decayed to 0 along a cosine over the run, no augmentation.
It was chosen on a validation split carved from the training digits (a
stratified fifth, 270 images; benchmarks/cnn_digits_recipe.py validate,
table in docs/results/cnn_digits_validation.md), mean over seeds 0-2:

    the earlier recipe (no smoothing, constant lr)      97.8%
    + label smoothing 0.1                               99.3%
    + cosine decay alone                                96.8%
    + label smoothing 0.1 and cosine decay (chosen)     99.3% at every seed
    smoothing + OneCycle (lr 3e-3)                      98.9%
    smoothing + cosine, 25 epochs                       99.3%
    smoothing + cosine + 1-pixel random shifts, 30 ep.  98.3%

Label smoothing (targets 0.91 for the class, 0.01 for the others) stops the
network from driving its logits apart on the 1077 training images it already
classifies, so it keeps a margin for the unseen ones. A 1-pixel shift of an
8x8 digit moves it by an eighth of its width: too strong here.

On the test set (1347 train / 450 test) at seeds 0-4 the recipe reaches
98.89%, 98.89%, 98.89%, 98.22%, 98.89% (median 98.89%;
docs/results/cnn_digits_test.md, rerun by the slow test in
tests/test_models_cnn.py, which under one thread measured 99.11%, 99.11%,
98.89%, 98.22%, 98.67%): 98.5% at four seeds of five, not at seed 3. The
figures move with float rounding (a conv kernel change that only reordered
sums once moved a seed by 0.7 points).
"""
from .. import nn
from .summary import SummaryMixin


def plan_layout(height, width):
    """(padding, number of pools, (h, w) of the last feature map) for an input of
    (height, width), following the order in the module docstring."""
    for padding, pools in ((0, 2), (1, 2), (1, 1), (1, 0)):
        sizes = []
        for side in (height, width):
            for conv in (1, 2, 3):
                if 2 <= conv <= pools + 1:                   # pool1 before conv2, pool2 before conv3
                    side //= 2
                side += 2 * padding - 2                      # a 3x3 conv
            sizes.append(side)
        if min(sizes) >= 1:
            return padding, pools, tuple(sizes)
    raise ValueError(f"CNN: an input of {height}x{width} is too small (needs at least 1x1)")


class CNN(SummaryMixin, nn.Module):
    """CNN(in_channels=1, num_classes=10, image_size=(28, 28), dropout=0.0): the
    Keras example network; `image_size` chooses padding and pooling (see
    `plan_layout`). dropout > 0 adds Dropout(dropout) before each dense layer."""

    def __init__(self, in_channels=1, num_classes=10, image_size=(28, 28), dropout=0.0):
        super().__init__()
        padding, pools, (h, w) = plan_layout(*image_size)
        self.image_size = tuple(image_size)
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=padding)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2) if pools >= 1 else nn.Identity()
        self.conv2 = nn.Conv2d(32, 64, 3, padding=padding)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2) if pools >= 2 else nn.Identity()
        self.conv3 = nn.Conv2d(64, 64, 3, padding=padding)
        self.relu3 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.drop1 = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc1 = nn.Linear(64 * h * w, 64)
        self.relu4 = nn.ReLU()
        self.drop2 = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc2 = nn.Linear(64, num_classes)

    def features(self, x):                                  # (N, C, H, W)
        """The penultimate layer: 64 features per image (used by minidl.metrics)."""
        x = self.pool1(self.relu1(self.conv1(x)))           # (N, 32, H1, W1)
        x = self.pool2(self.relu2(self.conv2(x)))           # (N, 64, H2, W2)
        x = self.relu3(self.conv3(x))                       # (N, 64, h, w)
        return self.relu4(self.fc1(self.drop1(self.flatten(x))))   # (N, 64)

    def classify(self, features):                           # (N, 64)
        """Logits from the penultimate features."""
        return self.fc2(self.drop2(features))               # (N, num_classes)

    def forward(self, x):                                   # (N, C, H, W)
        return self.classify(self.features(x))              # (N, num_classes)


def build(input_shape, num_classes):
    """The registry's builder: a CNN for inputs of shape (C, H, W)."""
    channels, height, width = input_shape
    return CNN(channels, num_classes, (height, width))
