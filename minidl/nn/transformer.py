"""`TransformerEncoderLayer`: attention, then a small MLP, each wrapped in a
residual connection and a LayerNorm.

    post-norm (norm_first=False, PyTorch's default; the original Transformer):
        x = norm1(x + dropout(self_attn(x)))
        x = norm2(x + dropout(mlp(x)))
    pre-norm (norm_first=True; GPT-2, ViT; trains more easily when deep):
        x = x + dropout(self_attn(norm1(x)))
        x = x + dropout(mlp(norm2(x)))

where mlp(x) = linear2(dropout(activation(linear1(x)))). Batch first: (N, T, E).
"""
import copy

from .. import functional as F
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .multihead_attention import MultiheadAttention
from .normalization import LayerNorm

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=True, norm_first=False, bias=True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"TransformerEncoderLayer: activation must be one of "
                             f"{sorted(ACTIVATIONS)}, got {activation!r}")
        if not batch_first:
            raise ValueError("TransformerEncoderLayer: minidl supports batch_first=True only")
        self.activation_name, self.norm_first = activation, norm_first
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        # bias=False leaves out every additive bias, the norms' too (as PyTorch)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout = Dropout(dropout)     # inside the MLP
        self.dropout1 = Dropout(dropout)    # on the attention branch
        self.dropout2 = Dropout(dropout)    # on the MLP branch

    def extra_repr(self):
        return f"activation={self.activation_name}, norm_first={self.norm_first}"

    def _attention_block(self, x, attn_mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)     # (N, T, E)
        return self.dropout1(out)

    def _mlp_block(self, x):
        hidden = ACTIVATIONS[self.activation_name](self.linear1(x))        # (N, T, F)
        return self.dropout2(self.linear2(self.dropout(hidden)))          # (N, T, E)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src                                                            # (N, T, E)
        if self.norm_first:
            x = x + self._attention_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._mlp_block(self.norm2(x))
        else:
            x = self.norm1(x + self._attention_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._mlp_block(x))
        return x


class TransformerEncoder(Module):
    """`num_layers` copies of `encoder_layer` applied in turn, with an optional
    final LayerNorm (needed after pre-norm layers). As in PyTorch, the copies
    start with identical weights (deep copies of the given layer)."""

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=is_causal)
        return x if self.norm is None else self.norm(x)
