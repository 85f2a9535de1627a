"""Losses: cross_entropy, binary_cross_entropy_with_logits and mse_loss against
SciPy references and hand-computed cases, gradients against finite differences."""
import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl.gradcheck import gradcheck

reductions = st.sampled_from(["mean", "sum", "none"])


def ce_reference(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Independent reference: SciPy's log_softmax over axis 1, then gather per position."""
    log_p = scipy.special.log_softmax(logits.astype(np.float64), axis=1)   # (N, C, ...)
    n_classes = logits.shape[1]
    losses = np.zeros(target.shape)
    for position in np.ndindex(*target.shape):
        t = target[position]
        if t == ignore_index:
            continue
        column = log_p[(position[0], slice(None)) + position[1:]]           # (C,)
        losses[position] = -(1 - label_smoothing) * column[t] - label_smoothing * column.sum() / n_classes
    valid = target != ignore_index
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / valid.sum()


@st.composite
def ce_case(draw):
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c) + spatial) * draw(st.sampled_from([0.1, 1.0, 5.0]))
    target = rng.integers(0, c, size=(n,) + spatial)
    if draw(st.booleans()) and target.size > 1:
        target.flat[rng.integers(target.size)] = -100                       # one ignored position
    return logits, target


@given(case=ce_case(), reduction=reductions, smoothing=st.sampled_from([0.0, 0.1]),
       dtype=st.sampled_from([np.float32, np.float64]), transposed=st.booleans())
def test_cross_entropy_forward_matches_scipy_reference(case, reduction, smoothing, dtype, transposed):
    logits, target = case
    data = logits.astype(dtype)
    if transposed:        # the same values in a non-contiguous (axes-swapped) memory layout
        data = np.ascontiguousarray(np.swapaxes(data, 0, 1)).swapaxes(0, 1)
    out = F.cross_entropy(mdl.tensor(data), target, reduction=reduction, label_smoothing=smoothing)
    expected = ce_reference(logits.astype(dtype), target, reduction, label_smoothing=smoothing)
    assert out.dtype == dtype and out.shape == np.shape(expected)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, expected, rtol=tol, atol=tol)


def test_cross_entropy_hand_computed_case():
    # logits (0, ln 3): softmax = (1/4, 3/4); loss of class 0 = ln 4, of class 1 = ln(4/3)
    logits = mdl.tensor(np.array([[0.0, math.log(3)], [0.0, math.log(3)]]), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 1]))
    assert loss.item() == pytest.approx((math.log(4) + math.log(4 / 3)) / 2, rel=1e-12)
    loss.backward()
    # dL/dz = (softmax - onehot) / N
    np.testing.assert_allclose(logits.grad, np.array([[0.25 - 1, 0.75], [0.25, 0.75 - 1]]) / 2,
                               rtol=1e-12)


@given(case=ce_case(), reduction=reductions, smoothing=st.sampled_from([0.0, 0.2]))
def test_cross_entropy_gradcheck(case, reduction, smoothing):
    logits, target = case
    assert gradcheck(lambda z: F.cross_entropy(z, target, reduction=reduction,
                                               label_smoothing=smoothing), [logits])


def test_cross_entropy_unbatched_input():
    logits = np.array([1.0, 2.0, 0.5])
    out = F.cross_entropy(mdl.tensor(logits), np.array(1))
    assert out.item() == pytest.approx(-scipy.special.log_softmax(logits)[1], rel=1e-12)
    assert gradcheck(lambda z: F.cross_entropy(z, np.array(2), reduction="none"), [logits])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = mdl.tensor(np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0]], dtype=dtype), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 1]), reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 2e4], rtol=1e-6)
    loss.backward(np.ones(2, dtype=dtype))
    assert np.all(np.isfinite(logits.grad))
    np.testing.assert_allclose(logits.grad, [[0, 0, 0], [1, -1, 0]], atol=1e-6)


def test_cross_entropy_ignore_index_all_ignored_gives_zero_gradient():
    logits = mdl.tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([5, 5]), ignore_index=5, reduction="sum")
    assert loss.item() == 0.0
    loss.backward()
    assert np.all(logits.grad == 0)


def test_cross_entropy_bad_targets_raise_clear_errors():
    logits = mdl.tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="target value 3 is out of range for 3 classes"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="target value -1 is out of range"):
        F.cross_entropy(logits, np.array([-1, 0]))
    with pytest.raises(TypeError, match="target must hold integer class indices, got dtype float"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"need target of shape \(2,\).*got \(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")
    for smoothing in (-0.01, 1.01, float("nan")):                       # PyTorch's range: [0, 1]
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
            F.cross_entropy(logits, np.array([0, 1]), label_smoothing=smoothing)
    uniform = F.cross_entropy(mdl.tensor(np.array([[5.0, 0.0, 0.0]])), np.array([0]), label_smoothing=1.0)
    expected = -np.mean(np.log(np.exp([5.0, 0.0, 0.0]) / np.exp([5.0, 0.0, 0.0]).sum()))
    assert np.isclose(uniform.item(), expected)                        # 1.0: the target is all uniform


def test_cross_entropy_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((4, 5, 3)), rng.integers(0, 5, size=(4, 3))
    target[0, 0] = -100
    ours = mdl.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(ours, target, label_smoothing=0.1)
    loss.backward()
    theirs = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(theirs, torch.tensor(target), label_smoothing=0.1)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


# ---- binary cross-entropy with logits ------------------------------------------
def bce_reference(x, y):
    p = scipy.special.expit(x)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       reduction=reductions, seed=st.integers(0, 2**16))
def test_bce_with_logits_matches_expit_reference_and_gradcheck(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-6, 6, shape), rng.uniform(0, 1, shape)
    losses = bce_reference(x, y)
    expected = {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]
    out = F.binary_cross_entropy_with_logits(mdl.tensor(x), mdl.tensor(y), reduction=reduction)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), [x, y])


def test_bce_with_logits_is_stable_at_plus_minus_1000():
    x = mdl.tensor(np.array([1000.0, -1000.0, 1000.0, -1000.0], np.float32), requires_grad=True)
    y = mdl.tensor(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    # right side: log(1 + e^-1000) = 0;  wrong side: the loss is |x|
    np.testing.assert_allclose(loss.data, [0.0, 0.0, 1000.0, 1000.0])
    loss.backward(np.ones(4, np.float32))
    np.testing.assert_allclose(x.grad, [0.0, 0.0, 1.0, -1.0])          # sigmoid(x) - y


def test_bce_with_logits_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"target shape \(3, 1\) must equal logits shape \(3,\)"):
        F.binary_cross_entropy_with_logits(mdl.tensor(np.zeros(3)), mdl.tensor(np.zeros((3, 1))))


# ---- mse ----------------------------------------------------------------------------
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
       reduction=reductions, seed=st.integers(0, 2**16))
def test_mse_loss_matches_numpy_and_gradcheck(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    squared = (a - b) ** 2
    expected = {"none": squared, "sum": squared.sum(), "mean": squared.mean()}[reduction]
    out = F.mse_loss(mdl.tensor(a), mdl.tensor(b), reduction=reduction)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    assert gradcheck(lambda p, q: F.mse_loss(p, q, reduction=reduction), [a, b])


def test_mse_loss_hand_case_and_shape_error():
    loss = F.mse_loss(mdl.tensor(np.array([1.0, 2.0, 4.0])), mdl.tensor(np.array([1.0, 0.0, 1.0])))
    assert loss.item() == pytest.approx((0 + 4 + 9) / 3)
    with pytest.raises(ValueError, match="mse_loss: target shape"):
        F.mse_loss(mdl.tensor(np.zeros((4, 1))), mdl.tensor(np.zeros(4)))


def test_the_default_reduction_is_the_mean_for_every_loss():
    """PyTorch's default: reduction='mean' (one hand-checkable case per loss)."""
    x = np.array([[0.0, 2.0], [-1.0, 3.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    per_element = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    assert F.binary_cross_entropy_with_logits(mdl.tensor(x), mdl.tensor(y)).item() == pytest.approx(
        per_element.mean(), rel=1e-12)
    assert F.mse_loss(mdl.tensor(x), mdl.tensor(y)).item() == pytest.approx(((x - y) ** 2).mean(), rel=1e-12)
    logits, target = np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 0])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert F.cross_entropy(mdl.tensor(logits), target).item() == pytest.approx(
        -log_softmax[[0, 1], [0, 0]].mean(), rel=1e-12)
