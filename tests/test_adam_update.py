"""The compiled Adam/AdamW update (minidl/optim/adam_update.py) against the
NumPy lines of `Adam._update` it replaces: bit for bit, float32 and float64,
with and without weight decay, flat and per-parameter paths, many steps; and
the cases that must keep the NumPy path."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minidl import nn, optim
from minidl.optim import adam as adam_module


def run_steps(cls, starts, grads, fused, monkeypatch, **options):
    """Parameters after len(grads) steps, with the compiled loop on or off."""
    with monkeypatch.context() as patch:
        if not fused:
            patch.setattr(adam_module, "_fused", lambda *args: False)
        params = [nn.Parameter(s.copy()) for s in starts]
        opt = cls(params, **options)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = g
            opt.step()
        return [p.data for p in params], opt


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@settings(max_examples=30, deadline=None)
@given(cls=st.sampled_from([optim.Adam, optim.AdamW]),
       dtype=st.sampled_from([np.float32, np.float64]),
       weight_decay=st.sampled_from([0.0, 0.1, 0.01]),
       lr=st.sampled_from([1e-3, 0.05, 2e-3]),
       betas=st.sampled_from([(0.9, 0.999), (0.8, 0.95), (0.5, 0.5)]),
       eps=st.sampled_from([1e-8, 1e-6]),
       seed=st.integers(0, 2**16))
def test_compiled_update_equals_numpy_update_bit_for_bit(cls, dtype, weight_decay, lr, betas, eps, seed):
    rng = np.random.default_rng(seed)
    shapes = [(3,), (130, 140), (4, 5)]                   # one above adam.SMALL: the per-parameter path
    scale = 10.0 ** rng.integers(-6, 3)                   # gradients of many magnitudes
    starts = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[(scale * rng.standard_normal(s)).astype(dtype) for s in shapes] for _ in range(5)]
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    with pytest.MonkeyPatch.context() as monkeypatch:
        fused, opt_fused = run_steps(cls, starts, grads, True, monkeypatch, **options)
        plain, opt_plain = run_steps(cls, starts, grads, False, monkeypatch, **options)
    for a, b in zip(fused, plain):
        assert same_bits(a, b)
    for i in range(len(shapes)):
        for slot in ("exp_avg", "exp_avg_sq"):
            assert same_bits(opt_fused.state_dict()[f"state.{i}.{slot}"], opt_plain.state_dict()[f"state.{i}.{slot}"])


def test_the_compiled_loop_runs_and_numpy_scalars_keep_the_numpy_path(monkeypatch):
    calls = []
    original = adam_module.adam_update
    monkeypatch.setattr(adam_module, "adam_update", lambda *args: calls.append(1) or original(*args))
    p = nn.Parameter(np.ones(5, np.float32))
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.full(5, 0.5, np.float32)
    opt.step()
    assert calls == [1]
    # a NumPy float64 learning rate makes NumPy compute in float64: the compiled
    # loop (which rounds every constant to float32) must not run then
    q = nn.Parameter(np.ones(5, np.float32))
    opt = optim.Adam([q], lr=np.float64(0.1))
    q.grad = np.full(5, 0.5, np.float32)
    opt.step()
    assert calls == [1]
    assert q.dtype == np.float32 and np.all(q.data < 1)
    # a large parameter (its own update, no flat copy) with a non-contiguous
    # gradient keeps the NumPy path; a small one is copied into the flat buffer
    big = nn.Parameter(np.ones((200, 100), np.float32))       # above adam.SMALL
    opt = optim.Adam([big], lr=0.1)
    big.grad = np.arange(20000, dtype=np.float32).reshape(100, 200).T
    opt.step()
    assert calls == [1]
    assert big.data[0, 0] == 1.0 and np.all(big.data.ravel()[1:] < 1)
    small = nn.Parameter(np.ones((4, 3), np.float32))
    opt = optim.Adam([small], lr=0.1)
    small.grad = np.arange(12, dtype=np.float32).reshape(3, 4).T
    opt.step()
    assert calls == [1, 1]
