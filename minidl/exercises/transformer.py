"""Checks for tutorial 06 (Transformers): a causal attention head and
LayerNorm in NumPy, and sampling the next token with temperature and top-k."""
import numpy as np

from .runner import Exercise


def _sample_next_token(student):
    logits = np.array([2.0, 0.5, -1.0, 1.5, 0.0, -3.0])
    rng = np.random.default_rng(13)
    for top_k in (1, None):
        temperature = 1.0 if top_k == 1 else 1e-3
        picks = {int(student.sample_next_token(logits, temperature, top_k, rng)) for _ in range(50)}
        assert picks == {0}, (f"temperature {temperature}, top_k {top_k}: expected always the largest logit "
                              f"(index 0), got {sorted(picks)}")
    picks = [int(student.sample_next_token(logits, 1.0, 3, rng)) for _ in range(3000)]
    assert set(picks) <= {0, 3, 1}, f"top_k = 3 may only pick the 3 largest logits (0, 3, 1), got {sorted(set(picks))}"
    assert len(set(picks)) == 3, "top_k = 3 with temperature 1 should pick each of the three sometimes"
    for temperature in (0.5, 2.0):
        n = 20000
        counts = np.bincount([int(student.sample_next_token(logits, temperature, None, rng)) for _ in range(n)],
                             minlength=len(logits))
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        tolerance = 5 * np.sqrt(expected * (1 - expected) / n) + 1e-3          # 5 standard errors
        assert np.all(np.abs(counts / n - expected) < tolerance), (
            f"temperature {temperature}: sampled frequencies {np.round(counts / n, 3).tolist()}, "
            f"expected softmax(logits / T) = {np.round(expected, 3).tolist()}")


def _causal_attention(student):
    import minidl as mdl
    import minidl.functional as F

    rng = np.random.default_rng(14)
    for T, d, dv in ((1, 4, 4), (5, 8, 3), (9, 16, 16)):
        q, k, v = rng.standard_normal((T, d)), rng.standard_normal((T, d)), rng.standard_normal((T, dv))
        got = np.asarray(student.causal_attention(q, k, v))
        expected = F.scaled_dot_product_attention(mdl.tensor(q), mdl.tensor(k), mdl.tensor(v), is_causal=True).data
        assert got.shape == (T, dv), f"q, k {q.shape}, v {v.shape}: output should be {(T, dv)}, got {got.shape}"
        error = np.abs(got - expected).max()
        assert error < 1e-10, (f"T = {T}, d = {d}: largest difference from F.scaled_dot_product_attention"
                               f"(..., is_causal=True) is {error:.2e}")
    q = rng.standard_normal((4, 4)) * 200                                     # huge scores: stay finite
    assert np.all(np.isfinite(student.causal_attention(q, q, q))), "scores of size 1e4 overflow: subtract the row max"


def _layer_norm(student):
    import minidl as mdl
    from minidl import nn

    rng = np.random.default_rng(15)
    for shape, eps in (((3, 8), 1e-5), ((2, 4, 16), 1e-3)):
        x = rng.standard_normal(shape) * 3 + 1
        module = nn.LayerNorm(shape[-1], eps=eps).double()
        module.weight.data[...] = rng.uniform(0.5, 1.5, shape[-1])
        module.bias.data[...] = rng.uniform(-1, 1, shape[-1])
        got = np.asarray(student.layer_norm(x, module.weight.data, module.bias.data, eps=eps))
        error = np.abs(got - module(mdl.tensor(x)).data).max()
        assert error < 1e-10, (f"shape {shape}, eps {eps}: largest difference from nn.LayerNorm is {error:.2e} "
                               "(the biased variance, over the last axis only)")


EXERCISES = [
    Exercise(3, "sample_next_token with temperature and top_k", _sample_next_token,
             "divide the logits by the temperature, keep the top_k largest (others -inf), softmax "
             "(subtract the max), then rng.choice(len(p), p=p)."),
    Exercise(7, "causal_attention, one head in NumPy", _causal_attention,
             "scores = q @ k.T / sqrt(d); set scores[i, j] = -inf for j > i; softmax each row "
             "(subtract the row max first); weights @ v."),
    Exercise(8, "layer_norm in NumPy", _layer_norm,
             "mean and variance over axis=-1 with keepdims=True (np.var, not the unbiased one); "
             "weight * (x - mean) / sqrt(var + eps) + bias."),
]
