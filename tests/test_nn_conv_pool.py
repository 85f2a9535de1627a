"""Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d: forward equals the layer's
minidl.functional call and an independent NumPy loop; gradcheck of input,
weight and bias in float64; PyTorch's initial ranges; output sizes; repr;
errors naming the layer and the shapes."""
import math

import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F
from minidl import nn

from layer_check import gradcheck_module


# ---- independent references ------------------------------------------------------
def numpy_conv2d(x, w, b, stride, padding, dilation):
    """Cross-correlation by an explicit loop over output positions."""
    n, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c_out, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def numpy_conv_transpose2d(x, w, b, stride, padding, output_padding):
    """Each input pixel scatters weight * value into the (uncropped) output, then crop."""
    n, c_in, h, wd = x.shape
    _, c_out, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    full = np.zeros((n, c_out, (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    out = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def numpy_pool(x, k, s, p, reduce, pad_value):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=pad_value)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return out


def as_tensor(param):
    return None if param is None else mdl.tensor(param.data)


# ---- Conv2d ----------------------------------------------------------------------
@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1), dict(padding=(2, 1), dilation=2),
                                     dict(stride=(1, 2), bias=False), dict(padding="same")])
def test_conv2d_forward_equals_functional_and_numpy_loop(options):
    rng = np.random.default_rng(0)
    odd_only = "dilation" in options or options.get("padding") == "same"
    conv = nn.Conv2d(3, 4, 3 if odd_only else (3, 2), **options)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    out = conv(mdl.tensor(x))
    composed = F.conv2d(mdl.tensor(x), as_tensor(conv.weight), as_tensor(conv.bias), stride=conv.stride,
                        padding=conv.padding, dilation=conv.dilation)
    np.testing.assert_array_equal(out.data, composed.data)
    expected = numpy_conv2d(x.astype(np.float64), conv.weight.data.astype(np.float64),
                            None if conv.bias is None else conv.bias.data, conv.stride, conv.padding,
                            conv.dilation)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)
    if options.get("padding") == "same":
        assert out.shape[2:] == x.shape[2:]


@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1), dict(dilation=2, bias=False)])
def test_conv2d_gradcheck(options):
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(2, 3, 3, **options)
    assert gradcheck_module(conv, rng.standard_normal((2, 2, 6, 5)))


def test_grouped_conv2d_equals_separate_convs_per_group_and_gradchecks():
    rng = np.random.default_rng(6)
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    out = conv(mdl.tensor(x))
    w, b = conv.weight.data.astype(np.float64), conv.bias.data
    halves = [numpy_conv2d(x[:, 2 * g:2 * g + 2].astype(np.float64), w[3 * g:3 * g + 3], b[3 * g:3 * g + 3],
                           (1, 1), (1, 1), (1, 1)) for g in range(2)]
    np.testing.assert_allclose(out.data, np.concatenate(halves, axis=1), rtol=1e-4, atol=1e-5)
    assert gradcheck_module(conv, rng.standard_normal((1, 4, 4, 4)))


@pytest.mark.parametrize("layer, args, fan_in", [
    (nn.Conv2d, (16, 8, 3), 16 * 9), (nn.Conv2d, (3, 200, (5, 3)), 3 * 15),
    (nn.ConvTranspose2d, (16, 8, 4), 8 * 16),               # fan_in from shape[1] = out_channels
    (nn.ConvTranspose2d, (200, 3, 3), 3 * 9),
])
def test_conv_default_init_is_pytorch_uniform_over_fan_in(layer, args, fan_in):
    mdl.manual_seed(0)
    conv = layer(*args)
    bound = 1 / math.sqrt(fan_in)
    for values in (conv.weight.data, conv.bias.data):
        assert values.dtype == np.float32
        assert np.abs(values).max() <= bound * (1 + 1e-6)
    weights = conv.weight.data
    assert np.abs(weights).max() > 0.95 * bound                    # the full range is used
    np.testing.assert_allclose(weights.std(), bound / math.sqrt(3), rtol=0.1)   # uniform's std
    biases = conv.bias.data                                        # 8 to 200 draws from the same range
    assert np.abs(biases).max() > (0.5 if biases.size < 20 else 0.9) * bound
    mdl.manual_seed(0)
    np.testing.assert_array_equal(layer(*args).weight.data, weights)           # seeded


def test_conv_weight_layouts_and_parameter_names():
    assert nn.Conv2d(3, 8, 5).weight.shape == (8, 3, 5, 5)
    assert nn.ConvTranspose2d(3, 8, (4, 2)).weight.shape == (3, 8, 4, 2)
    assert nn.Conv2d(4, 6, 3, groups=2).weight.shape == (6, 2, 3, 3)
    assert [n for n, _ in nn.Conv2d(1, 2, 3, bias=False).named_parameters()] == ["weight"]
    assert list(nn.Conv2d(1, 2, 3).state_dict()) == ["weight", "bias"]


def test_conv_reprs_like_pytorch():
    assert repr(nn.Conv2d(1, 32, 3)) == "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(nn.Conv2d(3, 8, 5, stride=2, padding=2, bias=False)) == \
        "Conv2d(3, 8, kernel_size=(5, 5), stride=(2, 2), padding=(2, 2), bias=False)"
    assert repr(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, output_padding=1)) == \
        "ConvTranspose2d(64, 32, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))"


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "divisible by groups"),
    (lambda: nn.Conv2d(3, 4, 0), "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), "padding='same' needs stride 1"),
    (lambda: nn.Conv2d(3, 4, 2, padding="same"), "odd effective kernel"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2), "output_padding"),
])
def test_conv_bad_settings_raise(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_conv2d_wrong_input_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Conv2d: expected input of shape \(N, 3, H, W\), got shape \(2, 1, 5, 5\)"):
        nn.Conv2d(3, 4, 3)(mdl.tensor(np.ones((2, 1, 5, 5), np.float32)))


# ---- ConvTranspose2d ---------------------------------------------------------------
@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1), dict(stride=2, output_padding=1),
                                     dict(stride=(2, 1), padding=(0, 1), bias=False)])
def test_conv_transpose2d_forward_equals_functional_and_numpy_scatter(options):
    rng = np.random.default_rng(2)
    layer = nn.ConvTranspose2d(3, 2, (4, 3), **options)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    out = layer(mdl.tensor(x))
    composed = F.conv_transpose2d(mdl.tensor(x), as_tensor(layer.weight), as_tensor(layer.bias),
                                  stride=layer.stride, padding=layer.padding,
                                  output_padding=layer.output_padding)
    np.testing.assert_array_equal(out.data, composed.data)
    expected = numpy_conv_transpose2d(x.astype(np.float64), layer.weight.data.astype(np.float64),
                                      None if layer.bias is None else layer.bias.data,
                                      layer.stride, layer.padding, layer.output_padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)


def test_conv_transpose2d_doubles_size_like_a_dcgan_block_and_gradchecks():
    rng = np.random.default_rng(3)
    layer = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)
    assert layer(mdl.tensor(np.zeros((1, 4, 7, 7), np.float32))).shape == (1, 2, 14, 14)
    assert gradcheck_module(layer, rng.standard_normal((2, 4, 3, 3)))


# ---- pooling -----------------------------------------------------------------------
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 2, 1), (2, 1, 0)])
def test_pool_layers_equal_functional_and_numpy_loops(k, s, p):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    stride = k if s is None else s
    for layer, fn, reduce, pad_value in ((nn.MaxPool2d(k, s, p), F.max_pool2d, np.max, -np.inf),
                                         (nn.AvgPool2d(k, s, p), F.avg_pool2d, np.mean, 0.0)):
        out = layer(mdl.tensor(x))
        np.testing.assert_array_equal(out.data, fn(mdl.tensor(x), k, stride, p).data)
        expected = numpy_pool(x.astype(np.float64), k, stride, p, reduce, pad_value)
        np.testing.assert_allclose(out.data, expected, rtol=1e-6, atol=1e-6)
        assert list(layer.parameters()) == []


@pytest.mark.parametrize("layer", [nn.MaxPool2d(2), nn.AvgPool2d(3, stride=2, padding=1)])
def test_pool_layers_gradcheck_away_from_ties(layer):
    rng = np.random.default_rng(5)
    x = rng.permutation(np.arange(2 * 2 * 6 * 6)).reshape(2, 2, 6, 6) * 0.1    # distinct values: no ties
    assert gradcheck_module(layer, x)


def test_pool_reprs_and_errors():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AvgPool2d(3, stride=1, padding=1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    with pytest.raises(ValueError, match=r"MaxPool2d: expected input of shape \(N, C, H, W\)"):
        nn.MaxPool2d(2)(mdl.tensor(np.ones((4, 4), np.float32)))
