"""Exercises 1 and 4 of tutorial 05 (a CNN). Fill in the functions that raise
NotImplementedError, then run `minidl check 05` from the folder that holds
`exercises/` (or `minidl check 05 --file THIS_FILE`). NumPy only."""
import numpy as np


# ---- exercise 1 ---------------------------------------------------------------
def output_side(side, kernel, padding=0, stride=1, dilation=1):
    """Length of a convolution's (or pooling's) output along one axis, as an int."""
    raise NotImplementedError("exercise 1: output_side")


def conv2d_parameters(in_channels, out_channels, kernel_size, bias=True):
    """How many numbers a Conv2d(in_channels, out_channels, kernel_size) learns."""
    raise NotImplementedError("exercise 1: conv2d_parameters")


# ---- exercise 4 ---------------------------------------------------------------
def most_confident_mistakes(probabilities, labels, k):
    """Row indices of the (at most) k misclassified rows whose largest predicted
    probability is highest, most confident first. probabilities: (N, classes)."""
    raise NotImplementedError("exercise 4: most_confident_mistakes")
