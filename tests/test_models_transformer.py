"""The GPT and the Vision Transformer as whole models: shapes, gradients
(float64, against finite differences), causality, overfitting one batch,
determinism, checkpoint round trips, and GPT.generate's sampling rules."""
import numpy as np
import pytest

import minidl as mdl
import minidl.functional as F
from minidl import optim
from minidl.gradcheck import gradcheck
from minidl.models.gpt import GPT, GPTConfig
from minidl.models.vit import VisionTransformer, build as build_vit


def tiny_gpt(dropout=0.0, vocab=11, block=8, seed=0):
    mdl.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2, n_embd=8,
                         dropout=dropout))


def tiny_vit(dropout=0.0, seed=0):
    mdl.manual_seed(seed)
    return VisionTransformer(image_size=4, patch_size=2, in_channels=1, num_classes=3, dim=8,
                             depth=2, heads=2, mlp_dim=16, dropout=dropout)


def parameter_directional_check(model, loss_fn, directions=4, eps=1e-6, seed=0):
    """Compare the backward pass's gradient with central finite differences of
    the loss along random directions through ALL parameters at once:
    (L(p + eps u) - L(p - eps u)) / 2 eps  vs  sum over parameters of grad . u."""
    params = list(model.parameters())
    for p in params:
        p.grad = None
    loss_fn().backward()
    grads = [p.grad.copy() for p in params]
    rng = np.random.default_rng(seed)
    for _ in range(directions):
        u = [rng.standard_normal(p.shape) for p in params]
        base = [p.data.copy() for p in params]
        values = []
        for sign in (1, -1):
            for p, b, d in zip(params, base, u):
                p.data = b + sign * eps * d
            with mdl.no_grad():
                values.append(loss_fn().item())
        for p, b in zip(params, base):
            p.data = b
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, u))
        assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(numeric), (numeric, analytic)


# ---- shapes --------------------------------------------------------------------
def test_gpt_logits_and_attention_map_shapes():
    model = tiny_gpt()
    idx = np.random.default_rng(0).integers(0, 11, (3, 6))
    assert model(idx).shape == (3, 6, 11)
    maps = model.attention_maps(idx)
    assert len(maps) == 2 and all(m.shape == (3, 6, 6) for m in maps)
    np.testing.assert_allclose(maps[0].sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(maps[1][0], k=1) == 0)            # causal: no weight on the future


def test_vit_logits_and_attention_map_shapes():
    model = build_vit((1, 8, 8), 10)
    assert model.num_patches == 16
    images = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    assert model(mdl.tensor(images)).shape == (2, 10)
    maps = model.attention_maps(mdl.tensor(images))
    assert len(maps) == 4 and all(m.shape == (2, 17, 17) for m in maps)
    np.testing.assert_allclose(maps[-1].sum(axis=-1), 1.0, rtol=1e-5)
    assert build_vit((1, 28, 28), 10).num_patches == 16


def test_bad_inputs_raise_clear_errors():
    gpt = tiny_gpt()
    with pytest.raises(ValueError, match="block_size"):
        gpt(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(ValueError, match="integer token ids"):
        gpt(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="not a multiple"):
        VisionTransformer(image_size=7, patch_size=2)
    with pytest.raises(ValueError, match=r"expected images \(N, C, 4, 4\)"):
        tiny_vit()(mdl.tensor(np.zeros((1, 1, 8, 8), np.float32)))


# ---- gradients -------------------------------------------------------------------
def test_gpt_gradcheck_float64():
    model = tiny_gpt().double()
    rng = np.random.default_rng(1)
    idx, targets = rng.integers(0, 11, (2, 5)), rng.integers(0, 11, (2, 5))
    parameter_directional_check(model, lambda: model.loss(idx, targets))

    def through_blocks(x):                                 # gradient with respect to the embeddings
        for block in model.blocks:
            x = block(x)
        return model.lm_head(model.ln_f(x))
    x = rng.standard_normal((2, 5, 8))
    assert gradcheck(through_blocks, [x], full_jacobian_max=80)


def test_vit_gradcheck_float64():
    model = tiny_vit().double()
    rng = np.random.default_rng(2)
    images, labels = rng.random((2, 1, 4, 4)), np.array([0, 2])
    parameter_directional_check(model, lambda: F.cross_entropy(model(mdl.tensor(images)), labels))
    assert gradcheck(lambda x: model(x), [images], full_jacobian_max=32)


# ---- causality ---------------------------------------------------------------------
def test_gpt_future_tokens_do_not_change_past_logits():
    model = tiny_gpt().double()
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 11, (2, 8))
    before = model(idx).data
    for t in range(7):
        changed = idx.copy()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + rng.integers(0, 9, (2, 7 - t))) % 11
        after = model(changed).data
        np.testing.assert_allclose(after[:, :t + 1], before[:, :t + 1], rtol=0, atol=1e-12)
        assert not np.allclose(after[:, t + 1:], before[:, t + 1:])     # the future did change


# ---- training ---------------------------------------------------------------------
def test_gpt_overfits_one_batch():
    model = tiny_gpt(vocab=13, block=8)
    rng = np.random.default_rng(4)
    idx, targets = rng.integers(0, 13, (4, 8)), rng.integers(0, 13, (4, 8))
    optimizer = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    first = model.loss(idx, targets).item()
    for _ in range(150):
        loss = model.loss(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 2.0 and loss.item() < 0.1, (first, loss.item())


def test_vit_overfits_one_batch():
    model = tiny_vit()
    rng = np.random.default_rng(5)
    images = mdl.tensor(rng.random((12, 1, 4, 4)).astype(np.float32))
    labels = rng.integers(0, 3, 12)
    # lr 3e-3: at 1e-2 the loss of this tiny model spikes back above 1 now and
    # then, so its value after 150 steps would hang on float32 rounding
    optimizer = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(150):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    assert np.all(model(images).data.argmax(axis=1) == labels)


def losses_of_a_few_steps(make_model, batch, loss_fn, steps=4):
    model = make_model()
    mdl.manual_seed(123)                                 # dropout masks
    optimizer = optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("which", ["gpt", "vit"])
def test_same_seed_same_losses_bit_for_bit(which):
    rng = np.random.default_rng(6)
    if which == "gpt":
        make = lambda: tiny_gpt(dropout=0.2)
        batch = (rng.integers(0, 11, (4, 8)), rng.integers(0, 11, (4, 8)))
        loss_fn = lambda model, b: model.loss(*b)
    else:
        make = lambda: tiny_vit(dropout=0.2)
        batch = (mdl.tensor(rng.random((6, 1, 4, 4)).astype(np.float32)), rng.integers(0, 3, 6))
        loss_fn = lambda model, b: F.cross_entropy(model(b[0]), b[1])
    first = losses_of_a_few_steps(make, batch, loss_fn)
    second = losses_of_a_few_steps(make, batch, loss_fn)
    assert first == second
    assert len(set(first)) == len(first)                 # the steps really changed the model


@pytest.mark.parametrize("which", ["gpt", "vit"])
def test_checkpoint_round_trip_gives_identical_outputs(which, tmp_path):
    model = tiny_gpt() if which == "gpt" else tiny_vit()
    rng = np.random.default_rng(7)
    x = rng.integers(0, 11, (2, 8)) if which == "gpt" else mdl.tensor(rng.random((2, 1, 4, 4)).astype(np.float32))
    model.eval()
    expected = model(x).data
    mdl.save(model.state_dict(), tmp_path / "model.npz")
    fresh = tiny_gpt(seed=99) if which == "gpt" else tiny_vit(seed=99)
    fresh.eval()
    assert not np.array_equal(fresh(x).data, expected)
    fresh.load_state_dict(mdl.load(tmp_path / "model.npz"))
    np.testing.assert_array_equal(fresh(x).data, expected)


# ---- generate -------------------------------------------------------------------
def test_generate_samples_only_among_the_top_k():
    model = tiny_gpt(vocab=11)
    prompt = np.tile(np.array([[3, 1, 4]]), (300, 1))                  # (300, 3)
    logits = model(prompt[:1]).data[0, -1]                             # (11,)
    top3 = set(np.argsort(logits)[-3:].tolist())
    drawn = model.generate(prompt, 1, top_k=3, rng=np.random.default_rng(0))[:, -1]
    assert set(drawn.tolist()) <= top3 and len(set(drawn.tolist())) == 3
    free = model.generate(prompt, 1, rng=np.random.default_rng(0))[:, -1]
    assert len(set(free.tolist())) > 3                                 # without top-k: more tokens


def test_generate_top_1_and_low_temperature_are_greedy():
    model = tiny_gpt(vocab=11)
    prompt = np.array([[2, 7]])
    greedy = model.generate(prompt, 6, top_k=1)
    manual = prompt.copy()
    for _ in range(6):
        manual = np.concatenate([manual, model(manual).data[:, -1].argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(greedy, manual)
    cold = model.generate(np.tile(prompt, (50, 1)), 1, temperature=1e-4, rng=np.random.default_rng(1))
    assert np.all(cold[:, -1] == manual[0, 2])


def test_generate_keeps_the_prompt_and_crops_to_block_size():
    model = tiny_gpt(block=8)
    prompt = np.random.default_rng(8).integers(0, 11, (2, 6))
    out = model.generate(prompt, 10, rng=np.random.default_rng(0))
    assert out.shape == (2, 16) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:, :6], prompt)
    assert out.min() >= 0 and out.max() < 11
    assert model.training                                              # mode restored


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=0.0), "temperature"), (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"), (dict(top_k=0), "top_k"),
    (dict(top_k=2.5), "top_k")])
def test_generate_rejects_bad_sampling_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_gpt().generate(np.array([[1]]), 3, **kwargs)


def test_generate_rejects_a_prompt_that_is_not_2d():
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        tiny_gpt().generate(np.array([1, 2]), 3)


def test_vit_overlapping_patches_and_attention_plot(tmp_path):
    from minidl.models.vit import plot_class_attention

    model = VisionTransformer(image_size=8, patch_size=2, patch_kernel=4, dim=8, depth=1, heads=2,
                              mlp_dim=8)
    assert model.patch_embedding.weight.shape == (8, 1, 4, 4) and model.num_patches == 16
    images = mdl.tensor(np.random.default_rng(9).random((2, 1, 8, 8)).astype(np.float32))
    assert model.tokens(images).shape == (2, 17, 8)
    plot_class_attention(model, images, tmp_path / "attention.png", labels=[3, 4])
    assert (tmp_path / "attention.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="patch_kernel"):
        VisionTransformer(image_size=8, patch_size=2, patch_kernel=3)
