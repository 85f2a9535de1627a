"""optim.lr_scheduler: StepLR, CosineAnnealingLR, LinearLR and OneCycleLR against
values worked out by hand from PyTorch's formulas, against torch itself, and
state_dict round trips that continue exactly."""
import math
import re

import numpy as np
import pytest

from minidl import nn, optim
from minidl.optim.lr_scheduler import (CosineAnnealingLR, LinearLR, OneCycleLR, SCHEDULES, StepLR,
                                       for_training)


def sgd(lr=1.0, momentum=0.9, groups=1):
    params = [nn.Parameter(np.zeros(2, np.float32)) for _ in range(groups)]
    if groups == 1:
        return optim.SGD(params, lr=lr, momentum=momentum)
    return optim.SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr,
                     momentum=momentum)


def lrs(scheduler, steps):
    """The lr of group 0 at t = 0, 1, ..., steps (t = 0 is set when the scheduler is made)."""
    out = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


# ---- hand-computed values ------------------------------------------------------------------
def test_step_lr_halves_every_two_steps():
    assert lrs(StepLR(sgd(0.1), step_size=2, gamma=0.5), 5) == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-12)


def test_cosine_annealing_by_hand():
    # (1 + cos(pi t / 4)) / 2 at t = 0..5: past T_max = 4 the cosine turns back up
    assert lrs(CosineAnnealingLR(sgd(1.0), T_max=4), 5) == pytest.approx(
        [1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 0.0, 0.14644660940672627], abs=1e-12)
    assert lrs(CosineAnnealingLR(sgd(1.0), T_max=4, eta_min=0.1), 2)[2] == pytest.approx(0.55, rel=1e-12)


def test_default_arguments_are_pytorchs():
    """LinearLR(opt): a third of the lr rising to all of it over 5 steps; StepLR's
    gamma 0.1; CosineAnnealingLR's eta_min 0."""
    assert lrs(LinearLR(sgd(3.0)), 7) == pytest.approx([1.0, 1.4, 1.8, 2.2, 2.6, 3.0, 3.0, 3.0], rel=1e-12)
    assert lrs(StepLR(sgd(1.0), step_size=2), 4) == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01], rel=1e-12)
    assert lrs(CosineAnnealingLR(sgd(1.0), T_max=2), 2)[-1] == pytest.approx(0.0, abs=1e-15)


def test_linear_warm_up_by_hand():
    assert lrs(LinearLR(sgd(1.0), start_factor=0.25, end_factor=1.0, total_iters=3), 5) == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0], rel=1e-12)
    assert lrs(LinearLR(sgd(2.0), start_factor=1.0, end_factor=0.5, total_iters=2), 3) == pytest.approx(
        [2.0, 1.5, 1.0, 1.0], rel=1e-12)


def test_one_cycle_linear_by_hand():
    """max_lr 1, 10 steps, 30% up: initial 1/10 = 0.1, min 0.1/100 = 0.001; phase 1 ends
    at step 0.3*10 - 1 = 2, phase 2 at 9. Momentum 0.95 -> 0.85 -> 0.95 the other way."""
    optimizer = sgd(1.0)
    scheduler = OneCycleLR(optimizer, max_lr=1.0, total_steps=10, anneal_strategy="linear",
                           div_factor=10, final_div_factor=100)
    momenta = [optimizer.param_groups[0]["momentum"]]
    values = [scheduler.get_last_lr()[0]]
    for _ in range(9):
        scheduler.step()
        values.append(scheduler.get_last_lr()[0])
        momenta.append(optimizer.param_groups[0]["momentum"])
    assert values[:4] == pytest.approx([0.1, 0.55, 1.0, 1 - 0.999 / 7], rel=1e-12)
    assert values[9] == pytest.approx(0.001, rel=1e-12)
    assert momenta[0] == pytest.approx(0.95) and momenta[1] == pytest.approx(0.90)
    assert momenta[2] == pytest.approx(0.85) and momenta[9] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="total_steps"):
        scheduler.step()                                    # step 10 of 10 is still allowed
        scheduler.step()


def test_one_cycle_cosine_and_three_phase_by_hand():
    cos = OneCycleLR(sgd(), max_lr=1.0, total_steps=10, div_factor=10, final_div_factor=100)
    assert lrs(cos, 3)[3] == pytest.approx(0.001 + 0.999 / 2 * (math.cos(math.pi / 7) + 1), rel=1e-12)
    # three phases end at steps 2, 0.6*10 - 2 = 4 and 9: 0.1 -> 1 -> 0.1 -> 0.001
    three = OneCycleLR(sgd(), max_lr=1.0, total_steps=10, anneal_strategy="linear", div_factor=10,
                       final_div_factor=100, three_phase=True)
    values = lrs(three, 9)
    assert values[2] == pytest.approx(1.0) and values[3] == pytest.approx(0.55) and values[4] == pytest.approx(0.1)
    assert values[6] == pytest.approx(0.1 + (0.001 - 0.1) * 0.4, rel=1e-12) and values[9] == pytest.approx(0.001)


def test_one_cycle_moves_adams_beta1_and_keeps_beta2():
    optimizer = optim.Adam([nn.Parameter(np.zeros(2, np.float32))], lr=1.0, betas=(0.9, 0.99))
    scheduler = OneCycleLR(optimizer, max_lr=1.0, total_steps=10, anneal_strategy="linear")
    assert optimizer.param_groups[0]["betas"] == (0.95, 0.99)
    scheduler.step(), scheduler.step()
    assert optimizer.param_groups[0]["betas"] == pytest.approx((0.85, 0.99))


def test_every_group_gets_its_own_base_lr():
    optimizer = sgd(0.1, groups=2)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.05, 0.1])
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.05, 0.1])
    assert scheduler.base_lrs == pytest.approx([0.1, 0.2])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="step_size"):
        StepLR(sgd(), step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(sgd(), T_max=0)
    with pytest.raises(ValueError, match="start_factor"):
        LinearLR(sgd(), start_factor=0.0)
    with pytest.raises(ValueError, match="total_steps"):
        OneCycleLR(sgd(), max_lr=1.0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(sgd(), max_lr=1.0, total_steps=5, anneal_strategy="cubic")
    with pytest.raises(TypeError, match="optimizer"):
        StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="unknown scheduler"):
        for_training("exponential", sgd(), 3, 10)


# ---- state_dict ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, step_size=3, gamma=0.5),
    lambda o: CosineAnnealingLR(o, T_max=12, eta_min=0.01),
    lambda o: LinearLR(o, start_factor=0.1, total_iters=6),
    lambda o: OneCycleLR(o, max_lr=1.0, total_steps=12),
], ids=["step", "cosine", "linear", "onecycle"])
def test_state_dict_round_trip_continues_exactly(make):
    straight_opt = sgd(0.5, groups=2)
    straight = make(straight_opt)
    expected = lrs(straight, 12)

    first_opt = sgd(0.5, groups=2)
    first = make(first_opt)
    head = lrs(first, 5)
    state, opt_state = first.state_dict(), first_opt.state_dict()
    assert "optimizer" not in state

    second_opt = sgd(0.5, groups=2)
    second = make(second_opt)                           # a fresh one, at step 0
    second_opt.load_state_dict(opt_state)
    second.load_state_dict(state)
    assert second.last_epoch == 5 and second.get_last_lr() == first.get_last_lr()
    tail = lrs(second, 7)
    assert head + tail[1:] == expected                  # exactly: lrs are computed from t
    assert second_opt.param_groups[0]["momentum"] == straight_opt.param_groups[0]["momentum"]


def test_load_state_dict_refuses_another_schedulers_state():
    with pytest.raises(ValueError, match="unexpected keys"):
        CosineAnnealingLR(sgd(), T_max=3).load_state_dict(StepLR(sgd(), step_size=2).state_dict())


EVERY_KIND = {
    "step": lambda o: StepLR(o, step_size=3, gamma=0.5),
    "cosine": lambda o: CosineAnnealingLR(o, T_max=12, eta_min=0.01),
    "linear": lambda o: LinearLR(o, start_factor=0.1, total_iters=6),
    "onecycle": lambda o: OneCycleLR(o, max_lr=1.0, total_steps=12),
    "onecycle_three_phase_no_momentum": lambda o: OneCycleLR(o, max_lr=1.0, total_steps=12, three_phase=True,
                                                             cycle_momentum=False),
}


@pytest.mark.parametrize("kind", sorted(EVERY_KIND))
def test_a_state_through_a_run_checkpoint_loads_and_an_empty_or_mistyped_one_is_refused(kind, tmp_path):
    from minidl.training import RunDirectory

    make = EVERY_KIND[kind]
    first_opt = sgd(0.5, groups=2)
    first = make(first_opt)
    lrs(first, 5)
    run = RunDirectory(tmp_path)
    run.save_checkpoint(nn.Linear(1, 1), first_opt, 1, {}, [first])
    checkpoint = run.load_checkpoint()
    second_opt = sgd(0.5, groups=2)
    second = make(second_opt)
    second_opt.load_state_dict(checkpoint["optimizer"])
    second.load_state_dict(checkpoint["schedulers"][0])
    assert second.last_epoch == 5 and lrs(second, 3) == lrs(first, 3)

    name = type(second).__name__
    every_key = sorted(first.state_dict())
    with pytest.raises(ValueError, match=re.escape(f"{name}.load_state_dict: missing keys {every_key}")):
        second.load_state_dict({})
    for key, wrong in (("last_epoch", "5"), ("last_epoch", None), ("base_lrs", 0.5), ("_last_lr", {"0": 0.5})):
        with pytest.raises(ValueError, match=rf"{name}.load_state_dict: '{key}' holds"):
            second.load_state_dict(dict(first.state_dict(), **{key: wrong}))
    assert second.last_epoch == 8                           # a refused state changes nothing


def test_training_schedules_are_described_and_span_the_run():
    assert set(SCHEDULES) == {"step", "cosine", "warmup", "onecycle"}
    cosine = for_training("cosine", sgd(0.2), epochs=3, steps_per_epoch=10)
    assert lrs(cosine, 30)[-1] == pytest.approx(0.0, abs=1e-12)
    warm = for_training("warmup", sgd(0.2), epochs=3, steps_per_epoch=10)
    values = lrs(warm, 30)
    assert values[0] == pytest.approx(0.02) and values[10] == pytest.approx(0.2) and values[30] == pytest.approx(0.2)
    step = lrs(for_training("step", sgd(0.2), epochs=3, steps_per_epoch=10), 30)
    assert step[9] == pytest.approx(0.2) and step[10] == pytest.approx(0.02) and step[20] == pytest.approx(0.002)
    optimizer = optim.Adam([nn.Parameter(np.zeros(1, np.float32))], lr=0.2, betas=(0.5, 0.999))
    one = lrs(for_training("onecycle", optimizer, epochs=3, steps_per_epoch=10), 30)
    assert max(one) == pytest.approx(0.2) and one[0] == pytest.approx(0.2 / 25)
    assert optimizer.param_groups[0]["betas"] == (0.5, 0.999)        # a GAN's beta1 is kept


# ---- PyTorch itself -----------------------------------------------------------------------------
CASES = [
    ("StepLR", dict(step_size=4, gamma=0.3)),
    ("CosineAnnealingLR", dict(T_max=17, eta_min=0.002)),
    ("CosineAnnealingLR", dict(T_max=7)),                        # 25 steps: past T_max and back up
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=9)),
    ("OneCycleLR", dict(max_lr=[0.8, 0.3], total_steps=25)),
    ("OneCycleLR", dict(max_lr=[0.8, 0.3], total_steps=25, anneal_strategy="linear", three_phase=True,
                        pct_start=0.25, div_factor=5.0, final_div_factor=50.0)),
    ("OneCycleLR", dict(max_lr=[0.8, 0.3], epochs=5, steps_per_epoch=5, cycle_momentum=False)),
]


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, options, optimizer_name):
    torch = pytest.importorskip("torch")
    extra = dict(momentum=0.9) if optimizer_name == "SGD" else dict(betas=(0.9, 0.999))
    ours_params = [nn.Parameter(np.zeros(2, np.float32)) for _ in range(2)]
    theirs_params = [torch.zeros(2, requires_grad=True) for _ in range(2)]
    ours_opt = getattr(optim, optimizer_name)([{"params": [ours_params[0]], "lr": 0.5},
                                               {"params": [ours_params[1]], "lr": 0.1}], lr=0.5, **extra)
    theirs_opt = getattr(torch.optim, optimizer_name)([{"params": [theirs_params[0]], "lr": 0.5},
                                                       {"params": [theirs_params[1]], "lr": 0.1}], lr=0.5, **extra)
    ours = getattr(optim.lr_scheduler, name)(ours_opt, **options)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **options)
    momentum = "momentum" if optimizer_name == "SGD" else "betas"
    for step in range(25):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-9, atol=1e-15,
                                   err_msg=f"step {step}")
        for a, b in zip(ours_opt.param_groups, theirs_opt.param_groups):
            np.testing.assert_allclose(np.ravel(a[momentum]), np.ravel(b[momentum]), rtol=1e-9,
                                       err_msg=f"{momentum} at step {step}")
        theirs_opt.step()                                           # torch warns without it
        ours.step()
        theirs.step()
