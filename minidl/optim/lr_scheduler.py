"""Learning-rate schedules: change each param group's "lr" as training goes on.

    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)
    for step in range(100):
        ...; optimizer.step()
        scheduler.step()                 # after the optimizer, as in PyTorch
    scheduler.get_last_lr()              # [lr of group 0, ...]

PyTorch's names, arguments and formulas. A scheduler counts its steps in
`last_epoch` (PyTorch's name: it counts whatever you step it by, epochs or
batches). Creating one records each group's starting lr as "initial_lr"
(base_lrs) and sets step 0's lr. With t = last_epoch and lr0 = base lr:

    StepLR             lr0 * gamma ** (t // step_size)
    CosineAnnealingLR  eta_min + (lr0 - eta_min) * (1 + cos(pi * t / T_max)) / 2
    LinearLR           lr0 * (start + (end - start) * min(t, total_iters) / total_iters)
    OneCycleLR         up from max_lr / div_factor to max_lr over pct_start of the
                       steps, then down to max_lr / (div_factor * final_div_factor)
                       (cosine or linear interpolation); with cycle_momentum the
                       momentum (SGD) or beta1 (Adam) moves the opposite way

Each lr is computed from t directly (PyTorch's closed forms), so a scheduler
restored with load_state_dict continues exactly. state_dict() holds plain
numbers and lists (no optimizer), so it goes into a checkpoint.
"""
import math
import numbers


class LRScheduler:
    """Base class: subclasses define `lr_at(step, base_lr, group)`."""

    def __init__(self, optimizer, last_epoch=-1):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__}: expected an optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])     # OneCycleLR sets its own
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param group {index} has no 'initial_lr'; "
                                   "resuming with last_epoch needs a scheduler created before")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, step, base_lr, group):
        raise NotImplementedError(f"{type(self).__name__} must define lr_at")

    def step(self):
        """Advance one step and set every group's lr for it."""
        self.last_epoch += 1
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base_lr, group)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The lr of each param group after the last step()."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer: plain numbers and lists."""
        return {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a state saved by state_dict(): exactly its keys, each holding
        the kind of value it holds here (a number, a list, ...), else a
        ValueError naming the scheduler. (PyTorch takes any dict, even {};
        a checkpoint's scheduler state is checked like the rest of it.)"""
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise ValueError(f"{where}: expected a dict, got {type(state_dict).__name__}")
        own = self.state_dict()
        unknown, missing = set(state_dict) - set(own), set(own) - set(state_dict)
        if unknown:
            raise ValueError(f"{where}: unexpected keys {sorted(unknown)} (a state of another scheduler?)")
        if missing:
            raise ValueError(f"{where}: missing keys {sorted(missing)} "
                             f"(not a state saved by {type(self).__name__}.state_dict())")
        wrong = [f"'{key}' holds {_kind(state_dict[key])}, not {_kind(value)}"
                 for key, value in own.items() if _kind(state_dict[key]) != _kind(value)]
        if wrong:
            raise ValueError(f"{where}: " + "; ".join(wrong))
        self.__dict__.update(state_dict)

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self.get_last_lr()})"


def _kind(value):
    """What a state value is, in the terms load_state_dict checks: a scheduler
    keeps numbers (bool apart), lists, and strings or None (OneCycleLR's
    momentum_name)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None or isinstance(value, str):
        return "a string or None"
    return f"a {type(value).__name__}"


class StepLR(LRScheduler):
    """Multiply the lr by `gamma` every `step_size` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr, group):
        return base_lr * self.gamma ** (step // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base lr down to `eta_min` over `T_max` steps
    (past T_max the cosine goes on, back up, as in PyTorch)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr, group):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Scale the base lr by a factor going linearly from `start_factor` to
    `end_factor` over `total_iters` steps, then staying there: a warm-up."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], "
                             f"got {start_factor!r} and {end_factor!r}")
        if int(total_iters) != total_iters or total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive integer, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step, base_lr, group):
        progress = min(step, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin): warm up to `max_lr`, then anneal far
    below the start, over `total_steps` (or epochs * steps_per_epoch) steps.

    Phases (step where each ends, lr from -> to; momentum the other way):
        two-phase:   pct_start*total - 1:  initial -> max_lr;  total - 1:  max_lr -> min
        three_phase: pct_start*total - 1:  initial -> max_lr;  2*pct_start*total - 2:  max_lr -> initial;
                     total - 1:  initial -> min
    with initial = max_lr / div_factor, min = initial / final_div_factor.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got {total_steps!r}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps = int(total_steps)
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = bool(cycle_momentum)
        if three_phase:
            ends = [float(pct_start * total_steps) - 1, float(2 * pct_start * total_steps) - 2, total_steps - 1]
            lrs, momenta = ["initial", "max", "initial", "min"], ["max", "base", "max", "max"]
        else:
            ends = [float(pct_start * total_steps) - 1, total_steps - 1]
            lrs, momenta = ["initial", "max", "min"], ["max", "base", "max"]
        self.phase_ends, self.phase_lrs, self.phase_momenta = ends, lrs, momenta

        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"OneCycleLR: {len(max_lrs)} max_lr values for {len(groups)} param groups")
        self.momentum_name = None
        if self.cycle_momentum:
            if "betas" in optimizer.defaults:
                self.momentum_name = "betas"
            elif "momentum" in optimizer.defaults:
                self.momentum_name = "momentum"
            else:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
        if last_epoch == -1:
            for group, peak in zip(groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
                if self.cycle_momentum:
                    group["base_momentum"], group["max_momentum"] = base_momentum, max_momentum
                    self._set_momentum(group, max_momentum)
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value):
        if self.momentum_name == "betas":
            group["betas"] = (value, *tuple(group["betas"])[1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def lr_at(self, step, base_lr, group):
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, past total_steps = {self.total_steps}")
        values = {"initial": group["initial_lr"], "max": group["max_lr"], "min": group["min_lr"]}
        start_step = 0.0
        for phase, end_step in enumerate(self.phase_ends):
            if step <= end_step or phase == len(self.phase_ends) - 1:
                pct = (step - start_step) / (end_step - start_step)
                lr = self._anneal(values[self.phase_lrs[phase]], values[self.phase_lrs[phase + 1]], pct)
                if self.cycle_momentum:
                    momenta = {"base": group["base_momentum"], "max": group["max_momentum"]}
                    self._set_momentum(group, self._anneal(momenta[self.phase_momenta[phase]],
                                                           momenta[self.phase_momenta[phase + 1]], pct))
                return lr
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")


# ---- the schedules of `minidl train --scheduler NAME` -----------------------------------
SCHEDULES = {
    "step": "StepLR: lr x 0.1 after each third of the run",
    "cosine": "CosineAnnealingLR: from lr down to 0 over the run",
    "warmup": "LinearLR: from lr / 10 up to lr over the first epoch, then constant",
    "onecycle": "OneCycleLR: from lr / 25 up to lr over 30% of the run, then down to lr / 250,000",
}


SPANS_THE_RUN = ("step", "cosine", "onecycle")   # their length depends on the number of epochs


def for_training(name, optimizer, epochs, steps_per_epoch):
    """The scheduler `minidl train --scheduler NAME` makes (see SCHEDULES); the
    Trainer steps it after every optimisation step, so lengths are in steps."""
    total = epochs * steps_per_epoch
    if name == "step":
        return StepLR(optimizer, step_size=max(1, total // 3), gamma=0.1)
    if name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total)
    if name == "warmup":
        return LinearLR(optimizer, start_factor=0.1, total_iters=steps_per_epoch)
    if name == "onecycle":
        # the optimizer's own momentum / betas are kept (a GAN's beta1 = 0.5 must stay)
        return OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"], total_steps=total,
                          cycle_momentum=False)
    raise ValueError(f"train: unknown scheduler {name!r}; choose from {', '.join(SCHEDULES)}")
