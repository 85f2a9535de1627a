"""`MultiheadAttention`: several attention heads side by side, PyTorch's layout.

    attention = nn.MultiheadAttention(embed_dim=64, num_heads=4, batch_first=True)
    out, weights = attention(x, x, x, is_causal=True)    # self-attention

Each head h looks at the sequence through its own projections:

    head_h = softmax(Q_h K_h^T / sqrt(d) + mask) V_h,   Q_h = x W_q,h  (d = embed_dim / num_heads)
    out    = concat(head_1 .. head_H) W_o

The projections of all heads are stored in one matrix, as in PyTorch:
`in_proj_weight` (3 * embed_dim, embed_dim) holds W_q, W_k, W_v stacked, and
`out_proj` is a Linear(embed_dim, embed_dim). The attention itself is
`F.scaled_dot_product_attention` (the fused kernel). For self-attention
(query, key and value the same tensor) the three projections are one
product with the whole `in_proj_weight`, and `self_attention_heads`
(minidl/ops/attention.py) splits its (N, T, 3E) result into heads, attends
and puts the heads side by side again in one op: the same values, with
fewer copies and one (N, T, 3E) gradient for the projection's backward.

Masks follow PyTorch's MultiheadAttention, which is the OPPOSITE of
scaled_dot_product_attention's bool convention:
- `attn_mask` (L, S) or (N * num_heads, L, S): bool True = NOT allowed to
  attend; a float mask is added to the scores.
- `key_padding_mask` (N, S): bool True = this key is padding, ignore it; a
  float mask is added to the scores (of every query and head).

The returned weights (head-averaged by default) are computed separately for
plots and analysis; they carry no gradient.
"""
import math

import numpy as np

from .. import functional as F
from ..autograd.grad_mode import no_grad
from ..ops.attention import self_attention_heads
from . import init
from .linear import Linear
from .module import Module
from .parameter import Parameter


class MultiheadAttention(Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=True):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} is not divisible "
                             f"by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=np.float32))
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=np.float32)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        init.xavier_uniform_(self.in_proj_weight)       # PyTorch's initialisation
        if bias:
            init.zeros_(self.out_proj.bias)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"

    def _project(self, x, which):
        """x (N, T, E) -> one of q, k, v split into heads: (N, H, T, d)."""
        E = self.embed_dim
        weight = self.in_proj_weight[which * E:(which + 1) * E]                   # (E, E)
        bias = None if self.in_proj_bias is None else self.in_proj_bias[which * E:(which + 1) * E]
        N, T, _ = x.shape
        y = F.linear(x, weight, bias)                                            # (N, T, E)
        return y.reshape(N, T, self.num_heads, self.head_dim).transpose(1, 2)    # (N, H, T, d)

    def _heads_of(self, qkv, which):
        """q (0), k (1) or v (2) out of a packed projection (N, T, 3E), as (N, H, T, d)."""
        N, T, _ = qkv.shape
        part = qkv[:, :, which * self.embed_dim:(which + 1) * self.embed_dim]   # (N, T, E)
        return part.reshape(N, T, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        self_attention = query is key and key is value
        if not self.batch_first:                       # (T, N, E) -> (N, T, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        self._check(query, key, value)
        N, L, E = query.shape
        S = key.shape[1]

        mask = self._combined_mask(attn_mask, key_padding_mask, N, L, S, self.in_proj_weight.dtype)
        causal = is_causal and mask is None
        if is_causal and mask is not None:             # fold causality into the mask
            allowed = np.tril(np.ones((L, S), dtype=bool))
            mask = _and_masks(mask, allowed)
        dropout_p = self.dropout if self.training else 0.0
        if self_attention:                             # one projection for q, k and v
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)       # (N, L, 3E)
            out = self_attention_heads(qkv, self.num_heads, mask=mask, is_causal=causal,
                                       dropout_p=dropout_p)                     # (N, L, E)
            if need_weights:
                q, k = (self._heads_of(qkv.data, which) for which in (0, 1))    # (N, H, L, d)
        else:
            q = self._project(query, 0)                # (N, H, L, d)
            k = self._project(key, 1)                  # (N, H, S, d)
            v = self._project(value, 2)                # (N, H, S, d)
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                                   is_causal=causal)            # (N, H, L, d)
            out = heads.transpose(1, 2).reshape(N, L, E)                        # (N, L, E)
        out = self.out_proj(out)                                                # (N, L, E)
        if not self.batch_first:
            out = out.transpose(0, 1)

        weights = None
        if need_weights:
            with no_grad():
                weights = F.attention_weights(q, k, attn_mask=mask,
                                              is_causal=causal)                # (N, H, L, S)
                if average_attn_weights:
                    weights = weights.mean(dim=1)                              # (N, L, S)
        return out, weights

    def _check(self, query, key, value):
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.ndim != 3 or t.shape[-1] != self.embed_dim:
                raise ValueError(
                    f"MultiheadAttention: {name} must be (N, T, {self.embed_dim}) with "
                    f"batch_first=True, got shape {t.shape}")
        if key.shape[:2] != value.shape[:2] or query.shape[0] != key.shape[0]:
            raise ValueError(f"MultiheadAttention: query {query.shape}, key {key.shape} and "
                             f"value {value.shape} disagree on batch or source length")

    def _combined_mask(self, attn_mask, key_padding_mask, N, L, S, dtype):
        """Turn PyTorch's MHA masks into one scaled_dot_product_attention mask:
        bool True = may attend (broadcast to (N, H, L, S)), or an additive float."""
        mask = None
        if attn_mask is not None:
            m = np.asarray(getattr(attn_mask, "data", attn_mask))
            if m.shape == (L, S):
                m = m[None, None]                                           # (1, 1, L, S)
            elif m.shape == (N * self.num_heads, L, S):
                m = m.reshape(N, self.num_heads, L, S)                      # (N, H, L, S)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must be ({L}, {S}) or "
                                 f"({N * self.num_heads}, {L}, {S}), got {m.shape}")
            if m.dtype != bool and m.dtype.kind != "f":
                raise TypeError(f"MultiheadAttention: attn_mask must be bool (True = not allowed) "
                                f"or float (added to the scores), got dtype {m.dtype}")
            mask = ~m if m.dtype == bool else m.astype(dtype)
        if key_padding_mask is not None:
            p = np.asarray(getattr(key_padding_mask, "data", key_padding_mask))
            if p.shape != (N, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be ({N}, {S}), "
                                 f"got {p.shape}")
            if p.dtype == bool:
                keep = ~p[:, None, None, :]                                  # (N, 1, 1, S)
                mask = keep if mask is None else _and_masks(mask, keep)
            elif p.dtype.kind == "f":                                        # added to the scores
                added = p.astype(dtype)[:, None, None, :]                    # (N, 1, 1, S)
                mask = added if mask is None else _additive(mask, dtype) + added
            else:
                raise TypeError(f"MultiheadAttention: key_padding_mask must be bool (True = "
                                f"padding) or float (added to the scores), got dtype {p.dtype}")
        return mask


def _additive(mask, dtype):
    """A mask (bool 'may attend' or additive float) as the float added to the scores."""
    if mask.dtype == bool:
        return np.where(mask, 0.0, -math.inf).astype(dtype)
    return mask


def _and_masks(mask, allowed):
    """Combine a mask (bool 'may attend' or additive float) with a bool 'may attend'."""
    if mask.dtype == bool:
        return mask & allowed
    return np.where(allowed, mask, -math.inf).astype(mask.dtype)
