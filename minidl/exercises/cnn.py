"""Checks for tutorial 05 (a CNN): the size formula and a convolution's
parameter count, checked against what minidl's layers really produce; the
most confident mistakes of a classifier."""
import numpy as np

from .runner import Exercise


def _sizes_and_parameters(student):
    import minidl as mdl
    import minidl.functional as F
    from minidl import nn

    rng = np.random.default_rng(11)
    for side, kernel, padding, stride, dilation in ((28, 3, 0, 1, 1), (8, 3, 1, 1, 1), (13, 2, 0, 2, 1),
                                                   (11, 2, 0, 2, 1), (32, 5, 2, 2, 1), (17, 3, 2, 1, 2),
                                                   (9, 4, 1, 3, 2), (7, 7, 0, 1, 1)):
        x = mdl.tensor(rng.standard_normal((1, 1, side, side)).astype(np.float32))
        w = mdl.tensor(rng.standard_normal((1, 1, kernel, kernel)).astype(np.float32))
        real = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).shape[-1]
        got = student.output_side(side, kernel, padding=padding, stride=stride, dilation=dilation)
        assert got == real, (f"output_side(side={side}, kernel={kernel}, padding={padding}, stride={stride}, "
                             f"dilation={dilation}) = {got}, but F.conv2d gives {real}")
    for cin, cout, k, bias in ((1, 32, 3, True), (32, 64, 3, True), (64, 64, 3, False), (3, 8, 5, True)):
        real = sum(p.data.size for p in nn.Conv2d(cin, cout, k, bias=bias).parameters())
        got = student.conv2d_parameters(cin, cout, k, bias=bias)
        assert got == real, f"conv2d_parameters({cin}, {cout}, {k}, bias={bias}) = {got}, nn.Conv2d has {real}"


def _most_confident_mistakes(student):
    rng = np.random.default_rng(12)
    logits = rng.standard_normal((200, 10)) * 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)   # (200, 10), no ties
    labels = probabilities.argmax(axis=1)
    wrong_rows = rng.choice(200, 40, replace=False)
    labels[wrong_rows] = (labels[wrong_rows] + rng.integers(1, 10, 40)) % 10      # 40 mistakes
    confidence = probabilities.max(axis=1)
    expected = wrong_rows[np.argsort(-confidence[wrong_rows])]
    for k in (1, 5, 40):
        got = np.asarray(student.most_confident_mistakes(probabilities, labels, k))
        assert got.shape == (k,), f"k = {k}: expected {k} row indices, got shape {got.shape}"
        assert np.array_equal(got, expected[:k]), (
            f"k = {k}: expected rows {expected[:k][:6].tolist()}..., got {got[:6].tolist()}... "
            "(only misclassified rows, most confident first)")
    got = np.asarray(student.most_confident_mistakes(probabilities, labels, 100))
    assert len(got) == 40, f"with only 40 mistakes and k = 100, return the 40 (got {len(got)})"


EXERCISES = [
    Exercise(1, "output_side and conv2d_parameters", _sizes_and_parameters,
             "floor((side + 2 padding - dilation (kernel - 1) - 1) / stride) + 1; a Conv2d has "
             "out * in * k * k weights plus out biases."),
    Exercise(4, "most_confident_mistakes", _most_confident_mistakes,
             "keep the rows where probabilities.argmax(axis=1) != labels, sort them by their largest "
             "probability, descending, and return the first k row indices."),
]
