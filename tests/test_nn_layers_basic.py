"""Linear, init, Dropout, Flatten and the activation modules: forward against NumPy,
gradients against finite differences, initialisation statistics."""
import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, strategies as st

import minidl as mdl
import minidl.functional as F
from minidl import nn
from minidl.gradcheck import gradcheck
from minidl.nn import init

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


# ---- Linear ------------------------------------------------------------------
@given(batch=batch_shapes, n_in=st.integers(1, 5), n_out=st.integers(1, 5),
       bias=st.booleans(), transposed=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_forward_matches_numpy(batch, n_in, n_out, bias, transposed, seed):
    rng = np.random.default_rng(seed)
    if transposed:                                   # a non-contiguous (transposed) view
        x = rng.standard_normal((n_in,) + batch[::-1]).astype(np.float32).T
    else:
        x = rng.standard_normal(batch + (n_in,)).astype(np.float32)
    layer = nn.Linear(n_in, n_out, bias=bias)
    out = layer(mdl.tensor(x))
    expected = x.astype(np.float64) @ layer.weight.data.T.astype(np.float64)
    if bias:
        expected = expected + layer.bias.data
    assert out.shape == x.shape[:-1] + (n_out,) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-5)


@given(batch=batch_shapes, n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_gradcheck_float64(batch, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(batch + (n_in,)), rng.standard_normal((n_out, n_in))]
    if bias:
        inputs.append(rng.standard_normal(n_out))
    assert gradcheck(lambda *args: F.linear(*args), inputs)


@given(rows=st.integers(0, 40), n_in=st.integers(0, 9), n_out=st.integers(0, 9),
       dtype=st.sampled_from([np.float32, np.float64, np.float16]),
       weight_layout=st.sampled_from(["contiguous", "transposed view", "strided view"]),
       seed=st.integers(0, 2**16))
def test_linear_with_bias_every_path_matches_a_float64_product(rows, n_in, n_out, dtype, weight_layout, seed):
    """The bias is added inside BLAS's product for C-contiguous float32/float64
    arrays, and in a second pass otherwise (float16, strided weights, empty
    arrays): every path gives x @ W.T + b, and none writes into its inputs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    weight = rng.standard_normal((n_out, n_in)).astype(dtype)
    if weight_layout == "transposed view":
        weight = np.ascontiguousarray(weight.T).T                    # same values, column-major
    elif weight_layout == "strided view":
        weight = np.repeat(weight, 2, axis=1)[:, ::2]                # every other column of a wider array
    bias = rng.standard_normal(n_out).astype(dtype)
    before = [a.copy() for a in (x, weight, bias)]
    out = F.linear(mdl.tensor(x), mdl.tensor(weight), mdl.tensor(bias)).data
    expected = x.astype(np.float64) @ weight.T.astype(np.float64) + bias
    tolerance = {np.float16: 2e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    assert out.shape == (rows, n_out) and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * max(1, n_in))
    for array, copy in zip((x, weight, bias), before):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("n_in, n_out", [(0, 3), (3, 0), (0, 0)])
def test_f_linear_with_an_empty_feature_dimension(n_in, n_out):
    """in_features = 0 gives the bias in every row, and a zero input gradient
    of the right shape; out_features = 0 gives an empty output."""
    x = mdl.tensor(np.ones((2, 5, n_in)), requires_grad=True)
    weight = mdl.tensor(np.ones((n_out, n_in)), requires_grad=True)
    bias = mdl.tensor(np.arange(n_out, dtype=np.float64), requires_grad=True)
    out = F.linear(x, weight, bias)
    assert out.shape == (2, 5, n_out)
    np.testing.assert_array_equal(out.data, np.broadcast_to(bias.data, (2, 5, n_out)))
    out.backward(np.ones((2, 5, n_out)))
    assert x.grad.shape == (2, 5, n_in) and weight.grad.shape == (n_out, n_in)
    np.testing.assert_array_equal(bias.grad, np.full(n_out, 10.0))


def test_linear_module_parameter_grads_match_the_formulas():
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3, dtype=np.float64)
    x = rng.standard_normal((2, 5, 4))
    g = rng.standard_normal((2, 5, 3))
    layer(mdl.tensor(x)).backward(g)
    np.testing.assert_allclose(layer.weight.grad, np.einsum("bto,bti->oi", g, x), rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, g.sum(axis=(0, 1)), rtol=1e-12)
    # finite differences on the Parameter itself, one entry
    eps, index = 1e-6, (1, 2)
    def f(w):
        return float(np.sum(F.linear(mdl.tensor(x), mdl.tensor(w), layer.bias).data * g))
    w = layer.weight.data.copy()
    plus, minus = w.copy(), w.copy()
    plus[index] += eps
    minus[index] -= eps
    assert layer.weight.grad[index] == pytest.approx((f(plus) - f(minus)) / (2 * eps), rel=1e-6)


def test_float32_linear_bias_gradient_over_a_large_batch_agrees_with_a_float64_sum():
    # dL/dbias is summed as ones @ g (one BLAS product) in float32.
    rng = np.random.default_rng(4)
    layer = nn.Linear(8, 192)
    g = (rng.standard_normal((32, 64, 192)) + 3).astype(np.float32)
    layer(mdl.tensor(rng.standard_normal((32, 64, 8)).astype(np.float32))).backward(g)
    expected = g.astype(np.float64).sum(axis=(0, 1))
    assert layer.bias.grad.dtype == np.float32
    np.testing.assert_allclose(layer.bias.grad, expected, rtol=1e-5)
    layer.zero_grad()
    layer(mdl.tensor(np.zeros((0, 8), np.float32))).backward(np.zeros((0, 192), np.float32))
    np.testing.assert_array_equal(layer.bias.grad, np.zeros(192))   # an empty batch: zero


def test_linear_bad_shapes_and_dtypes_raise_clear_errors():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 5\).*in_features=3"):
        layer(mdl.tensor(np.zeros((4, 5), np.float32)))
    with pytest.raises(TypeError, match="linear: input has dtype float64 but weight has dtype float32"):
        layer(mdl.tensor(np.zeros((4, 3))))
    with pytest.raises(ValueError, match="bias of shape"):
        F.linear(mdl.tensor(np.zeros((1, 3))), mdl.tensor(np.zeros((2, 3))), mdl.tensor(np.zeros(3)))


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    mdl.manual_seed(0)
    n_in = 64
    layer = nn.Linear(n_in, 1000)
    bound = 1 / math.sqrt(n_in)
    w, b = layer.weight.data, layer.bias.data
    assert np.all(np.abs(w) <= bound) and np.all(np.abs(b) <= bound)
    assert np.abs(w).max() > 0.99 * bound                     # not a narrower distribution
    assert abs(w.mean()) < 0.01 * bound * 3
    # U(-b, b) has variance b^2 / 3; 64000 draws give the estimate to ~0.5%
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.03)
    assert b.var() == pytest.approx(bound ** 2 / 3, rel=0.15)


def test_manual_seed_makes_init_repeatable():
    mdl.manual_seed(123)
    a = nn.Linear(5, 5)
    mdl.manual_seed(123)
    b = nn.Linear(5, 5)
    c = nn.Linear(5, 5)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(b.weight.data, c.weight.data)


# ---- init ----------------------------------------------------------------------
def test_fan_in_and_fan_out_for_linear_and_conv_layouts():
    assert init.calculate_fan_in_and_fan_out(mdl.tensor(np.zeros((7, 3)))) == (3, 7)
    assert init.calculate_fan_in_and_fan_out(mdl.tensor(np.zeros((8, 3, 5, 5)))) == (75, 200)
    with pytest.raises(ValueError, match="at least 2"):
        init.calculate_fan_in_and_fan_out(mdl.tensor(np.zeros(4)))


def test_kaiming_and_xavier_bounds_and_variances_on_a_conv_weight():
    mdl.manual_seed(0)
    weight = nn.Parameter(np.zeros((64, 16, 3, 3), np.float32))   # fan_in 144, fan_out 576
    init.kaiming_uniform_(weight, a=0, nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 144)
    assert np.abs(weight.data).max() <= bound and np.abs(weight.data).max() > 0.99 * bound
    assert weight.data.var() == pytest.approx(2.0 / 144, rel=0.05)      # He: var = 2 / fan_in
    init.xavier_uniform_(weight)
    bound = math.sqrt(6.0 / (144 + 576))
    assert np.abs(weight.data).max() <= bound and np.abs(weight.data).max() > 0.99 * bound
    init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    assert weight.data.std() == pytest.approx(math.sqrt(2.0 / 576), rel=0.05)
    assert weight.dtype == np.float32


def test_normal_trunc_normal_zeros_ones_keep_the_tensor():
    mdl.manual_seed(0)
    t = nn.Parameter(np.zeros((200, 100)))
    data = t.data
    assert init.normal_(t, mean=1.0, std=2.0) is t and t.data is data
    assert t.data.mean() == pytest.approx(1.0, abs=0.05) and t.data.std() == pytest.approx(2.0, rel=0.03)
    init.trunc_normal_(t, std=1.0, a=-0.5, b=0.5)
    assert t.data.min() >= -0.5 and t.data.max() <= 0.5 and t.data.std() > 0.2
    init.zeros_(t)
    assert np.all(t.data == 0)
    init.ones_(t)
    assert np.all(t.data == 1)


def test_gains_and_xavier_normal_as_pytorch_defines_them():
    # PyTorch's table of gains, by hand; torch.nn.init.calculate_gain where installed
    table = {("linear", None): 1.0, ("conv2d", None): 1.0, ("sigmoid", None): 1.0,
             ("tanh", None): 5.0 / 3, ("relu", None): math.sqrt(2.0), ("selu", None): 0.75,
             ("leaky_relu", None): math.sqrt(2.0 / (1 + 0.01 ** 2)),
             ("leaky_relu", 0.2): math.sqrt(2.0 / 1.04)}
    torch = None
    try:
        import torch
    except ImportError:
        pass
    for (name, param), gain in table.items():
        assert init.calculate_gain(name, param) == pytest.approx(gain, rel=1e-12), name
        if torch is not None:
            assert torch.nn.init.calculate_gain(name, param) == pytest.approx(gain, rel=1e-12), name
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    mdl.manual_seed(0)
    weight = nn.Parameter(np.zeros((300, 400)))                  # fan_in 400, fan_out 300
    init.xavier_normal_(weight, gain=2.0)                        # std = 2 * sqrt(2 / 700)
    assert weight.data.mean() == pytest.approx(0.0, abs=0.002)
    assert weight.data.std() == pytest.approx(2.0 * math.sqrt(2.0 / 700), rel=0.02)


def test_degenerate_ranges_fill_a_constant_and_bad_ones_raise():
    t = nn.Parameter(np.zeros((3, 4)))
    init.uniform_(t, 0.5, 0.5)                                   # U(a, a) is the constant a
    assert np.all(t.data == 0.5)
    init.normal_(t, mean=-2.0, std=0.0)                          # N(mean, 0) is the constant mean
    assert np.all(t.data == -2.0)
    with pytest.raises(ValueError, match="uniform_: need a <= b, got a=1, b=0"):
        init.uniform_(t, 1, 0)
    with pytest.raises(ValueError, match="normal_: std must be >= 0, got -1"):
        init.normal_(t, std=-1)
    with pytest.raises(ValueError, match="trunc_normal_: need a < b, got a=1, b=1"):
        init.trunc_normal_(t, a=1, b=1)
    with pytest.raises(ValueError, match="kaiming init: mode must be 'fan_in' or 'fan_out', got 'fan'"):
        init.kaiming_normal_(t, mode="fan")


# ---- Dropout -------------------------------------------------------------------
def test_dropout_zeroes_about_p_and_scales_survivors():
    mdl.manual_seed(0)
    p = 0.3
    x = np.random.default_rng(1).uniform(1, 2, size=200_000).astype(np.float32)
    out = F.dropout(mdl.tensor(x), p=p, training=True).data
    dropped = out == 0
    # binomial std of the fraction: sqrt(p(1-p)/n) ~ 0.001
    assert dropped.mean() == pytest.approx(p, abs=0.005)
    np.testing.assert_allclose(out[~dropped], x[~dropped] / (1 - p), rtol=1e-6)
    assert out.mean() == pytest.approx(x.mean(), rel=0.01)     # expectation preserved
    assert out.dtype == np.float32


def test_dropout_module_defaults_to_p_one_half():
    assert nn.Dropout().p == 0.5 and "p=0.5" in repr(nn.Dropout())


def test_dropout_module_train_and_eval():
    layer = nn.Dropout(0.5)
    x = mdl.tensor(np.ones((100, 100), np.float32))
    assert np.any(layer(x).data == 0)
    assert set(np.unique(layer(x).data)) <= {0.0, 2.0}
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    assert repr(layer) == "Dropout(p=0.5)"


def test_dropout_edge_probabilities_and_errors():
    x = mdl.tensor(np.ones((10, 10), np.float32))
    assert np.all(F.dropout(x, p=1.0).data == 0)
    np.testing.assert_array_equal(F.dropout(x, p=0.0).data, x.data)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout: probability p must be in"):
            F.dropout(x, p=bad)
        with pytest.raises(ValueError, match="Dropout"):
            nn.Dropout(bad)


def test_dropout_backward_uses_the_same_mask_and_passes_gradcheck():
    x = mdl.tensor(np.random.default_rng(0).standard_normal((6, 7)), requires_grad=True)
    out = F.dropout(x, p=0.4)
    out.backward(np.ones(out.shape))
    kept = out.data != 0
    np.testing.assert_allclose(x.grad, kept / 0.6)

    def fn(t):
        mdl.manual_seed(7)                         # the same mask at every evaluation
        return F.dropout(t, p=0.4)
    assert gradcheck(fn, [np.random.default_rng(1).standard_normal((3, 4))])


# ---- Flatten -------------------------------------------------------------------
@pytest.mark.parametrize("start, end, shape", [(1, -1, (2, 3, 4, 5)), (0, -1, (2, 3, 4)),
                                               (1, 2, (2, 3, 4, 5)), (-2, -1, (2, 3, 4))])
def test_flatten_matches_numpy_reshape_and_backprops(start, end, shape):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    s, e = start % len(shape), end % len(shape)
    expected = x.reshape(shape[:s] + (-1,) + shape[e + 1:])
    t = mdl.tensor(x, requires_grad=True)
    out = nn.Flatten(start, end)(t)
    np.testing.assert_array_equal(out.data, expected)
    out.backward(np.ones(out.shape))
    assert t.grad.shape == shape


def test_flatten_rejects_bad_dims():
    with pytest.raises(ValueError, match="Flatten"):
        nn.Flatten(2, 1)(mdl.tensor(np.zeros((2, 3, 4))))


# ---- activations and Sequential ---------------------------------------------------
@pytest.mark.parametrize("module, reference", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.Tanh(), np.tanh),
    (nn.Sigmoid(), scipy.special.expit),
    (nn.GELU(), lambda x: x * 0.5 * (1 + scipy.special.erf(x / np.sqrt(2)))),
    (nn.GELU(approximate="tanh"), lambda x: x * 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
])
def test_activation_modules_match_references(module, reference):
    x = np.random.default_rng(0).standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5                                   # away from the kink at 0
    np.testing.assert_allclose(module(mdl.tensor(x)).data, reference(x), rtol=1e-7, atol=1e-7)
    assert gradcheck(lambda t: module(t), [x])


def test_sequential_is_the_composition():
    mdl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.LeakyReLU(0.1), nn.Linear(4, 2))
    x = np.random.default_rng(0).standard_normal((3, 2, 3)).astype(np.float32)
    h = x.reshape(3, 6) @ model[1].weight.data.T + model[1].bias.data
    h = np.where(h > 0, h, 0.1 * h)
    expected = h @ model[3].weight.data.T + model[3].bias.data
    np.testing.assert_allclose(model(mdl.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    assert "(2): LeakyReLU(negative_slope=0.1)" in repr(model)
    assert repr(nn.GELU()) == "GELU(approximate='none')" and repr(nn.Tanh()) == "Tanh()"


def test_linear_and_embedding_sizes_start_at_one():
    layer = nn.Linear(1, 1)                                       # the smallest layer there is
    assert layer.weight.shape == (1, 1) and layer(mdl.tensor(np.ones((3, 1), np.float32))).shape == (3, 1)
    table = nn.Embedding(1, 1)
    assert table(mdl.tensor(np.zeros((2, 3), np.int64))).shape == (2, 3, 1)
    for sizes in [(0, 2), (2, 0), (0, 0), (-1, 3)]:
        with pytest.raises(ValueError, match=f"Linear: in_features and out_features must be positive, "
                                             f"got {sizes[0]} and {sizes[1]}"):
            nn.Linear(*sizes)
        with pytest.raises(ValueError, match=f"Embedding: num_embeddings and embedding_dim must be positive, "
                                             f"got {sizes[0]} and {sizes[1]}"):
            nn.Embedding(*sizes)


# ---- boundaries and reprs (mutation audit) ----------------------------------------------
def test_dropout_takes_p_from_0_to_1_inclusive():
    x = mdl.tensor(np.ones((4, 5), np.float32))
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, np.zeros((4, 5)))     # everything dropped
    for p in (-0.1, 1.05):
        with pytest.raises(ValueError, match="p"):
            nn.Dropout(p)


def test_upsample_repr_names_what_it_was_given():
    assert "size=(4, 6)" in repr(nn.Upsample(size=(4, 6)))
    assert "scale_factor=2" in repr(nn.Upsample(scale_factor=2)) and "size" not in repr(nn.Upsample(scale_factor=2))


def test_conv_layers_take_one_channel_and_refuse_negative_padding_alone():
    assert nn.Conv2d(1, 1, 3).weight.shape == (1, 1, 3, 3)
    assert nn.ConvTranspose2d(2, 1, 2).stride == (1, 1)                        # PyTorch's default stride
    x = mdl.tensor(np.ones((1, 2, 3, 3), np.float32))
    assert nn.ConvTranspose2d(2, 1, 2)(x).shape == (1, 1, 4, 4)
    for layer in (nn.Conv2d, nn.ConvTranspose2d):
        with pytest.raises(ValueError, match="padding >= 0"):
            layer(1, 1, 3, padding=-1)
    assert nn.Conv2d(1, 1, 3, padding="valid").padding == (0, 0)


def test_functional_dropout_defaults_to_one_half_and_refuses_integers():
    mdl.manual_seed(0)
    out = F.dropout(mdl.tensor(np.ones(100_000, np.float32)))
    dropped = float(np.mean(out.data == 0))
    assert 0.48 < dropped < 0.52, dropped
    np.testing.assert_array_equal(out.data[out.data != 0], 2.0)       # kept ones scaled by 1 / (1 - p)
    with pytest.raises(TypeError, match="expected a floating-point input"):
        F.dropout(mdl.tensor(np.ones(4, np.int64)))
