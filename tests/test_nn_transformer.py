"""MultiheadAttention, TransformerEncoderLayer and positional embeddings:
forward against NumPy written out in this file, gradcheck on small float64
instances, and masking (the future cannot change the past)."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn
from minidl.gradcheck import gradcheck


def to_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def numpy_mha(module, x, bool_block=None):
    """PyTorch's MultiheadAttention in plain NumPy; bool_block True = NOT allowed."""
    E, H = module.embed_dim, module.num_heads
    d = E // H
    W, b = module.in_proj_weight.data, module.in_proj_bias.data
    q, k, v = (x @ W[i * E:(i + 1) * E].T + b[i * E:(i + 1) * E] for i in range(3))
    N, T, _ = x.shape
    split = lambda t: t.reshape(N, T, H, d).transpose(0, 2, 1, 3)       # (N, H, T, d)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)                    # (N, H, T, T)
    if bool_block is not None:
        scores = np.where(bool_block, -np.inf, scores)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = (weights @ v).transpose(0, 2, 1, 3).reshape(N, T, E)
    out = heads @ module.out_proj.weight.data.T + module.out_proj.bias.data
    return out, weights.mean(axis=1)


def layer_norm(x, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


@pytest.fixture(autouse=True)
def seed():
    mdl.manual_seed(0)


def test_multihead_attention_forward_matches_numpy_reference():
    module = to_float64(nn.MultiheadAttention(8, 2))
    x = np.random.default_rng(1).standard_normal((3, 5, 8))
    out, weights = module(mdl.tensor(x), mdl.tensor(x), mdl.tensor(x))
    expected, expected_weights = numpy_mha(module, x)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-10, atol=1e-12)


def test_multihead_attention_masks_match_reference():
    module = to_float64(nn.MultiheadAttention(8, 4))
    x = np.random.default_rng(2).standard_normal((2, 4, 8))
    padding = np.array([[False, False, False, True], [False, True, False, False]])
    causal_block = np.triu(np.ones((4, 4), dtype=bool), k=1)              # True = blocked
    t = mdl.tensor(x)
    out, _ = module(t, t, t, attn_mask=causal_block, key_padding_mask=padding)
    block = causal_block[None, None] | padding[:, None, None, :]
    expected, _ = numpy_mha(module, x, block)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    out_causal, _ = module(t, t, t, is_causal=True)
    expected_causal, _ = numpy_mha(module, x, causal_block[None, None])
    np.testing.assert_allclose(out_causal.data, expected_causal, rtol=1e-10, atol=1e-12)


def test_multihead_attention_is_causal_with_a_padding_mask_blocks_both():
    """is_causal=True and a key_padding_mask together: the module folds causality
    into the mask, so a query sees neither a later key nor a padded one."""
    module = to_float64(nn.MultiheadAttention(8, 2))
    x = np.random.default_rng(3).standard_normal((2, 5, 8))
    padding = np.array([[False, False, True, False, False], [False, False, False, False, True]])
    t = mdl.tensor(x)
    out, weights = module(t, t, t, key_padding_mask=padding, is_causal=True)
    block = np.triu(np.ones((5, 5), dtype=bool), k=1)[None, None] | padding[:, None, None, :]
    expected, expected_weights = numpy_mha(module, x, block)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-10, atol=1e-12)
    assert np.all(weights.data[np.broadcast_to(block.any(axis=1), weights.shape)] == 0)


def test_multihead_attention_takes_one_mask_per_head():
    """A 3-D attn_mask (N*H, L, S): mask n*H + h applies to sample n, head h."""
    module = to_float64(nn.MultiheadAttention(8, 2))
    N, H, T = 2, 2, 4
    x = np.random.default_rng(4).standard_normal((N, T, 8))
    per_head = np.random.default_rng(5).random((N * H, T, T)) < 0.4       # True = blocked
    per_head[:, :, 0] = False                                            # every query keeps a key
    t = mdl.tensor(x)
    out, weights = module(t, t, t, attn_mask=per_head, average_attn_weights=False)
    expected, _ = numpy_mha(module, x, per_head.reshape(N, H, T, T))
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    assert weights.shape == (N, H, T, T)
    np.testing.assert_array_equal(weights.data == 0, per_head.reshape(N, H, T, T))


def test_multihead_attention_gradcheck():
    """Gradients for the input and for every projection weight, with a causal mask.
    The checker makes its own float64 tensors, so they are put in the parameters' places."""
    module = to_float64(nn.MultiheadAttention(4, 2))
    x = np.random.default_rng(3).standard_normal((2, 3, 4))

    def attention_with(x, w_in, b_in, w_out):
        module._parameters["in_proj_weight"] = w_in
        module._parameters["in_proj_bias"] = b_in
        module.out_proj._parameters["weight"] = w_out
        return module(x, x, x, need_weights=False, is_causal=True)[0]

    weights = [module.in_proj_weight.data, module.in_proj_bias.data, module.out_proj.weight.data]
    assert gradcheck(attention_with, [x] + [w.copy() for w in weights])


def test_causal_self_attention_future_cannot_change_the_past():
    module = nn.MultiheadAttention(8, 2)
    x = np.random.default_rng(4).standard_normal((1, 6, 8)).astype(np.float32)
    changed = x.copy()
    changed[:, 4:] += 10.0                                                # perturb the future
    a, _ = module(mdl.tensor(x), mdl.tensor(x), mdl.tensor(x), is_causal=True)
    b, _ = module(mdl.tensor(changed), mdl.tensor(changed), mdl.tensor(changed), is_causal=True)
    np.testing.assert_array_equal(a.data[:, :4], b.data[:, :4])
    assert not np.allclose(a.data[:, 4:], b.data[:, 4:])


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_numpy_reference(norm_first):
    layer = to_float64(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                                  activation="relu", norm_first=norm_first))
    x = np.random.default_rng(5).standard_normal((2, 5, 8))
    out = layer(mdl.tensor(x)).data

    def mlp(h):
        hidden = np.maximum(h @ layer.linear1.weight.data.T + layer.linear1.bias.data, 0)
        return hidden @ layer.linear2.weight.data.T + layer.linear2.bias.data

    attn = lambda h: numpy_mha(layer.self_attn, h)[0]
    if norm_first:
        h = x + attn(layer_norm(x))
        expected = h + mlp(layer_norm(h))
    else:
        h = layer_norm(x + attn(x))
        expected = layer_norm(h + mlp(h))
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-10)


def test_encoder_layer_gradcheck_through_input():
    layer = to_float64(nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0,
                                                  activation="gelu", norm_first=True))
    x = np.random.default_rng(6).standard_normal((1, 3, 4))
    assert gradcheck(lambda t: layer(t, is_causal=True), [x])


def test_encoder_layer_padding_mask_hides_padded_keys():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    x = np.random.default_rng(7).standard_normal((1, 5, 8)).astype(np.float32)
    padding = np.array([[False, False, False, True, True]])
    changed = x.copy()
    changed[:, 3:] = -x[:, 3:] * 3.0
    a = layer(mdl.tensor(x), src_key_padding_mask=padding).data
    b = layer(mdl.tensor(changed), src_key_padding_mask=padding).data
    np.testing.assert_allclose(a[:, :3], b[:, :3], rtol=1e-5, atol=1e-6)


def test_sinusoidal_table_values_by_hand():
    enc = nn.SinusoidalPositionalEncoding(4, max_len=10)
    out = enc(mdl.tensor(np.zeros((1, 3, 4), dtype=np.float32))).data[0]
    p = 2
    expected = [np.sin(p), np.cos(p), np.sin(p / 100.0), np.cos(p / 100.0)]
    np.testing.assert_allclose(out[p], expected, rtol=1e-6)


def test_learned_positional_embedding_adds_rows_and_has_gradient():
    emb = to_float64(nn.LearnedPositionalEmbedding(6, 3))
    x = np.random.default_rng(8).standard_normal((2, 4, 3))
    out = emb(mdl.tensor(x)).data
    np.testing.assert_allclose(out, x + emb.weight.data[:4])
    assert gradcheck(lambda t: emb(t), [x])
    with pytest.raises(ValueError, match="exceeds max_len"):
        emb(mdl.tensor(np.zeros((1, 7, 3))))


def test_positional_encodings_take_max_len_positions_and_check_shapes():
    table = nn.SinusoidalPositionalEncoding(5, max_len=4)          # an odd dim: 3 sines, 2 cosines
    out = table(mdl.tensor(np.zeros((1, 4, 5)))).data[0]           # exactly max_len positions
    p = np.arange(4)[:, None]
    expected = np.stack([np.sin(p[:, 0]), np.cos(p[:, 0]), np.sin(p[:, 0] / 10000 ** 0.4),
                         np.cos(p[:, 0] / 10000 ** 0.4), np.sin(p[:, 0] / 10000 ** 0.8)], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    assert "table" not in table.state_dict()                       # fixed: rebuilt, not saved
    learned = nn.LearnedPositionalEmbedding(4, 5)
    assert learned(mdl.tensor(np.zeros((2, 4, 5), dtype=np.float32))).shape == (2, 4, 5)
    for module, name in ((table, "SinusoidalPositionalEncoding"), (learned, "LearnedPositionalEmbedding")):
        with pytest.raises(ValueError, match="exceeds max_len 4"):
            module(mdl.tensor(np.zeros((1, 5, 5))))
        for shape in [(4, 5), (1, 4, 6), (1, 2, 4, 5)]:                # not (N, T, 5)
            with pytest.raises(ValueError, match=rf"{name}: expected input \(N, T, 5\), got shape"):
                module(mdl.tensor(np.zeros(shape)))


def test_multihead_attention_rejects_bad_shapes():
    module = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="embed_dim 8 is not divisible"):
        nn.MultiheadAttention(8, 3)
    x = mdl.tensor(np.zeros((2, 3, 6), dtype=np.float32))
    with pytest.raises(ValueError, match=r"query must be \(N, T, 8\)"):
        module(x, x, x)
    y = mdl.tensor(np.zeros((2, 3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        module(y, y, y, key_padding_mask=np.zeros((2, 4), dtype=bool))


def _torch_twin_mha(module):
    """A torch.nn.MultiheadAttention (float64) holding `module`'s weights."""
    torch = pytest.importorskip("torch")
    twin = torch.nn.MultiheadAttention(module.embed_dim, module.num_heads, batch_first=True).double()
    twin.load_state_dict({name: torch.tensor(value) for name, value in module.state_dict().items()})
    return torch, twin


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")   # torch, for "bool"
@pytest.mark.parametrize("attn_mask", ["none", "float", "bool"])
def test_multihead_attention_adds_a_float_key_padding_mask_as_pytorch_does(attn_mask):
    """A float key_padding_mask is added to every query's scores, not read as a
    bool (which once turned each nonzero value into 'padding', blocking the key)."""
    module = to_float64(nn.MultiheadAttention(8, 2))
    torch, twin = _torch_twin_mha(module)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5, 8))
    padding = rng.standard_normal((3, 5))                                  # neither 0 nor -inf
    masks = {"none": None, "float": rng.standard_normal((5, 5)),
             "bool": np.triu(np.ones((5, 5), dtype=bool), k=1)}
    mask = masks[attn_mask]
    t = mdl.tensor(x, requires_grad=True)
    out, weights = module(t, t, t, key_padding_mask=padding, attn_mask=mask)
    tx = torch.tensor(x, requires_grad=True)
    expected, expected_weights = twin(tx, tx, tx, key_padding_mask=torch.tensor(padding),
                                      attn_mask=None if mask is None else torch.tensor(mask))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights.detach().numpy(), rtol=1e-10, atol=1e-12)
    grad = rng.standard_normal(out.shape)
    out.backward(mdl.tensor(grad))
    expected.backward(torch.tensor(grad))
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_multihead_attention_float_key_padding_mask_gradcheck():
    module = to_float64(nn.MultiheadAttention(4, 2))
    padding = np.random.default_rng(7).standard_normal((2, 3))
    x = np.random.default_rng(8).standard_normal((2, 3, 4))
    assert gradcheck(lambda x: module(x, x, x, key_padding_mask=padding, need_weights=False)[0], [x])


def test_multihead_attention_rejects_integer_masks():
    """PyTorch takes bool or float masks only; an integer 0/1 mask would be
    ambiguous (blocked, or added to the scores?)."""
    module = nn.MultiheadAttention(8, 2)
    y = mdl.tensor(np.zeros((2, 3, 8), dtype=np.float32))
    with pytest.raises(TypeError, match="key_padding_mask must be bool .* got dtype int64"):
        module(y, y, y, key_padding_mask=np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="attn_mask must be bool .* got dtype int64"):
        module(y, y, y, attn_mask=np.zeros((3, 3), dtype=np.int64))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_without_bias_has_pytorchs_parameters_and_values(norm_first):
    """bias=False drops the LayerNorms' biases too (they once stayed, learnable,
    so the layer had two parameters PyTorch's has not)."""
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, bias=False,
                                       norm_first=norm_first)
    assert sorted(name for name, _ in layer.named_parameters()) == [
        "linear1.weight", "linear2.weight", "norm1.weight", "norm2.weight",
        "self_attn.in_proj_weight", "self_attn.out_proj.weight"]
    torch = pytest.importorskip("torch")
    twin = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, bias=False,
                                            norm_first=norm_first, batch_first=True).double()
    rng = np.random.default_rng(9)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    layer.to(np.float64).load_state_dict({name: value.numpy() for name, value in twin.state_dict().items()})
    x = rng.standard_normal((2, 5, 8))
    np.testing.assert_allclose(layer(mdl.tensor(x)).data, twin(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


# ---- defaults and modes (mutation audit) ----------------------------------------------
def test_multihead_attention_in_eval_mode_has_no_dropout():
    mdl.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, dropout=0.5)
    mdl.manual_seed(0)
    plain = nn.MultiheadAttention(8, 2, dropout=0.0)
    x = mdl.tensor(np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32))
    attention.eval(), plain.eval()
    np.testing.assert_array_equal(attention(x, x, x)[0].data, plain(x, x, x)[0].data)
    attention.train()
    assert not np.array_equal(attention(x, x, x)[0].data, plain(x, x, x)[0].data)    # dropout is live


def test_multihead_attention_batch_first_false_takes_sequence_first():
    """(T, N, E) with T != N: the same as batch_first=True on the (N, T, E) transpose."""
    mdl.manual_seed(1)
    sequence_first = nn.MultiheadAttention(8, 2, batch_first=False)
    batch_first = nn.MultiheadAttention(8, 2, batch_first=True)
    batch_first.load_state_dict(sequence_first.state_dict())
    rng = np.random.default_rng(1)
    q, k = (rng.standard_normal(shape).astype(np.float32) for shape in ((5, 3, 8), (7, 3, 8)))  # (T, N, E)
    out, weights = sequence_first(mdl.tensor(q), mdl.tensor(k), mdl.tensor(k))
    expected, expected_weights = batch_first(*(mdl.tensor(a.transpose(1, 0, 2)) for a in (q, k, k)))
    assert out.shape == (5, 3, 8) and weights.shape == (3, 5, 7)
    np.testing.assert_allclose(out.data, expected.data.transpose(1, 0, 2), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(weights.data, expected_weights.data, rtol=1e-6, atol=1e-7)


def test_transformer_encoder_defaults_are_pytorchs_and_attention_is_not_causal_unless_asked():
    layer = nn.TransformerEncoderLayer(8, 2)
    assert layer.norm_first is False and layer.self_attn.dropout == 0.1
    assert layer.dropout.p == layer.dropout1.p == layer.dropout2.p == 0.1
    mdl.manual_seed(2)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0), 2)
    encoder.eval()
    x = np.random.default_rng(2).standard_normal((1, 4, 8)).astype(np.float32)
    changed = x.copy()
    changed[0, -1] += 1.0                                          # only the last position
    first, second = encoder(mdl.tensor(x)), encoder(mdl.tensor(changed))
    assert not np.allclose(first.data[0, 0], second.data[0, 0])   # position 0 sees the last one
    causal = encoder(mdl.tensor(x), is_causal=True, mask=None)
    causal_changed = encoder(mdl.tensor(changed), is_causal=True, mask=None)
    np.testing.assert_allclose(causal.data[0, 0], causal_changed.data[0, 0], rtol=1e-6)
