"""LayerNorm, Embedding and Identity: forward equals the minidl.functional
composition, a NumPy reference, gradcheck (input and parameters), initial
values as PyTorch's, state_dict contents and repr."""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F
from minidl import nn

from layer_check import functional_call, gradcheck_module


# ---- LayerNorm ------------------------------------------------------------------
def test_layernorm_matches_numpy_reference_and_functional():
    rng = np.random.default_rng(0)
    ln = nn.LayerNorm((3, 4), eps=1e-3)
    ln.weight.data[...] = rng.standard_normal((3, 4))
    ln.bias.data[...] = rng.standard_normal((3, 4))
    x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32) * 4 + 1
    flat = x.reshape(2, 5, 12).astype(np.float64)
    mu = flat.sum(-1, keepdims=True) / 12
    var = ((flat - mu) ** 2).sum(-1, keepdims=True) / 12
    expected = ((flat - mu) / np.sqrt(var + 1e-3)).reshape(x.shape) * ln.weight.data + ln.bias.data
    out = ln(mdl.tensor(x))
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)
    composed = F.layer_norm(mdl.tensor(x), (3, 4), mdl.tensor(ln.weight.data), mdl.tensor(ln.bias.data),
                            eps=1e-3)
    np.testing.assert_array_equal(out.data, composed.data)


def test_layernorm_same_in_train_and_eval_and_for_any_batch():
    rng = np.random.default_rng(1)
    ln = nn.LayerNorm(6)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    train_out = ln.train()(mdl.tensor(x)).data
    eval_out = ln.eval()(mdl.tensor(x)).data
    np.testing.assert_array_equal(train_out, eval_out)
    np.testing.assert_array_equal(ln(mdl.tensor(x[:1])).data[0], eval_out[0])


@pytest.mark.parametrize("normalized_shape, shape", [(5, (3, 5)), ((2, 3), (2, 2, 3))])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_gradcheck(normalized_shape, shape, affine):
    rng = np.random.default_rng(2)
    ln = nn.LayerNorm(normalized_shape, elementwise_affine=affine)
    if affine:
        ln.weight.data[...] = rng.standard_normal(ln.weight.shape)
        ln.bias.data[...] = rng.standard_normal(ln.bias.shape)
    assert gradcheck_module(ln, rng.standard_normal(shape))


def test_layernorm_parameters_init_state_dict_and_repr():
    ln = nn.LayerNorm(8)
    np.testing.assert_array_equal(ln.weight.data, np.ones(8))
    np.testing.assert_array_equal(ln.bias.data, np.zeros(8))
    assert list(ln.state_dict()) == ["weight", "bias"]
    assert repr(ln) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True)"
    bare = nn.LayerNorm(8, elementwise_affine=False)
    assert list(bare.parameters()) == [] and bare.state_dict() == {}
    assert [n for n, _ in nn.LayerNorm(8, bias=False).named_parameters()] == ["weight"]


def test_layernorm_wrong_input_shape_raises():
    with pytest.raises(ValueError, match=r"layer_norm: input of shape \(2, 7\) must end with"):
        nn.LayerNorm(8)(mdl.tensor(np.ones((2, 7), dtype=np.float32)))
    for shape in [0, (), (3, 0), (-1,)]:
        with pytest.raises(ValueError, match=r"LayerNorm: normalized_shape must be positive sizes, got"):
            nn.LayerNorm(shape)
    single = nn.LayerNorm((1, 3))                                # a size of 1 is a valid axis
    assert single(mdl.tensor(np.ones((2, 1, 3), dtype=np.float32))).shape == (2, 1, 3)
    with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh', got 'fast'"):
        nn.GELU(approximate="fast")


# ---- Embedding ------------------------------------------------------------------
def test_embedding_forward_equals_functional_and_row_lookup():
    mdl.manual_seed(0)
    emb = nn.Embedding(10, 4)
    ids = np.array([[1, 2, 2], [9, 0, 1]])
    out = emb(ids)
    assert out.shape == (2, 3, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data, F.embedding(ids, mdl.tensor(emb.weight.data)).data)
    for i, j in np.ndindex(2, 3):
        np.testing.assert_array_equal(out.data[i, j], emb.weight.data[ids[i, j]])


def test_embedding_gradcheck_and_padding_row():
    rng = np.random.default_rng(3)
    emb = nn.Embedding(5, 3, padding_idx=4).double()
    ids = np.array([[0, 4, 2], [2, 2, 4]])
    np.testing.assert_array_equal(emb.weight.data[4], 0)          # padding row starts at 0
    from minidl.gradcheck import gradcheck
    plain = nn.Embedding(5, 3).double()        # padding_idx's zero gradient is by design, not calculus
    assert gradcheck(lambda w: functional_call(plain, {"weight": w}, ids), [rng.standard_normal((5, 3))])
    out = emb(ids)
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(emb.weight.grad[4], 0)
    np.testing.assert_array_equal(emb.weight.grad[2], 3)


def test_embedding_init_is_standard_normal_and_seeded():
    mdl.manual_seed(7)
    first = nn.Embedding(400, 50).weight.data.copy()
    mdl.manual_seed(7)
    second = nn.Embedding(400, 50).weight.data
    np.testing.assert_array_equal(first, second)
    assert abs(first.mean()) < 0.02 and abs(first.std() - 1) < 0.02


def test_embedding_repr_and_errors():
    assert repr(nn.Embedding(65, 32)) == "Embedding(65, 32)"
    assert repr(nn.Embedding(65, 32, padding_idx=-1)) == "Embedding(65, 32, padding_idx=64)"
    with pytest.raises(ValueError, match="index 65 is out of range"):
        nn.Embedding(65, 32)(np.array([3, 65]))
    with pytest.raises(ValueError, match="Embedding: padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


# ---- Identity ------------------------------------------------------------------
def test_identity_returns_its_input_and_has_no_state():
    x = mdl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    layer = nn.Identity(54, unused="argument")
    assert layer(x) is x
    assert list(layer.parameters()) == [] and layer.state_dict() == {}
    assert repr(layer) == "Identity()"
