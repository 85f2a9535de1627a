"""Reference solutions of tutorial 06's checked exercises (`minidl check 06
--file tutorials/solutions/06_transformer.py` passes every check)."""
import numpy as np


def _softmax(scores):
    scores = scores - scores.max(axis=-1, keepdims=True)      # the largest is 0: no overflow
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


# ---- exercise 3 ---------------------------------------------------------------
def sample_next_token(logits, temperature, top_k, rng):
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < len(scaled):
        threshold = np.sort(scaled)[-top_k]                    # the k-th largest
        scaled = np.where(scaled >= threshold, scaled, -np.inf)
    p = _softmax(scaled)
    return int(rng.choice(len(p), p=p))


# ---- exercise 7 ---------------------------------------------------------------
def causal_attention(q, k, v):
    T, d = q.shape
    scores = q @ k.T / np.sqrt(d)                             # (T, T)
    future = np.triu(np.ones((T, T), dtype=bool), k=1)        # j > i
    return _softmax(np.where(future, -np.inf, scores)) @ v    # (T, dv)


# ---- exercise 8 ---------------------------------------------------------------
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)                       # biased, like PyTorch's LayerNorm
    return weight * (x - mean) / np.sqrt(var + eps) + bias
