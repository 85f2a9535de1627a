"""A decoder-only Transformer (GPT) that predicts the next token.

    config = GPTConfig(vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config)
    logits = model(idx)                            # idx (N, T) int -> (N, T, vocab_size)
    text_ids = model.generate(prompt, 200, temperature=0.8, top_k=10)

The same class serves characters (Shakespeare) and images read as sequences of
pixels (each pixel quantised to a few grey levels, the sequence started by a
class token so you can ask for a "7"): only the vocabulary differs.

Each block is pre-norm, as in GPT-2:
    x = x + attention(layer_norm(x))   causal: position t sees positions <= t
    x = x + mlp(layer_norm(x))         mlp: Linear(E, 4E) -> GELU -> Linear(4E, E)
"""
from dataclasses import dataclass, asdict

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd.grad_mode import no_grad
from .. import random as minidl_random


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 128      # longest context the model sees
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0

    def to_dict(self):
        return asdict(self)


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = nn.MultiheadAttention(config.n_embd, config.n_head, dropout=config.dropout)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd), nn.Dropout(config.dropout))
        self.attn_dropout = nn.Dropout(config.dropout)

    def forward(self, x):                                                   # (N, T, E)
        h = self.ln_1(x)
        attended, _ = self.attn(h, h, h, need_weights=False, is_causal=True)  # (N, T, E)
        x = x + self.attn_dropout(attended)
        return x + self.mlp(self.ln_2(x))                                   # (N, T, E)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.LearnedPositionalEmbedding(config.block_size, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        for name, parameter in self.named_parameters():    # GPT-2's initialisation
            if name.endswith("weight") and parameter.ndim == 2 and "position" not in name:
                nn.init.normal_(parameter, std=0.02)
            elif name.endswith("bias") and "ln" not in name and "norm" not in name:
                nn.init.zeros_(parameter)

    def forward(self, idx):
        idx = np.asarray(getattr(idx, "data", idx))
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(f"GPT: expected integer token ids of shape (N, T), got "
                             f"{idx.shape} of dtype {idx.dtype}")
        if idx.shape[1] > self.config.block_size:
            raise ValueError(f"GPT: sequence length {idx.shape[1]} exceeds block_size "
                             f"{self.config.block_size}")
        x = self.position_embedding(self.token_embedding(idx))             # (N, T, E)
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)                                                   # (N, T, E)
        return self.lm_head(self.ln_f(x))                                  # (N, T, V)

    def loss(self, idx, targets):
        """Mean cross-entropy of predicting targets (N, T) from idx (N, T)."""
        logits = self(idx)                                                 # (N, T, V)
        N, T, V = logits.shape
        return F.cross_entropy(logits.reshape(N * T, V), np.asarray(targets).reshape(N * T))

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, rng=None):
        """Extend idx (N, T) by sampling one token at a time; returns (N, T + new)."""
        if not temperature > 0:
            raise ValueError(f"GPT.generate: temperature must be > 0, got {temperature}")
        if top_k is not None and (int(top_k) != top_k or top_k < 1):
            raise ValueError(f"GPT.generate: top_k must be a positive integer or None, got {top_k}")
        if max_new_tokens < 0:
            raise ValueError(f"GPT.generate: max_new_tokens must be >= 0, got {max_new_tokens}")
        rng = rng or minidl_random.generator()
        idx = np.array(getattr(idx, "data", idx), dtype=np.int64)
        if idx.ndim != 2 or idx.shape[1] < 1:
            raise ValueError(f"GPT.generate: expected a prompt of token ids (N, T) with T >= 1, "
                             f"got shape {idx.shape}")
        was_training = self.training
        self.eval()
        with no_grad():
            for _ in range(max_new_tokens):
                context = idx[:, -self.config.block_size:]                  # (N, <=block)
                logits = self(context).data[:, -1, :].astype(np.float64) / temperature   # (N, V)
                if top_k is not None:
                    kth = np.sort(logits, axis=-1)[:, -min(top_k, logits.shape[-1])][:, None]
                    logits = np.where(logits < kth, -np.inf, logits)
                probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
                probs /= probs.sum(axis=-1, keepdims=True)                  # (N, V)
                choice = [rng.choice(probs.shape[1], p=row) for row in probs]
                idx = np.concatenate([idx, np.array(choice, dtype=np.int64)[:, None]], axis=1)
        self.train(was_training)
        return idx

    def attention_maps(self, idx):
        """Head-averaged attention weights of every block for one batch:
        a list of (N, T, T) arrays, for plots."""
        maps, was_training = [], self.training
        self.eval()                                   # no dropout in what is plotted
        with no_grad():
            x = self.position_embedding(self.token_embedding(np.asarray(idx)))   # (N, T, E)
            for block in self.blocks:
                h = block.ln_1(x)
                _, weights = block.attn(h, h, h, need_weights=True, is_causal=True)  # (N, T, T)
                maps.append(weights.data)
                x = block(x)
        self.train(was_training)
        return maps



# ---- the registry's two GPTs ---------------------------------------------------------
# (n_layer, n_head, n_embd): sized so that a step of the character GPT is short enough
# for about ten minutes of training on a CPU to bring its validation loss under 2 nats
# per character.
MODEL_SIZES = {
    "gpt": (4, 4, 64),
    "pixel-gpt": (4, 4, 64),
}
CHARACTER_BLOCK = 64       # characters of context of the character GPT
PIXEL_LEVELS = 4           # grey levels of pixel-gpt's tokens


def build_character_gpt(input_shape=None, num_classes=None):
    """"gpt": an untrained character GPT over the bundled Shakespeare text's
    characters, CHARACTER_BLOCK characters of context (the image arguments do not apply)."""
    from ..data import load_text

    n_layer, n_head, n_embd = MODEL_SIZES["gpt"]
    vocabulary = set(load_text("shakespeare"))
    return GPT(GPTConfig(vocab_size=len(vocabulary), block_size=CHARACTER_BLOCK,
                         n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=0.0))


def build_pixel_gpt(input_shape, num_classes):
    """"pixel-gpt": images (C, H, W) as C*H*W tokens of PIXEL_LEVELS grey levels,
    after one class token (PIXEL_LEVELS + class) or the "unknown class" token
    (PIXEL_LEVELS + num_classes), so it can also draw without being told the class."""
    channels, height, width = input_shape
    n_layer, n_head, n_embd = MODEL_SIZES["pixel-gpt"]
    return GPT(GPTConfig(vocab_size=PIXEL_LEVELS + num_classes + 1, block_size=channels * height * width,
                         n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=0.0))
