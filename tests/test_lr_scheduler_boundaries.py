"""The smallest schedules the schedulers accept: one warm-up step, a one-step
cycle. Values by hand (PyTorch gives the same at these settings)."""
import pytest

import minidl as mdl
from minidl import optim
from minidl.optim.lr_scheduler import LinearLR, OneCycleLR


def learning_rates(make_scheduler, steps):
    parameter = mdl.nn.Parameter(mdl.Tensor([1.0]))
    optimizer = optim.SGD([parameter], lr=1.0, momentum=0.9)
    scheduler = make_scheduler(optimizer)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_linear_warmup_over_a_single_step():
    # start_factor 0.5 for step 0, then the end factor from step 1 on.
    assert learning_rates(lambda o: LinearLR(o, start_factor=0.5, total_iters=1), 3) == pytest.approx(
        [0.5, 1.0, 1.0])


def test_one_cycle_of_a_single_step_sits_at_the_minimum():
    # One step: the last step of the cycle, at max_lr / div_factor / final_div_factor.
    assert learning_rates(lambda o: OneCycleLR(o, max_lr=1.0, total_steps=1), 1) == pytest.approx(
        [1.0 / 25 / 1e4])


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_zero_negative_or_fractional_lengths_are_refused(bad):
    parameter = mdl.nn.Parameter(mdl.Tensor([1.0]))
    with pytest.raises(ValueError, match="LinearLR: total_iters must be a positive integer"):
        LinearLR(optim.SGD([parameter], lr=1.0), total_iters=bad)
    with pytest.raises(ValueError, match="OneCycleLR: total_steps must be a positive integer"):
        OneCycleLR(optim.SGD([parameter], lr=1.0, momentum=0.9), max_lr=1.0, total_steps=bad)
