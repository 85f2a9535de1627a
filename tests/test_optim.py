"""SGD, Adam and AdamW: a few steps on scalars checked against numbers worked out by
hand from the written-out update rules, a float reference on arrays, checkpointing
of optimizer state, and (if torch is installed) torch.optim."""
import math
import re

import numpy as np
import pytest

import minidl as mdl
from minidl import nn, optim


def run(optimizer_class, grads, p0=0.5, **options):
    """Apply the gradients one step at a time to a scalar parameter; return the trajectory."""
    p = nn.Parameter(np.array([p0]))
    opt = optimizer_class([p], **options)
    trajectory = []
    for g in grads:
        p.grad = np.array([g])
        opt.step()
        trajectory.append(float(p.data[0]))
    return trajectory


# ---- SGD: each expected number worked out step by step ----------------------------------
def test_sgd_plain():
    # p = 0.5 - 0.1 * 1 = 0.4;  0.4 - 0.1 * 2 = 0.2
    assert run(optim.SGD, [1.0, 2.0], lr=0.1) == pytest.approx([0.4, 0.2])


def test_sgd_momentum():
    # b1 = 1            p = 0.5 - 0.1 * 1    = 0.4
    # b2 = 0.9*1 + 2    = 2.9,  p = 0.4 - 0.29  = 0.11
    # b3 = 0.9*2.9 - 1  = 1.61, p = 0.11 - 0.161 = -0.051
    assert run(optim.SGD, [1.0, 2.0, -1.0], lr=0.1, momentum=0.9) == pytest.approx([0.4, 0.11, -0.051])


def test_sgd_momentum_with_dampening():
    # b1 = 1 (no dampening on the first step), p = 0.4
    # b2 = 0.9*1 + (1 - 0.5)*2 = 1.9, p = 0.4 - 0.19 = 0.21
    assert run(optim.SGD, [1.0, 2.0], lr=0.1, momentum=0.9, dampening=0.5) == pytest.approx([0.4, 0.21])


def test_sgd_nesterov():
    # b1 = 1,   g = 1 + 0.9*1 = 1.9,    p = 0.5 - 0.19 = 0.31
    # b2 = 2.9, g = 2 + 0.9*2.9 = 4.61, p = 0.31 - 0.461 = -0.151
    assert run(optim.SGD, [1.0, 2.0], lr=0.1, momentum=0.9, nesterov=True) == pytest.approx([0.31, -0.151])


def test_sgd_weight_decay():
    # g = 1 + 0.1*0.5 = 1.05, p = 0.5 - 0.105 = 0.395
    # g = 1 + 0.1*0.395 = 1.0395, p = 0.395 - 0.10395 = 0.29105
    assert run(optim.SGD, [1.0, 1.0], lr=0.1, weight_decay=0.1) == pytest.approx([0.395, 0.29105])


def test_sgd_momentum_one_and_weight_decay_one_by_hand():
    """The boundary values 1.0 take the momentum and weight-decay paths like any other."""
    # momentum 1: b1 = 1, p = 0.4;  b2 = 1 + 2 = 3, p = 0.4 - 0.3 = 0.1
    assert run(optim.SGD, [1.0, 2.0], lr=0.1, momentum=1.0) == pytest.approx([0.4, 0.1])
    # weight decay 1: g = 1 + 0.5 = 1.5, p = 0.35;  g = 1 + 0.35 = 1.35, p = 0.215
    assert run(optim.SGD, [1.0, 1.0], lr=0.1, weight_decay=1.0) == pytest.approx([0.35, 0.215])


# ---- Adam and AdamW ------------------------------------------------------------------
def test_adam_first_step_moves_by_lr_in_the_gradient_direction():
    # m = 0.1*2 = 0.2, v = 0.001*4 = 0.004; m_hat = 0.2/0.1 = 2, v_hat = 0.004/0.001 = 4
    # p = 1 - 0.1 * 2 / (2 + 1e-8) = 0.9 (to 1e-9)
    assert run(optim.Adam, [2.0], p0=1.0, lr=0.1)[0] == pytest.approx(0.9, abs=1e-9)


def test_adam_two_steps_by_hand():
    # step 1 as above: p = 0.9, m = 0.2, v = 0.004
    # step 2, g = -1: m = 0.9*0.2 - 0.1 = 0.08;  v = 0.999*0.004 + 0.001*1 = 0.004996
    #   m_hat = 0.08 / (1 - 0.81) = 0.42105263...;  v_hat = 0.004996 / (1 - 0.998001) = 2.4992496...
    #   p = 0.9 - 0.1 * 0.42105263 / (sqrt(2.4992496) + 1e-8) = 0.9 - 0.0266338... = 0.8733662
    p1 = 1 - 0.1 * 2 / (2 + 1e-8)                       # 0.9 up to eps
    m_hat, v_hat = 0.08 / 0.19, 0.004996 / 0.001999
    expected = p1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert expected == pytest.approx(0.8733662, abs=1e-7)
    assert run(optim.Adam, [2.0, -1.0], p0=1.0, lr=0.1) == pytest.approx([p1, expected], abs=1e-12)


def test_adam_l2_weight_decay_changes_the_gradient():
    # g = 2 + 0.5*1 = 2.5; first step is still lr * sign: 0.9
    # step 2: g = -1 + 0.5*0.9 = -0.55
    p1 = 1 - 0.1 * 2.5 / (2.5 + 1e-8)
    g2 = -1 + 0.5 * p1
    m1, v1 = 0.25, 0.001 * 2.5 ** 2
    m2, v2 = 0.9 * m1 + 0.1 * g2, 0.999 * v1 + 0.001 * g2 ** 2
    expected = p1 - 0.1 * (m2 / 0.19) / (math.sqrt(v2 / 0.001999) + 1e-8)
    got = run(optim.Adam, [2.0, -1.0], p0=1.0, lr=0.1, weight_decay=0.5)
    assert got == pytest.approx([p1, expected], abs=1e-12)


def test_adamw_decouples_weight_decay():
    # p = 1 * (1 - 0.1*0.5) = 0.95, then the Adam step of 0.1: 0.85
    # step 2: p = 0.85 * 0.95 = 0.8075, then the Adam step (gradient unchanged by decay)
    p1 = 0.95 - 0.1 * 2 / (2 + 1e-8)                    # 0.85 up to eps
    step2 = 0.1 * (0.08 / 0.19) / (math.sqrt(0.004996 / 0.001999) + 1e-8)
    got = run(optim.AdamW, [2.0, -1.0], p0=1.0, lr=0.1, weight_decay=0.5)
    assert got[0] == pytest.approx(0.85, abs=1e-8)
    assert got == pytest.approx([p1, p1 * 0.95 - step2], abs=1e-12)
    assert optim.AdamW([nn.Parameter(np.zeros(1))]).param_groups[0]["weight_decay"] == 0.01


def adam_reference(p, grads, lr, beta1, beta2, eps, weight_decay, decoupled):
    """The update rule written out on Python floats, element by element."""
    p = [float(v) for v in p.ravel()]
    m, v = [0.0] * len(p), [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        g = [float(x) for x in g.ravel()]
        for i in range(len(p)):
            gi = g[i]
            if decoupled:
                p[i] -= lr * weight_decay * p[i]
            else:
                gi += weight_decay * p[i]
            m[i] = beta1 * m[i] + (1 - beta1) * gi
            v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
            m_hat, v_hat = m[i] / (1 - beta1 ** t), v[i] / (1 - beta2 ** t)
            p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return np.array(p)


@pytest.mark.parametrize("cls, decoupled", [(optim.Adam, False), (optim.AdamW, True)])
def test_adam_on_arrays_matches_the_elementwise_reference(cls, decoupled):
    rng = np.random.default_rng(0)
    p0, grads = rng.standard_normal((3, 2)), [rng.standard_normal((3, 2)) for _ in range(6)]
    p = nn.Parameter(p0)
    opt = cls([p], lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
    for g in grads:
        p.grad = g
        opt.step()
    expected = adam_reference(p0, grads, 0.05, 0.8, 0.95, 1e-6, 0.1, decoupled).reshape(3, 2)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls, decoupled", [(optim.Adam, False), (optim.AdamW, True)])
def test_adam_with_many_parameters_matches_the_reference_for_each(cls, decoupled):
    # step() reuses scratch space across parameters of different sizes and
    # dtypes (growing it when a larger one comes): each must still get its own update
    rng = np.random.default_rng(3)
    shapes = [(2,), (5, 3), (), (3,), (4, 2, 2)]
    dtypes = [np.float64, np.float32, np.float64, np.float32, np.float64]
    starts = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(4)]
    params = [nn.Parameter(p0.astype(d)) for p0, d in zip(starts, dtypes)]
    opt = cls(params, lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
    for step_grads in grads:
        for p, g, d in zip(params, step_grads, dtypes):
            p.grad = g.astype(d)
        opt.step()
    for i, (p, p0, d) in enumerate(zip(params, starts, dtypes)):
        own = [step_grads[i].astype(d).astype(np.float64) for step_grads in grads]
        expected = adam_reference(p0.astype(d).astype(np.float64), own, 0.05, 0.8, 0.95, 1e-6, 0.1, decoupled)
        tolerance = 1e-12 if d == np.float64 else 1e-5
        assert p.dtype == d
        np.testing.assert_allclose(p.data.ravel(), expected, rtol=tolerance, atol=tolerance)


# ---- behaviour shared by all -----------------------------------------------------------
@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps), lambda ps: optim.AdamW(ps)])
def test_params_without_grad_are_skipped_and_float32_stays_float32(make):
    a, b = nn.Parameter(np.ones(3, np.float32)), nn.Parameter(np.ones(2, np.float32))
    opt = make([a, b])
    a.grad = np.full(3, 0.5, np.float32)
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert b not in opt.state
    assert a.dtype == np.float32 and np.all(a.data < 1)


def test_param_groups_have_their_own_lr_and_zero_grad():
    a, b = nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt.step()
    assert a.data[0] == pytest.approx(-0.1) and b.data[0] == pytest.approx(-1.0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_invalid_arguments_raise():
    p = nn.Parameter(np.zeros(1))
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="more than one"):
        optim.Adam([p, p])
    with pytest.raises(TypeError, match="a param group must be a dict with 'params'"):
        optim.SGD([{"lr": 0.1}], lr=0.1)
    optim.SGD([p], lr=0.0)                                        # the bounds PyTorch accepts
    optim.Adam([p], betas=(0.0, 0.0))


def test_state_dict_numbers_parameters_from_0_across_groups_and_repr_lists_the_hyper_parameters():
    a, b, c = (nn.Parameter(np.zeros(2)) for _ in range(3))
    opt = optim.SGD([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    np.testing.assert_array_equal(state["param_groups.0.params"], [0, 1])
    np.testing.assert_array_equal(state["param_groups.1.params"], [2])
    text = repr(opt)
    assert "Parameter Group 1" in text and "    lr: 0.5" in text and "    momentum: 0.9" in text
    assert "params" not in text
    for p in (a, b, c):
        p.grad = np.ones(2)
    opt.step()
    wrong = dict(opt.state_dict(), **{"state.3.momentum_buffer": np.zeros(2)})     # 3 parameters: 0..2
    with pytest.raises(ValueError, match="'state.3.momentum_buffer' refers to parameter 3, but there are only 3"):
        opt.load_state_dict(wrong)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_loading_a_state_into_an_adam_that_has_stepped_replaces_its_moments(cls):
    """The flat buffer of moments is rebuilt when load_state_dict replaces the state:
    after loading, the next step uses the loaded moments, not the ones it had."""
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(4) for _ in range(4)]
    source_param = nn.Parameter(np.zeros(4))
    source = cls([source_param], lr=0.01)
    for g in grads[:3]:
        source_param.grad = g
        source.step()
    target_param = nn.Parameter(np.ones(4))
    target = cls([target_param], lr=0.01)
    target_param.grad = -grads[0]
    target.step()                                                  # moments of its own
    target.load_state_dict(source.state_dict())
    target_param.data[...] = source_param.data
    for param, opt in ((source_param, source), (target_param, target)):
        param.grad = grads[3]
        opt.step()
    np.testing.assert_array_equal(target_param.data, source_param.data)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: optim.Adam(ps, lr=0.01, betas=(0.5, 0.9)),
                                  lambda ps: optim.AdamW(ps, lr=0.01)])
def test_state_dict_checkpoint_resumes_exactly(make, tmp_path):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((2, 3)) for _ in range(6)]
    p0 = rng.standard_normal((2, 3))

    straight = nn.Parameter(p0)
    opt = make([straight])
    for g in grads:
        straight.grad = g
        opt.step()

    first = nn.Parameter(p0)
    opt = make([first])
    for g in grads[:3]:
        first.grad = g
        opt.step()
    mdl.save({"param": first.data, "optimizer": opt.state_dict()}, tmp_path / "ckpt.npz")

    state = mdl.load(tmp_path / "ckpt.npz")
    resumed = nn.Parameter(state["param"])
    opt2 = make([resumed])
    opt2.param_groups[0]["lr"] = 123.0                       # restored from the checkpoint
    opt2.load_state_dict(mdl.serialization.strip_prefix(state, "optimizer"))
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for g in grads[3:]:
        resumed.grad = g
        opt2.step()
    np.testing.assert_array_equal(resumed.data, straight.data)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01),
                                  lambda ps: optim.AdamW(ps, lr=0.01)])
def test_float64_state_loaded_for_float32_parameters_is_cast_to_float32(make):
    """Also for a 0-d parameter (a learned scale): its state is 0-d too, and
    must be cast like any other, and keep float32 through later steps."""
    starts = [np.ones((2, 3), np.float32), np.array(2.0, np.float32)]
    params = [nn.Parameter(s.copy()) for s in starts]
    opt = make(params)
    for p in params:
        p.grad = np.full(p.shape, 0.5, np.float32)
    opt.step()
    as_float64 = {k: v.astype(np.float64) if v.dtype.kind == "f" and k.startswith("state.") else v
                  for k, v in opt.state_dict().items()}
    assert any(v.dtype == np.float64 and v.ndim == 0 for k, v in as_float64.items() if k.startswith("state."))
    resumed = make(params)
    resumed.load_state_dict(as_float64)
    for step in range(2):                                   # right after loading, and after a step
        for p in params:
            for slot, value in resumed.state[p].items():
                if slot != "step":
                    assert value.dtype == np.float32 and value.shape == p.shape, (step, slot, value.dtype)
            p.grad = np.full(p.shape, 0.5, np.float32)
        resumed.step()
        assert all(p.data.dtype == np.float32 for p in params)


def test_load_state_dict_rejects_a_mismatched_state():
    opt = optim.Adam([nn.Parameter(np.zeros(3))])
    other = optim.Adam([nn.Parameter(np.zeros(4))])
    other.param_groups[0]["params"][0].grad = np.ones(4)
    other.step()
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(other.state_dict())
    saved = optim.Adam([nn.Parameter(np.zeros(3))])
    saved.param_groups[0]["params"][0].grad = np.ones(3)
    saved.step()
    for wrong in (np.zeros((3, 1)), np.zeros(1), np.array(0.0)):     # a 0-d moment is not broadcast
        with pytest.raises(ValueError, match=re.escape(f"'state.0.exp_avg' has shape {wrong.shape}")):
            opt.load_state_dict(dict(saved.state_dict(), **{"state.0.exp_avg": wrong}))
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state_dict but 1 here"):
        opt.load_state_dict({"param_groups.0.params": np.arange(2)})
    two_groups = optim.Adam([{"params": [nn.Parameter(np.zeros(3))]},
                             {"params": [nn.Parameter(np.zeros(1))]}]).state_dict()
    two_groups["param_groups.0.params"] = np.arange(1)
    with pytest.raises(ValueError, match="the state_dict has 2 parameter groups, this optimizer has 1"):
        opt.load_state_dict(two_groups)


def test_a_linear_model_fits_a_line():
    mdl.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 1)).astype(np.float32)
    y = 3 * x - 0.5
    model = nn.Linear(1, 1)
    opt = optim.Adam(model.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        mdl.functional.mse_loss(model(mdl.tensor(x)), mdl.tensor(y)).backward()
        opt.step()
    assert model.weight.data[0, 0] == pytest.approx(3, abs=1e-2)
    assert model.bias.data[0] == pytest.approx(-0.5, abs=1e-2)


# ---- torch.optim, if installed -----------------------------------------------------------
@pytest.mark.parametrize("name, options", [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
])
def test_matches_torch_optim(name, options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0, grads = rng.standard_normal((4, 3)), [rng.standard_normal((4, 3)) for _ in range(5)]
    ours, theirs = nn.Parameter(p0), torch.tensor(p0, requires_grad=True)
    opt, ref = getattr(optim, name)([ours], **options), getattr(torch.optim, name)([theirs], **options)
    for g in grads:
        ours.grad, theirs.grad = g.copy(), torch.tensor(g)
        opt.step()
        ref.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---- Adam's flat buffer: every parameter of a group updated at once ------------------------
def _torch_twins(torch, arrays):
    return [torch.tensor(a, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name, options", [
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.003)),
])
def test_flat_adam_matches_torch_with_frozen_missing_and_late_parameters(name, options, tmp_path):
    """Many parameters of several shapes in float32 (the flat path), step for
    step against torch.optim: one frozen (never a gradient), one that misses
    the gradient of some steps (its step count falls behind, so the update
    runs per parameter), a group added after three steps, and a save/load
    round trip through an .npz (allow_pickle=False) in the middle."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    shapes = [(4, 3), (3,), (), (2, 2, 5), (1,), (129, 128), (6,)]   # (129, 128): above SMALL
    starts = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    late_start = rng.standard_normal((3, 2)).astype(np.float32)
    ours = [nn.Parameter(p.copy()) for p in starts]
    theirs = _torch_twins(torch, starts)
    opt = getattr(optim, name)(ours, **options)
    ref = getattr(torch.optim, name)(theirs, **options)
    frozen, sometimes = 2, 4                                   # indices into the parameters
    assert shapes[5][0] * shapes[5][1] > optim.adam.SMALL       # one large parameter, updated on its own
    late, late_ref = None, None
    for step in range(8):
        if step == 3:                                          # a new group, its own lr
            late, late_ref = nn.Parameter(late_start.copy()), torch.tensor(late_start, requires_grad=True)
            opt.add_param_group({"params": [late], "lr": 0.02})
            ref.add_param_group({"params": [late_ref], "lr": 0.02})
        if step == 5:                                          # checkpoint and resume into a new optimizer
            path = tmp_path / "optimizer.npz"
            mdl.save(opt.state_dict(), path)
            opt = getattr(optim, name)(ours, **options)
            opt.add_param_group({"params": [late], "lr": 0.5})
            opt.load_state_dict(mdl.load(path))
            assert opt.param_groups[1]["lr"] == 0.02
        pairs = list(zip(ours, theirs)) + ([(late, late_ref)] if late is not None else [])
        for i, (p, q) in enumerate(pairs):
            if i == frozen or (i == sometimes and step % 3 == 1):
                p.grad, q.grad = None, None
                continue
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, q.grad = g, torch.tensor(g)
        opt.step()
        ref.step()
        for i, (p, q) in enumerate(pairs):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=2e-6, atol=2e-7,
                                       err_msg=f"parameter {i} after step {step}")
            if i != frozen:
                np.testing.assert_allclose(opt.state[p]["exp_avg"], ref.state[q]["exp_avg"].numpy(),
                                           rtol=2e-6, atol=1e-7)
                assert opt.state[p]["step"] == int(ref.state[q]["step"])
    assert ours[frozen] not in opt.state
    np.testing.assert_array_equal(ours[frozen].data, starts[frozen])


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_flat_update_equals_the_per_parameter_update_bit_for_bit(cls):
    """The same steps once with every parameter at one step count (one flat
    update) and once per parameter (forced by a parameter kept one step
    behind): the same elementwise rule, so identical float32 results."""
    rng = np.random.default_rng(11)
    shapes = [(5, 4), (7,), (3, 3)]
    starts = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(4)]

    def run(hold_back):
        params = [nn.Parameter(p.copy()) for p in starts]
        extra = nn.Parameter(np.zeros(2, np.float32))
        opt = cls(params + [extra], lr=0.05, weight_decay=0.1)
        if hold_back:                                          # extra steps once alone: counts differ afterwards
            extra.grad = np.ones(2, np.float32)
            opt.step()
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = g
            extra.grad = None if not hold_back else np.ones(2, np.float32)
            opt.step()
        return [p.data for p in params]

    for flat, single in zip(run(hold_back=False), run(hold_back=True)):
        np.testing.assert_array_equal(flat, single)


def test_flat_adam_updates_the_parameters_own_arrays_and_state_views():
    a, b = nn.Parameter(np.ones((2, 3), np.float32)), nn.Parameter(np.ones(4, np.float32))
    arrays = a.data, b.data
    opt = optim.Adam([a, b], lr=0.1)
    for _ in range(2):
        a.grad, b.grad = np.full((2, 3), 0.5, np.float32), np.full(4, -0.5, np.float32)
        opt.step()
    assert a.data is arrays[0] and b.data is arrays[1]           # changed in place, not replaced
    assert np.all(a.data < 1) and np.all(b.data > 1)
    # after two steps of a constant gradient g: m = (1 - 0.9^2) g
    np.testing.assert_allclose(opt.state_dict()["state.1.exp_avg"], np.full(4, -0.5 * (1 - 0.81)), rtol=1e-6)
    # a gradient in float64 for a float32 parameter is cast, the parameter stays float32
    a.grad, b.grad = np.zeros((2, 3)), np.zeros(4)
    opt.step()
    assert a.dtype == np.float32 and opt.state[a]["exp_avg"].dtype == np.float32
