"""F.interpolate / nn.Upsample: hand-computed cases, SciPy, a loop written here, PyTorch
(when installed), float64 gradcheck, hypothesis properties, clear errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import nn
from minidl.gradcheck import gradcheck


def interp(x, **options):
    return F.interpolate(mdl.tensor(np.asarray(x)), **options).data


# ---- an independent reference: PyTorch's rules written as plain loops ------------
def source_points(n_in, n_out, mode, align_corners, factor, images):
    """[(index, weight), ...] per output point, one output point at a time."""
    points = []
    for o in range(n_out):
        if mode == "nearest":
            if images and n_out == n_in:
                points.append([(o, 1.0)])
            elif images and n_out == 2 * n_in:
                points.append([(o // 2, 1.0)])
            else:
                scale = np.float32(n_in / n_out if factor is None else 1.0 / factor)
                points.append([(min(int(math.floor(np.float32(o) * scale)), n_in - 1), 1.0)])
            continue
        if n_out == n_in:
            points.append([(o, 1.0)])
            continue
        if align_corners:
            src = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            scale = n_in / n_out if factor is None else 1.0 / factor
            src = max((o + 0.5) * scale - 0.5, 0.0)
        left = min(int(math.floor(src)), n_in - 1)
        right = min(left + 1, n_in - 1)
        points.append([(left, 1.0 - (src - left)), (right, src - left)])
    return points


def loop_reference(x, sizes, mode, align_corners=False, factors=None):
    x = np.asarray(x, dtype=np.float64)
    factors = factors or (None,) * (x.ndim - 2)
    images = x.ndim == 4
    if x.ndim == 3:
        x = x[:, :, None, :]
        sizes, factors = (1,) + tuple(sizes), (None,) + tuple(factors)
    rows = source_points(x.shape[2], sizes[0], mode, align_corners, factors[0], images)
    columns = source_points(x.shape[3], sizes[1], mode, align_corners, factors[1], images)
    out = np.zeros(x.shape[:2] + tuple(sizes))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i, row in enumerate(rows):
                for j, column in enumerate(columns):
                    out[n, c, i, j] = sum(wr * wc * x[n, c, r, k] for r, wr in row for k, wc in column)
    return out if images else out[:, :, 0, :]


# ---- hand-computed cases -------------------------------------------------------------
def test_nearest_doubles_each_pixel():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]], dtype=float)
    np.testing.assert_array_equal(interp(x, scale_factor=2)[0, 0], expected)


def test_bilinear_doubling_by_hand_align_corners_false():
    # 1-D [a, b] -> sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to b):
    # [a, 0.75a + 0.25b, 0.25a + 0.75b, b]; 2-D is the outer product of the two axes.
    x = np.array([[[[1.0, 2.0], [3.0, 5.0]]]])
    w = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    expected = w @ x[0, 0] @ w.T
    np.testing.assert_allclose(interp(x, scale_factor=2, mode="bilinear")[0, 0], expected)
    assert expected[1, 1] == pytest.approx(0.75 * (0.75 * 1 + 0.25 * 2) + 0.25 * (0.75 * 3 + 0.25 * 5))


def test_bilinear_align_corners_true_by_hand():
    x = np.array([[[[0.0, 4.0]]]])
    out = interp(x, size=(1, 3), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 2.0, 4.0])
    out = interp(x, size=(1, 5), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 1.0, 2.0, 3.0, 4.0])


def test_bilinear_halving_is_two_by_two_average_pooling():
    """src = 2 * (o + 0.5) - 0.5 = 2o + 0.5: exactly between two pixels."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 8))
    out = interp(x, scale_factor=0.5, mode="bilinear")
    pooled = x.reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(out, pooled, atol=1e-12)


def test_linear_on_sequences_by_hand():
    x = np.array([[[0.0, 10.0, 20.0]]])
    np.testing.assert_allclose(interp(x, size=2, mode="linear")[0, 0], [2.5, 17.5])   # src 0.25, 1.75


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_nearest_matches_scipy_zoom_for_whole_factors(factor):
    from scipy import ndimage

    x = np.random.default_rng(factor).standard_normal((2, 3, 5, 4))
    zoomed = ndimage.zoom(x, (1, 1, factor, factor), order=0, grid_mode=True, mode="nearest")
    np.testing.assert_array_equal(interp(x, scale_factor=factor), zoomed)


# ---- the loop reference and PyTorch over drawn cases --------------------------------------
@st.composite
def cases(draw):
    images = draw(st.booleans())
    mode = draw(st.sampled_from(["nearest", "bilinear" if images else "linear"]))
    spatial = 2 if images else 1
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + tuple(
        draw(st.integers(1, 7)) for _ in range(spatial))
    align = None if mode == "nearest" else draw(st.sampled_from([None, False, True]))
    if draw(st.booleans()):
        sizes = tuple(draw(st.integers(1, 13)) for _ in range(spatial))
        options = dict(size=sizes if spatial == 2 else sizes[0])
        factors = None
    else:
        factors = tuple(draw(st.sampled_from([0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0])) for _ in range(spatial))
        sizes = tuple(math.floor(n * f) for n, f in zip(shape[2:], factors))
        if min(sizes) < 1:
            factors = tuple(max(f, 1.0) for f in factors)
            sizes = tuple(math.floor(n * f) for n, f in zip(shape[2:], factors))
        options = dict(scale_factor=factors if spatial == 2 else factors[0])
    return shape, sizes, factors, dict(options, mode=mode, align_corners=align)


@settings(max_examples=60, deadline=None)
@given(case=cases(), seed=st.integers(0, 2 ** 16), dtype=st.sampled_from([np.float32, np.float64]),
       transposed=st.booleans())
def test_forward_matches_the_loop_reference(case, seed, dtype, transposed):
    shape, sizes, factors, options = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    before = x.copy()
    if transposed:                          # the same values, reached through a non-contiguous view
        view = mdl.tensor(np.ascontiguousarray(np.swapaxes(x, 0, 1))).transpose(0, 1)
    else:
        view = mdl.tensor(x)
    out = F.interpolate(view, **options)
    assert out.shape == shape[:2] + tuple(sizes) and out.dtype == dtype
    expected = loop_reference(x, sizes, options["mode"], bool(options["align_corners"]), factors)
    np.testing.assert_allclose(out.data, expected, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(x, before)


@settings(max_examples=60, deadline=None)
@given(case=cases(), seed=st.integers(0, 2 ** 16), dtype=st.sampled_from([np.float32, np.float64]))
def test_forward_and_gradient_match_pytorch(case, seed, dtype):
    torch = pytest.importorskip("torch")
    shape, _, _, options = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    ours = mdl.tensor(x, requires_grad=True)
    out = F.interpolate(ours, **options)
    weights = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype)
    (out * mdl.tensor(weights)).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    reference = torch.nn.functional.interpolate(theirs, **options)
    (reference * torch.tensor(weights)).sum().backward()
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, reference.detach().numpy(), atol=tolerance)
    if options["mode"] == "nearest" and len(shape) == 3 and out.shape[-1] == shape[-1]:
        # PyTorch's 1-D nearest forward applies the scale factor to an unchanged length,
        # but its backward copies the gradient straight through: that gradient is not the
        # one of its own forward, so here ours (gradchecked below) is compared to nothing.
        return
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), atol=tolerance * 10)


@settings(max_examples=25, deadline=None)
@given(case=cases(), seed=st.integers(0, 2 ** 16))
def test_gradcheck_float64(case, seed):
    shape, _, _, options = case
    x = np.random.default_rng(seed).standard_normal(shape)
    assert gradcheck(lambda t: F.interpolate(t, **options), [x])


def test_gradcheck_through_a_transposed_view():
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 4))
    assert gradcheck(lambda t: F.interpolate(t.transpose(0, 1), size=(7, 3), mode="bilinear"), [x])
    assert gradcheck(lambda t: F.interpolate(t.transpose(2, 3), scale_factor=1.5), [x])


def test_one_dimensional_nearest_with_an_unchanged_length_still_applies_the_factor():
    """PyTorch's forward rule: 2 points at scale 1.3 both read point 0 (floor(1 / 1.3) = 0),
    so the gradient of their sum all goes to point 0."""
    x = mdl.tensor(np.array([[[5.0, 7.0]]]), requires_grad=True)
    out = F.interpolate(x, scale_factor=1.3)
    np.testing.assert_array_equal(out.data, [[[5.0, 5.0]]])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [[[2.0, 0.0]]])


def test_two_dimensional_nearest_copies_an_unchanged_length_whatever_the_factor():
    """PyTorch's 2-D rule, unlike the 1-D one above: scale 1.05 keeps 3 rows and
    4 columns (floor(3.15) = 3, floor(4.2) = 4), and each output pixel reads the
    same input pixel, although 2 / 1.05 alone would floor to 1."""
    x = mdl.tensor(np.arange(12.0).reshape(1, 1, 3, 4), requires_grad=True)
    out = F.interpolate(x, scale_factor=1.05)
    np.testing.assert_array_equal(out.data, x.data)
    out.backward(np.arange(12.0).reshape(1, 1, 3, 4) + 1)
    np.testing.assert_array_equal(x.grad, np.arange(12.0).reshape(1, 1, 3, 4) + 1)


def test_recompute_scale_factor_places_points_as_the_output_size_would():
    """scale_factor 1.7 on 3 points gives floor(5.1) = 5 outputs. Read with the
    factor (scale 1 / 1.7), output 1 sits at 1.5 / 1.7 - 0.5 = 0.382 of the input;
    with recompute_scale_factor=True, as size=5 would place it (scale 3 / 5):
    sources 0 (clamped), 0.4, 1.0, 1.6, 2.2 (right neighbour clamped to 2)."""
    x = np.array([[[0.0, 1.0, 4.0]]])
    np.testing.assert_allclose(interp(x, scale_factor=1.7, mode="linear", recompute_scale_factor=True),
                               [[[0.0, 0.4, 1.0, 2.8, 4.0]]], atol=1e-12)
    np.testing.assert_allclose(interp(x, scale_factor=1.7, mode="linear"),
                               [[[0.0, 1.5 / 1.7 - 0.5, 2.5 / 1.7 - 0.5, 1 + 3 * (3.5 / 1.7 - 1.5), 4.0]]],
                               atol=1e-12)
    image = np.random.default_rng(3).standard_normal((1, 2, 3, 4))
    np.testing.assert_allclose(interp(image, scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
                               loop_reference(image, (5, 6), "bilinear"), atol=1e-12)


def test_gradient_of_nearest_counts_copies():
    """Each input pixel is copied factor**2 times, so a sum's gradient is factor**2 everywhere."""
    x = mdl.tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    F.interpolate(x, scale_factor=3).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((1, 1, 3, 3), 9.0))


def test_integer_images_resize_with_nearest_and_keep_their_dtype():
    x = np.arange(6, dtype=np.int64).reshape(1, 1, 2, 3)
    out = interp(x, scale_factor=2)
    assert out.dtype == np.int64 and out.shape == (1, 1, 4, 6)


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda x: F.interpolate(x), "exactly one of size and scale_factor"),
    (lambda x: F.interpolate(x, size=4, scale_factor=2), "exactly one of size and scale_factor"),
    (lambda x: F.interpolate(x, size=4, mode="bicubic"), "unknown mode 'bicubic'"),
    (lambda x: F.interpolate(x, size=4, mode="linear"), r"takes 3-D input.*\(2, 3, 4, 5\)"),
    (lambda x: F.interpolate(x[0], size=4, mode="bilinear"), r"takes 4-D input.*\(3, 4, 5\)"),
    (lambda x: F.interpolate(x, size=4, align_corners=True), "align_corners can only be set"),
    (lambda x: F.interpolate(x, size=(4, 5, 6)), "one entry per spatial dimension"),
    (lambda x: F.interpolate(x, size=0), "positive integers"),
    (lambda x: F.interpolate(x, size=2.5), "positive integers"),
    (lambda x: F.interpolate(x, scale_factor=-1), "positive and finite"),
    (lambda x: F.interpolate(x, scale_factor=0), "positive and finite"),
    (lambda x: F.interpolate(x, scale_factor=(2, 0.0)), "positive and finite"),
    (lambda x: F.interpolate(x, scale_factor=float("nan")), "positive and finite"),
    (lambda x: F.interpolate(x, scale_factor=0.1), "empty output"),
    (lambda x: F.interpolate(x, size=4, recompute_scale_factor=True), "only applies to a scale_factor"),
])
def test_bad_arguments_raise_value_errors_naming_the_op(call, message):
    x = mdl.tensor(np.zeros((2, 3, 4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=message):
        call(x)


def test_bilinear_of_integers_and_empty_images_raise():
    with pytest.raises(TypeError, match="interpolate: mode 'bilinear' needs a floating-point input"):
        F.interpolate(mdl.tensor(np.zeros((1, 1, 2, 2), dtype=np.int64)), size=3, mode="bilinear")
    with pytest.raises(ValueError, match="empty spatial dimension"):
        F.interpolate(mdl.tensor(np.zeros((1, 1, 0, 2), dtype=np.float32)), size=3)


# ---- nn.Upsample --------------------------------------------------------------------------------
def test_upsample_layer_is_interpolate_with_its_settings():
    x = mdl.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32))
    layer = nn.Upsample(scale_factor=2, mode="bilinear")
    np.testing.assert_array_equal(layer(x).data, F.interpolate(x, scale_factor=2, mode="bilinear").data)
    assert list(layer.parameters()) == [] and "scale_factor=2" in repr(layer)
    assert nn.Upsample(size=(3, 5))(x).shape == (2, 3, 3, 5)


def test_upsample_defaults_to_nearest_neighbours_like_pytorch():
    x = mdl.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=np.float32))    # (1, 1, 2, 2)
    np.testing.assert_array_equal(nn.Upsample(scale_factor=2)(x).data[0, 0],
                                  [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    assert nn.Upsample(scale_factor=2).mode == "nearest"
