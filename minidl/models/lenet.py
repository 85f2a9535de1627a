"""LeNet-5 (LeCun et al., 1998), adapted to the input size and to modern habits.

    image (N, C, H, W)
      -> Conv2d(C, 6, 5, padding=2) -> ReLU -> MaxPool2d(2)
      -> Conv2d(6, 16, 5, padding=p2) -> ReLU -> MaxPool2d(2)
      -> Flatten -> Linear(16 * h * w, 120) -> ReLU -> Linear(120, 84) -> ReLU
      -> Linear(84, classes) -> logits

The 1998 network read 32x32 images with an unpadded first conv (32 -> 28). For
28x28 MNIST-sized images the usual adaptation pads the first conv by 2, which
gives the same 28x28 maps: 28 -> 28 -> 14 -> 10 -> 5, a 16 x 5 x 5 = 400 input
to the dense layers and 61,706 parameters for 10 classes.

For 8x8 digits the second 5x5 conv would not fit after pooling (8 -> 8 -> 4,
and 4 - 4 = 0), so it is padded by 2 as well ("same"): 8 -> 8 -> 4 -> 4 -> 2,
a 16 x 2 x 2 = 64 input. In general p2 = 0 when the pooled map is at least
6 pixels wide (so the unpadded conv and the second pool leave >= 1 pixel),
else 2.

Other departures from 1998, as in most re-implementations: ReLU instead of
scaled tanh, max pooling instead of trainable average subsampling, full
connections between conv1 and conv2 (the original connected only some map
pairs), and a linear output layer read by cross-entropy instead of RBF units.
"""
from .. import nn
from ..kernels.geometry import conv_output_size
from .summary import SummaryMixin


def plan_layout(height, width):
    """(padding of conv2, (h, w) of the last feature map) for an input of (height, width)."""
    pooled = tuple(conv_output_size(side, 2, 2, 0) for side in (height, width))   # conv1 keeps the size; pool1 halves it
    if min(pooled) < 1:
        raise ValueError(f"LeNet: an input of {height}x{width} is too small (needs at least 4x4)")
    padding = 0 if min(pooled) >= 6 else 2
    last = tuple(conv_output_size(conv_output_size(side, 5, 1, padding), 2, 2, 0)   # conv2 (5x5), then pool2
                 for side in pooled)
    if min(last) < 1:
        raise ValueError(f"LeNet: an input of {height}x{width} is too small (needs at least 4x4)")
    return padding, last


class LeNet(SummaryMixin, nn.Module):
    """LeNet(in_channels=1, num_classes=10, image_size=(28, 28)); see the module docstring."""

    def __init__(self, in_channels=1, num_classes=10, image_size=(28, 28)):
        super().__init__()
        padding, (h, w) = plan_layout(*image_size)
        self.image_size = tuple(image_size)
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=padding)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * h * w, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):                                   # (N, C, H, W)
        x = self.pool1(self.relu1(self.conv1(x)))           # (N, 6, H/2, W/2)
        x = self.pool2(self.relu2(self.conv2(x)))           # (N, 16, h, w)
        x = self.relu3(self.fc1(self.flatten(x)))           # (N, 120)
        x = self.relu4(self.fc2(x))                         # (N, 84)
        return self.fc3(x)                                  # (N, num_classes)


def build(input_shape, num_classes):
    """The registry's builder: a LeNet for inputs of shape (C, H, W)."""
    channels, height, width = input_shape
    return LeNet(channels, num_classes, (height, width))
