"""A two-layer perceptron: the smallest network that beats logistic regression on digits.

    image (N, C, H, W) -> Flatten -> (N, C*H*W) -> Linear -> ReLU -> Linear -> logits (N, classes)

It sees pixels as a flat list, with no notion of which pixels are neighbours;
the CNN (minidl.models.cnn) adds that.
"""
import numpy as np

from .. import nn


class MLP(nn.Module):
    """Flatten, Linear(in_features, hidden), ReLU, Linear(hidden, num_classes)."""

    def __init__(self, in_features, hidden, num_classes):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):               # (N, C, H, W)
        x = self.flatten(x)             # (N, C*H*W)
        x = self.relu(self.fc1(x))      # (N, hidden)
        return self.fc2(x)              # (N, num_classes)


def build(input_shape, num_classes, hidden=128):
    """The registry's builder: an MLP for inputs of shape (C, H, W)."""
    return MLP(int(np.prod(input_shape)), hidden, num_classes)
