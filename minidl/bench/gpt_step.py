"""Benchmark suite: one GPT training step (forward, backward, AdamW) in minidl
and in the same model written in PyTorch, same shapes.

    python -m minidl.bench.gpt_step            # the registry's "gpt" shape and a larger one
    python -m minidl.bench.gpt_step --quick    # a tiny shape (smoke test)
    python -m minidl.bench.gpt_step --cpu      # CPU seconds per step (shared machines)

The PyTorch twin mirrors minidl.models.gpt block for block: token and learned
position embeddings, pre-norm blocks (LayerNorm, causal multi-head attention
with one packed in-projection, LayerNorm, Linear(E, 4E), exact GELU,
Linear(4E, E)), a final LayerNorm and a bias-free head, cross-entropy over
every position, AdamW. It starts from minidl's initial weights (copied), and
`check_same_step` checks that the first two steps' losses agree (before a
table is made, and in the tests), so the two sides do the same work.
Each library runs at its defaults, in its own fresh process (the harness
builds a step only in the process that times it): PyTorch with its own
thread count (one per core), minidl with the thread policy `minidl train`
uses (minidl/threads.py). The table prints each process's thread counts.
Ratios are against torch (above 1: minidl is slower). "minidl, BLAS 1
thread" holds NumPy's matrix products to one thread: what letting them use
every core between Numba's kernels buys. "minidl, malloc defaults" gives
freed memory back to the system at once, as glibc does by default: what
keeping it for the next step buys (minidl/memory.py).

The "work" is the nominal matrix-product flops of forward + backward:
6 * (parameters in the blocks and head) * tokens plus the attention products.
"""
import os
import sys

import numpy as np

from .harness import BuiltOnFirstCall, Case, has_torch, step_suite_main
from ..threads import _blas_libraries, set_training_threads
from .. import optim
from ..models.gpt import GPT, GPTConfig
from .. import random as minidl_random

# (label, batch, block, layers, heads, width, vocab)
STANDARD = [("B32 T64 L4 H4 E64 (registry gpt)", 32, 64, 4, 4, 64, 65),
            ("B32 T128 L4 H4 E128", 32, 128, 4, 4, 128, 65)]
QUICK = [("B4 T16 L2 H2 E32", 4, 16, 2, 2, 32, 65)]


def flops(B, T, L, E, V):
    """Matrix-product flops of one forward + backward (3x the forward)."""
    per_token = L * 12 * E * E + E * V                 # qkv, out, mlp (2 x 4E^2), head
    attention = L * 2 * 2 * T * E                      # QK^T and PV per token (full square)
    return 3 * 2 * B * T * (per_token + attention)


def minidl_setup(B, T, L, H, E, V, seed=0):
    """minidl's GPT, its AdamW and one batch of token ids: (model, optimizer, inputs, targets)."""
    minidl_random.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=E))
    optimizer = optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    inputs, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))   # (B, T) each
    return model, optimizer, inputs, targets


def minidl_step(B, T, L, H, E, V, seed=0):
    model, optimizer, inputs, targets = minidl_setup(B, T, L, H, E, V, seed)

    def step():
        loss = model.loss(inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def minidl_as_trained(B, T, L, H, E, V):
    """minidl's step with the threads `minidl train` uses, set for this process."""
    set_training_threads()
    return minidl_step(B, T, L, H, E, V)


def minidl_malloc_defaults(B, T, L, H, E, V):
    """The same, but freed memory goes back to the system at glibc's defaults
    (MINIDL_KEEP_FREED_MEMORY=0, see minidl/memory.py): what keeping it buys."""
    os.environ["MINIDL_KEEP_FREED_MEMORY"] = "0"        # this process only: read by the next line
    set_training_threads()
    return minidl_step(B, T, L, H, E, V)


def minidl_blas_one_thread(B, T, L, H, E, V):
    """The same, but BLAS held to one thread: what BLAS on every core buys."""
    set_training_threads()
    _blas_libraries().limit(limits=1)
    return minidl_step(B, T, L, H, E, V)


def torch_weights(model):
    """minidl GPT's state_dict under the torch twin's names (as torch tensors)."""
    import torch

    renamed = {"token_embedding.weight": "token.weight", "position_embedding.weight": "position",
               "lm_head.weight": "head.weight"}
    state = {}
    for name, value in model.state_dict().items():
        name = renamed.get(name, name)
        name = name.replace("attn.in_proj_weight", "in_proj.weight").replace("attn.in_proj_bias", "in_proj.bias")
        state[name.replace("attn.out_proj", "out_proj")] = torch.from_numpy(np.array(value))
    return state


def torch_step(B, T, L, H, E, V, seed=0, start_from=None):
    """torch's step; with `start_from` (a minidl GPT) from that model's weights."""
    import torch
    from torch import nn
    import torch.nn.functional as TF

    torch.manual_seed(seed)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(E), nn.LayerNorm(E)
            self.in_proj, self.out_proj = nn.Linear(E, 3 * E), nn.Linear(E, E)
            self.mlp = nn.Sequential(nn.Linear(E, 4 * E), nn.GELU(), nn.Linear(4 * E, E))

        def forward(self, x):                                           # (B, T, E)
            q, k, v = self.in_proj(self.ln_1(x)).split(E, dim=-1)
            q, k, v = (t.reshape(B, T, H, E // H).transpose(1, 2) for t in (q, k, v))
            heads = TF.scaled_dot_product_attention(q, k, v, is_causal=True)   # (B, H, T, d)
            x = x + self.out_proj(heads.transpose(1, 2).reshape(B, T, E))
            return x + self.mlp(self.ln_2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.token, self.position = nn.Embedding(V, E), nn.Parameter(torch.zeros(T, E))
            self.blocks = nn.Sequential(*[Block() for _ in range(L)])
            self.ln_f, self.head = nn.LayerNorm(E), nn.Linear(E, V, bias=False)

        def forward(self, idx):
            x = self.token(idx) + self.position[: idx.shape[1]]
            return self.head(self.ln_f(self.blocks(x)))

    model = TorchGPT()
    if start_from is not None:
        model.load_state_dict(torch_weights(start_from), strict=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    inputs = torch.from_numpy(rng.integers(0, V, (B, T)))
    targets = torch.from_numpy(rng.integers(0, V, (B, T)))

    def step():
        loss = TF.cross_entropy(model(inputs).reshape(B * T, V), targets.reshape(B * T))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def torch_as_default(B, T, L, H, E, V):
    """torch's step at its defaults, from minidl's initial weights."""
    model, _, _, _ = minidl_setup(B, T, L, H, E, V)                  # builds weights only; runs no kernel
    return torch_step(B, T, L, H, E, V, start_from=model)


def check_same_step(quick=False):
    """minidl and the torch twin, from the same weights on the same batch, give
    the same loss on the first step and on the second (which shows the first
    step's backward and AdamW update agree too). Needs torch."""
    for label, B, T, L, H, E, V in (QUICK if quick else STANDARD):
        shape = (B, T, L, H, E, V)
        ours, theirs = minidl_step(*shape), torch_as_default(*shape)
        for which in ("first", "second"):
            mine, reference = ours(), theirs()
            if abs(mine - reference) > 1e-4 * max(1.0, abs(reference)):
                raise AssertionError(f"gpt_step {label}: {which} loss minidl {mine} vs torch {reference}")


def cases(quick=False):
    for label, B, T, L, H, E, V in (QUICK if quick else STANDARD):
        shape = (B, T, L, H, E, V)
        implementations = {"minidl": BuiltOnFirstCall(lambda s=shape: minidl_as_trained(*s), ("numba", "blas")),
                           "minidl, BLAS 1 thread": BuiltOnFirstCall(lambda s=shape: minidl_blas_one_thread(*s),
                                                                     ("numba", "blas")),
                           "minidl, malloc defaults": BuiltOnFirstCall(lambda s=shape: minidl_malloc_defaults(*s),
                                                                       ("numba", "blas"))}
        if has_torch():
            implementations["torch"] = BuiltOnFirstCall(lambda s=shape: torch_as_default(*s), ("torch",))
        yield Case("gpt train step", label, implementations, work=flops(B, T, L, E, V),
                   baseline="torch" if "torch" in implementations else "")


def cpu_seconds_per_call(implementations, rounds=5):
    """Median CPU seconds (time.process_time) of one call of each implementation,
    calls alternating in this process. With one thread each, CPU time is what
    an idle machine would take; wall-clock time on a machine shared with other
    jobs is not. A quick look only (both libraries in one process)."""
    import time

    times = {name: [] for name in implementations}
    for fn in implementations.values():
        fn()                                                     # warm-up (JIT, caches)
    for _ in range(rounds):
        for name, fn in implementations.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv):
    """The first-step check and the wall-clock table (each implementation in
    fresh processes, as `minidl bench gpt_step`), or with --cpu the CPU time
    per step and ratio."""
    quick = "--quick" in argv
    if "--cpu" in argv:
        for case in cases(quick):
            # Only the rows at each library's defaults: the other two change a
            # process-wide setting (BLAS's thread count, malloc's thresholds)
            # that would then hold for every row timed in this one process.
            shared = {name: fn for name, fn in case.implementations.items() if name in ("minidl", "torch")}
            seconds = cpu_seconds_per_call(shared, rounds=3 if quick else 7)
            ratio = (f"  minidl/torch = {seconds['minidl'] / seconds['torch']:.2f}x"
                     if "torch" in seconds else "")
            print(f"{case.shape}: " + ", ".join(f"{k} {1000 * v:.0f} CPU ms/step"
                                                for k, v in seconds.items()) + ratio)
        return
    step_suite_main("gpt_step", check_same_step, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
