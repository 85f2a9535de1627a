"""Exercises 3, 7 and 8 of tutorial 06 (Transformers). Fill in the functions
that raise NotImplementedError, then run `minidl check 06` from the folder
that holds `exercises/` (or `minidl check 06 --file THIS_FILE`). NumPy only."""
import numpy as np


# ---- exercise 3 ---------------------------------------------------------------
def sample_next_token(logits, temperature, top_k, rng):
    """Draw one token index from softmax(logits / temperature), keeping only the
    top_k largest logits (all of them when top_k is None). rng: a NumPy Generator."""
    raise NotImplementedError("exercise 3: sample_next_token")


# ---- exercise 7 ---------------------------------------------------------------
def causal_attention(q, k, v):
    """One causal attention head: q, k (T, d), v (T, dv) -> (T, dv)."""
    raise NotImplementedError("exercise 7: causal_attention")


# ---- exercise 8 ---------------------------------------------------------------
def layer_norm(x, weight, bias, eps=1e-5):
    """LayerNorm over the last axis of x, then scale by weight and shift by bias."""
    raise NotImplementedError("exercise 8: layer_norm")
