"""BatchNorm1d / BatchNorm2d: forward equals F.batch_norm with the layer's own
parameters and buffers; a hand-written NumPy model of the layer (output and
running statistics) over several training steps; train/eval behaviour;
gradcheck; buffers in state_dict; PyTorch-style repr."""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F
from minidl import nn

from layer_check import gradcheck_module


class NumpyBatchNorm:
    """What BatchNorm should do, written out with NumPy (channel axis 1)."""

    def __init__(self, channels, momentum, eps=1e-5):
        self.mean, self.var = np.zeros(channels), np.ones(channels)
        self.momentum, self.eps, self.batches = momentum, eps, 0

    def __call__(self, x, weight, bias, training):
        axes = tuple(i for i in range(x.ndim) if i != 1)
        shape = [1] * x.ndim
        shape[1] = -1
        if training:
            self.batches += 1
            m = x.size / x.shape[1]
            mu = x.sum(axis=axes) / m
            var = ((x - mu.reshape(shape)) ** 2).sum(axis=axes) / m
            factor = 1.0 / self.batches if self.momentum is None else self.momentum
            self.mean = (1 - factor) * self.mean + factor * mu
            self.var = (1 - factor) * self.var + factor * var * m / (m - 1)
        else:
            mu, var = self.mean, self.var
        x_hat = (x - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + self.eps)
        return x_hat * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5)),
                                          (nn.BatchNorm2d, (4, 3, 3, 2))])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, None])     # 1.0: the last batch's statistics
def test_batchnorm_matches_numpy_model_over_train_and_eval_steps(layer, shape, momentum):
    rng = np.random.default_rng(0)
    bn = layer(3, momentum=momentum).double()
    bn.weight.data[...] = rng.standard_normal(3)
    bn.bias.data[...] = rng.standard_normal(3)
    reference = NumpyBatchNorm(3, momentum)
    for step in range(5):
        training = step != 3                                # one eval step in the middle
        bn.train(training)
        x = rng.standard_normal(shape) * (step + 1) + step
        out = bn(mdl.tensor(x))
        expected = reference(x, bn.weight.data, bn.bias.data, training)
        np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(bn.running_mean.data, reference.mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.data, reference.var, rtol=1e-12)
        assert int(bn.num_batches_tracked.data) == reference.batches


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_forward_equals_functional_composition(training):
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm2d(4)
    bn.weight.data[...] = rng.standard_normal(4)
    bn.running_var.data[...] = rng.uniform(0.5, 2, 4)
    bn.train(training)
    x = mdl.tensor(rng.standard_normal((3, 4, 5, 5)).astype(np.float32))
    mean, var = bn.running_mean.data.copy(), bn.running_var.data.copy()
    expected = F.batch_norm(x, mean, var, mdl.tensor(bn.weight.data), mdl.tensor(bn.bias.data),
                            training=training, momentum=0.1, eps=1e-5)
    out = bn(x)
    np.testing.assert_array_equal(out.data, expected.data)
    np.testing.assert_array_equal(bn.running_mean.data, mean)     # same update as F's
    assert out.dtype == np.float32


def test_batchnorm_eval_output_does_not_depend_on_the_rest_of_the_batch():
    rng = np.random.default_rng(2)
    bn = nn.BatchNorm1d(3)
    for _ in range(3):
        bn(mdl.tensor(rng.standard_normal((8, 3)).astype(np.float32) * 2 + 1))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    bn.train()
    in_train = [bn(mdl.tensor(x)).data[0], bn(mdl.tensor(np.concatenate([x[:1], -x[1:]]))).data[0]]
    assert not np.allclose(in_train[0], in_train[1])                  # batch statistics
    bn.eval()
    stats = bn.running_mean.data.copy()
    alone = bn(mdl.tensor(x[:1])).data[0]
    together = bn(mdl.tensor(x)).data[0]
    np.testing.assert_allclose(alone, together, rtol=1e-6)
    np.testing.assert_array_equal(bn.running_mean.data, stats)       # eval does not update
    assert int(bn.num_batches_tracked.data) == 5


def test_batchnorm_without_running_stats_always_uses_batch_statistics():
    rng = np.random.default_rng(3)
    bn = nn.BatchNorm2d(2, track_running_stats=False, affine=False).eval()
    assert list(bn.parameters()) == [] and bn.state_dict() == {}
    x = rng.standard_normal((4, 2, 3, 3)) * 3 + 2
    out = bn(mdl.tensor(x)).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (5, 2)), (nn.BatchNorm1d, (3, 2, 3)),
                                          (nn.BatchNorm2d, (3, 2, 2, 3))])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck_input_weight_bias(layer, shape, training):
    rng = np.random.default_rng(4)
    bn = layer(2)
    bn.weight.data[...] = rng.standard_normal(2)
    bn.bias.data[...] = rng.standard_normal(2)
    bn.running_mean.data[...] = rng.standard_normal(2)
    bn.train(training)
    assert gradcheck_module(bn, rng.standard_normal(shape))


def test_batchnorm_state_dict_holds_buffers_and_round_trips():
    rng = np.random.default_rng(5)
    bn = nn.BatchNorm2d(3)
    for _ in range(2):
        bn(mdl.tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32) + 3))
    state = bn.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    assert int(state["num_batches_tracked"]) == 2 and state["num_batches_tracked"].dtype == np.int64
    fresh = nn.BatchNorm2d(3)
    fresh.load_state_dict(state)
    x = mdl.tensor(rng.standard_normal((2, 3, 2, 2)).astype(np.float32))
    np.testing.assert_array_equal(fresh.eval()(x).data, bn.eval()(x).data)
    assert not np.allclose(fresh.running_mean.data, 0)


@pytest.mark.parametrize("layer, shape, expected", [
    (nn.BatchNorm2d, (4, 3, 5), "(N, C, H, W)"), (nn.BatchNorm1d, (4, 3, 5, 5), "(N, C)"),
    (nn.BatchNorm1d, (4, 2), "C=3"),
])
def test_batchnorm_wrong_input_shape_names_layer_and_shapes(layer, shape, expected):
    with pytest.raises(ValueError, match=layer.__name__) as info:
        layer(3)(mdl.tensor(np.ones(shape, dtype=np.float32)))
    assert expected in str(info.value) and str(shape) in str(info.value)


def test_batchnorm_training_with_one_value_per_channel_raises():
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(mdl.tensor(np.ones((1, 3), dtype=np.float32)))


def test_batchnorm_repr_and_defaults_like_pytorch():
    bn = nn.BatchNorm2d(16)
    assert repr(bn) == "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    np.testing.assert_array_equal(bn.weight.data, np.ones(16))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(16))
    np.testing.assert_array_equal(bn.running_var.data, np.ones(16))
    assert bn.weight.dtype == np.float32 and bn.running_mean.dtype == np.float32


def test_batchnorm_of_one_channel_and_reset_running_stats():
    rng = np.random.default_rng(3)
    bn = nn.BatchNorm2d(1).double()                          # one channel is a valid layer
    x = rng.standard_normal((4, 1, 3, 3)) * 2 + 5
    out = bn(mdl.tensor(x)).data
    np.testing.assert_allclose(out, (x - x.mean()) / np.sqrt(x.var() + 1e-5), rtol=1e-10)
    assert bn.running_mean.data[0] != 0 and int(bn.num_batches_tracked.data) == 1
    bn.reset_running_stats()                                 # back to mean 0, variance 1, no batches
    np.testing.assert_array_equal(bn.running_mean.data, [0.0])
    np.testing.assert_array_equal(bn.running_var.data, [1.0])
    assert int(bn.num_batches_tracked.data) == 0
    for momentum in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"BatchNorm1d: momentum must be in \\[0, 1\\] or None, got {momentum}"):
            nn.BatchNorm1d(3, momentum=momentum)
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be positive, got 0"):
        nn.BatchNorm2d(0)
