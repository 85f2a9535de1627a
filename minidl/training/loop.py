"""The training loop every task shares: `minidl train` runs one Task through a Trainer.

A task (image classifier, GPT, GAN, ...) supplies only what is its own: how
to build its model and optimizer, one optimisation step, and its evaluation.

    class MyTask(Task):
        losses = ("loss",)              # figures of train_step that must stay finite
        metric = "test_acc"             # evaluation figure that best.npz follows (None: no best.npz)
        maximize = True                 # larger metric is better

        def __init__(self, config):     # set self.config, self.model, self.optimizer
            ...
        def batches(self, epoch, seed): # the epoch's batches: a sized iterable,
            ...                         # every random choice drawn from `seed`
        def train_step(self, batch):    # one optimisation step -> {"loss": 0.31, "size": 32, ...}
            ...                         # ("size": samples in the batch; end with self.update(optimizer))
        def evaluate(self, epoch):      # held-out figures after each epoch -> {"test_acc": 0.97, ...}
            ...

    result = Trainer(MyTask(config), config, run_dir).run()

and may override `epoch_record` (name the figures of metrics.json),
`after_epoch` (samples, per-epoch plots), `finish` (final plots and reports)
and `summary` (the line printed after each epoch).

The Trainer owns everything else, once for every task:

- the run directory (minidl.training.run_directory): made or refused with a
  one-sentence error (a path that is a file, a directory that cannot be
  written, another run's directory without --resume); config.json;
  metrics.json and checkpoint.npz after every epoch; best.npz whenever the
  task's metric improves (the best epoch beside the last one);
- seeding: epoch e draws all its randomness from epoch_seed(config.seed, e)
  (minidl's generator and the seed given to `batches`), so a resumed run
  repeats an uninterrupted one bit for bit;
- the progress bar: running means of the step's figures, throughput, and the
  ETA of the whole run, at the rate of the steps after the first (tqdm's own
  [elapsed<remaining] is the epoch's);
- Ctrl-C: raises TrainingInterrupted; the checkpoint of the last finished
  epoch stays, and `--resume` continues from it. SIGTERM (`kill`, `timeout`,
  a job scheduler) does the same, instead of ending the process on the spot;
- a time budget (`max_minutes`): the run stops like Ctrl-C (the unfinished
  epoch is dropped, the last finished one kept, resumable) but returns
  normally, with result["stopped"] == "time budget"; an epoch is not started
  when the previous one took longer than the time left;
- divergence, checked after every step: the run stops at that step with
  TrainingDiverged, naming epoch, step and learning rate and suggesting a
  smaller one, when
    1. a loss is NaN or infinite; or
    2. a gradient, a parameter or a buffer (batch-norm statistics) is NaN or
       infinite after the update (the next step's loss would be); or
    3. a loss exceeds `blowup_factor` (10,000) times max(1, its first value
       in this session): the loss has blown up while still finite.
  Rule 3 is what catches a too-large learning rate early: with SGD at lr 1e6
  an MLP's weights grow ~1000x per step, its loss goes 2.3 -> 1.9e11 -> 5e22
  and stays finite for the whole epoch, while its ReLUs die. The rule is
  sound for the losses minidl trains with (cross-entropy and binary
  cross-entropy, mean over the batch): the first loss of a run is about
  log(classes), a mean cross-entropy of 10,000 needs logits that are wrong
  by 10,000 on average, and no run that is learning passes through that.
  Resumed runs compare with their first resumed step, which is smaller,
  hence the floor of 1. A task whose loss has another scale sets its own
  `blowup_factor` (None turns rule 3 off).
  Weights that are not finite are never written to a checkpoint: checkpoints
  are written only after an epoch whose every step passed these checks;
- learning-rate schedules (config.scheduler): one scheduler per optimizer,
  stepped after every optimisation step, saved in the checkpoint;
- gradient clipping (config.clip_grad_norm): applied by `Task.update`.
"""
import contextlib
import math
import signal
import threading
import time

import numpy as np
from tqdm.auto import tqdm

import minidl as mdl
from ..threads import training_threads
from .config import epoch_seed
from .run_directory import BEST, CHECKPOINT, RunDirectory


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Inside the block, SIGTERM raises KeyboardInterrupt like Ctrl-C, so a run
    stopped by `kill` says what it keeps and leaves no half-written file.
    (Only the main thread may set signal handlers; elsewhere nothing changes.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def clock():
    """Seconds on a monotonic clock (a function, so tests can replace it)."""
    return time.perf_counter()


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the checkpoint of the last finished epoch is kept."""

    def __init__(self, run_dir, epoch):
        super().__init__(f"training interrupted after epoch {epoch}; run directory {run_dir}")
        self.run_dir, self.epoch = run_dir, epoch


class TrainingDiverged(Exception):
    """A loss became NaN or infinite; the message says where and what to try."""

    def __init__(self, message, run_dir=None, epoch=None, step=None):
        super().__init__(message)
        self.run_dir, self.epoch, self.step = run_dir, epoch, step


class StepBatches:
    """`steps` batches, each drawn by calling `draw()`: a sized iterable for
    tasks whose epoch is a number of random batches rather than a pass over data."""

    def __init__(self, steps, draw):
        self.steps, self.draw = int(steps), draw

    def __len__(self):
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield self.draw()


class Task:
    """Base class of a training task (see the module docstring for what to supply)."""

    losses = ("loss",)
    metric = None
    maximize = True
    unit = "samples"              # what "size" counts: the progress bar shows <unit>/s
    blowup_factor = 1e4           # a loss above this x max(1, its first value) has diverged
    clip_grad_norm = None         # set by the Trainer from config.clip_grad_norm

    # ---- what a task supplies -------------------------------------------------
    def batches(self, epoch, seed):
        raise NotImplementedError(f"{type(self).__name__} must define batches(epoch, seed)")

    def train_step(self, batch):
        raise NotImplementedError(f"{type(self).__name__} must define train_step(batch)")

    def evaluate(self, epoch):
        return {}

    # ---- what a task may refine -----------------------------------------------
    def config_record(self):
        """What config.json holds (the TrainConfig; a task may add its model's shape)."""
        return self.config.to_dict()

    @property
    def optimizers(self):
        """The optimizers whose learning rates are scheduled and reported."""
        return [self.optimizer]

    def epoch_record(self, means, evaluation):
        """metrics.json's figures of one epoch from the step figures' means over
        the epoch and the evaluation (the Trainer adds epoch, steps, seconds, speed)."""
        return dict(means, **evaluation)

    def after_epoch(self, run, record, history):
        """Called after every epoch's record is made, before it is saved."""

    def finish(self, run, history):
        """Called once at the end (also after a time-budget stop); returns a dict
        merged into the result."""
        return {}

    def summary(self, record):
        figures = " | ".join(f"{k} {v:.4g}" for k, v in record.items()
                             if k not in ("epoch", "steps", "seconds", "cpu_seconds")
                             and isinstance(v, float))
        return f"{self.config.model} | epoch {record['epoch']}/{self.config.epochs} | {figures}"

    # ---- helpers for train_step -----------------------------------------------
    def update(self, optimizer):
        """optimizer.step(), after clipping its gradients' total norm to
        `clip_grad_norm` when that is set."""
        if self.clip_grad_norm:
            from ..nn.utils import clip_grad_norm_

            clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]],
                            self.clip_grad_norm)
        optimizer.step()


def non_finite_weights(model):
    """Names of the parameters and buffers of `model` holding NaN or inf."""
    return [name for name, value in model.state_dict().items()
            if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.all(np.isfinite(value))]


def first_non_finite(named_arrays):
    """The name of the first array of (name, ndarray) pairs holding NaN or inf,
    or None. One sum per array (a NaN or inf anywhere makes the sum non-finite);
    only a sum that overflowed is rechecked element by element."""
    for name, array in named_arrays:
        if array is None or array.dtype.kind != "f":
            continue
        with np.errstate(over="ignore", invalid="ignore"):     # inf + -inf is what we look for, not a warning
            total = array.sum()
        if not np.isfinite(total) and not np.all(np.isfinite(array)):
            return name
    return None


def format_duration(seconds):
    """12 -> '0:12', 754 -> '12:34', 4000 -> '1:06:40'."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class RunClock:
    """The run's remaining time: steps per second measured in this session,
    times the steps still to do (this epoch's and the later epochs').

    The rate is measured from the end of the session's first step: that step
    also pays for the one-time work (compiling the kernels on first use,
    warming caches), which can take a hundred steps' time and would make the
    early estimates hours too long. Until a second step is done there is no
    rate, and no estimate (None)."""

    def __init__(self, steps_per_epoch, epochs_left):
        self.steps_total = steps_per_epoch * epochs_left
        self.steps_done = 0
        self.first_step_end = None

    def step(self):
        self.steps_done += 1
        if self.steps_done == 1:
            self.first_step_end = clock()

    def eta_seconds(self):
        if self.steps_done < 2:
            return None
        rate = (self.steps_done - 1) / max(clock() - self.first_step_end, 1e-9)   # steps 2 .. done
        return (self.steps_total - self.steps_done) / rate


class Trainer:
    """Runs `task` for config.epochs epochs in `run_dir` (see the module docstring).

    `run()` returns a dict: history (one record per epoch), model, run_dir,
    best_epoch, stopped (None, or "time budget"), and what task.finish returned.
    """

    def __init__(self, task, config, run_dir, resume=False, progress=True, log=print,
                 max_minutes=None):
        if max_minutes is not None and not max_minutes > 0:
            raise ValueError(f"train: max_minutes must be positive, got {max_minutes!r}")
        self.task, self.config = task, config
        self.directory = RunDirectory(run_dir)
        self.resume, self.progress, self.log, self.max_minutes = resume, progress, log, max_minutes
        task.clip_grad_norm = getattr(config, "clip_grad_norm", None)
        self.first_losses = {}        # each loss's first value in this session (divergence rule 3)
        self.schedulers = make_schedulers(config, task.optimizers, len(task.batches(1, 0)))

    # ---- the parts -------------------------------------------------------------
    def prepare_run_directory(self):
        run = self.directory
        if not self.resume and run.has_checkpoint():
            raise ValueError(f"{run.path} already holds a run (checkpoint of epoch "
                             f"{run.load_checkpoint()['epoch']}); continue it with --resume "
                             f"{run.path}, or choose another directory")
        run.create()
        done, history = 0, []
        if self.resume and self.schedulers:
            from ..optim.lr_scheduler import SPANS_THE_RUN

            planned = run.load_checkpoint()["config"].get("epochs")
            if planned != self.config.epochs and self.config.scheduler in SPANS_THE_RUN:
                raise ValueError(f"the {self.config.scheduler!r} schedule of {run.path} was planned for "
                                 f"{planned} epochs; resume it with --epochs {planned}")
        if self.resume:
            done, history = run.resume(self.task.model, self.task.optimizer, self.schedulers)
            if done > self.config.epochs:      # config.json would then say fewer epochs than were run
                raise ValueError(f"{run.path} has already finished {done} epochs; --epochs must be at "
                                 f"least {done} (more to continue training), got {self.config.epochs}")
        return done, history

    def best_so_far(self, history):
        metric = self.task.metric
        values = [(r[metric], r["epoch"]) for r in history if r.get(metric) is not None]
        if not values or not self.directory.file(BEST).is_file():
            return None, None
        return (max if self.task.maximize else min)(values)

    def improves(self, value, best):
        if value is None or not math.isfinite(value):
            return False
        return best is None or (value > best if self.task.maximize else value < best)

    def learning_rate(self):
        return self.task.optimizers[0].param_groups[0]["lr"]

    def diverged(self, epoch, step, steps, what):
        done = self.directory.load_checkpoint()["epoch"] if self.directory.has_checkpoint() else 0
        lr = self.learning_rate()
        # The suggestion divides the learning rate the user asked for; under a
        # schedule the current rate differs from it (and can overflow).
        asked = getattr(self.config, "lr", lr)
        kept = (f"{self.directory.path} keeps the checkpoint of epoch {done}" if done
                else "no checkpoint was written")
        return TrainingDiverged(
            f"training diverged at epoch {epoch}, step {step} of {steps}: {what} "
            f"(learning rate {lr:.3g}); {kept}. Try a smaller learning rate, e.g. --lr {asked / 10:.3g}",
            self.directory.path, epoch, step)

    def check_step(self, figures):
        """What went wrong in the step that gave `figures` (the three rules of
        the module docstring), or None."""
        task = self.task
        for name in task.losses:
            value = float(figures[name])
            if not math.isfinite(value):
                return f"the {name} is {value}"
            start = self.first_losses.setdefault(name, value)
            if task.blowup_factor and value > task.blowup_factor * max(1.0, abs(start)):
                return (f"the {name} blew up to {value:.3g}, more than {task.blowup_factor:g} times "
                        f"its first value {start:.3g}")
        named = list(task.model.named_parameters())
        bad = first_non_finite((name, param.grad) for name, param in named)
        if bad:
            return f"the gradient of {bad} is not finite"
        bad = first_non_finite((name, tensor.data) for name, tensor in named + list(task.model.named_buffers()))
        if bad:
            return f"{bad} is not finite after the update"
        return None

    def stop_message(self, reason):
        """`reason`, what the run directory keeps, and how to continue."""
        done = self.directory.load_checkpoint()["epoch"] if self.directory.has_checkpoint() else 0
        if not done:
            return f"{reason}: no epoch was finished, so {self.directory.path} holds no checkpoint.", done
        text = (f"{reason}: {self.directory.path} keeps the checkpoint of epoch {done}."
                f"\ncontinue with:  minidl train {self.config.model} --resume {self.directory.path}")
        return text, done

    def train_epoch(self, epoch, seed, run_clock, budget_end):
        """One epoch of steps; returns (means of the step figures, steps,
        samples) or None when the time budget ran out."""
        task = self.task
        task.model.train()
        batches = task.batches(epoch, seed)
        steps = len(batches)
        if steps == 0:
            raise ValueError(f"an epoch of {self.config.model} has no batches: batch_size "
                             f"{self.config.batch_size} is more than the training set holds "
                             "(or leaves only an incomplete batch, which this task drops)")
        sums, samples, done = {}, 0, 0
        start = clock()
        with tqdm(total=steps, desc=f"epoch {epoch}/{self.config.epochs}", unit="step",
                  disable=not self.progress, dynamic_ncols=True) as bar:
            for batch in batches:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    figures = task.train_step(batch)
                done += 1
                problem = self.check_step(figures)
                if problem:
                    raise self.diverged(epoch, done, steps, problem)
                for scheduler in self.schedulers:
                    scheduler.step()
                size = int(figures.get("size", 1))
                samples += size
                for key, value in figures.items():
                    if key != "size":
                        sums[key] = sums.get(key, 0.0) + float(value) * size
                run_clock.step()
                eta = run_clock.eta_seconds()
                bar.set_postfix({**{k: f"{v / samples:.4g}" for k, v in sums.items()},
                                 f"{task.unit}_per_s": f"{samples / max(clock() - start, 1e-9):,.0f}",
                                 "ETA": format_duration(eta) if eta is not None else "?"},
                                refresh=False)
                bar.update(1)
                if budget_end is not None and clock() > budget_end:
                    return None
        return {k: v / max(samples, 1) for k, v in sums.items()}, done, samples

    # ---- the loop --------------------------------------------------------------
    def run(self):
        """Train to config.epochs (see the module docstring); returns the result dict."""
        with training_threads(), sigterm_as_ctrl_c():   # one thread pool at a time (minidl/threads.py)
            return self.run_epochs()

    def run_epochs(self):
        task, config, run, log = self.task, self.config, self.directory, self.log
        done, history = self.prepare_run_directory()
        if self.resume:
            log(f"resuming {run.path} from epoch {done} of {config.epochs}")
        run.save_config(task.config_record())
        best, best_epoch = self.best_so_far(history)
        budget_end = clock() + 60.0 * self.max_minutes if self.max_minutes else None
        run_clock = RunClock(len(task.batches(1, 0)), config.epochs - done)
        stopped, epoch, last_seconds = None, done, 0.0
        try:
            for epoch in range(done + 1, config.epochs + 1):
                # skip an epoch only once the previous one showed how long an epoch takes
                if budget_end is not None and last_seconds > 0 and last_seconds > budget_end - clock():
                    stopped = (f"time budget of {self.max_minutes:g} minutes: {budget_end - clock():.0f} s "
                               f"left, less than epoch {epoch - 1} took ({last_seconds:.0f} s), so epoch "
                               f"{epoch} was not started")
                    break
                seed = epoch_seed(config.seed, epoch)
                mdl.manual_seed(seed)                        # dropout, augmentation, noise
                start, cpu_start = clock(), time.process_time()
                trained = self.train_epoch(epoch, seed, run_clock, budget_end)
                if trained is None:
                    stopped = f"time budget of {self.max_minutes:g} minutes reached during epoch {epoch}"
                    break
                means, steps, samples = trained
                seconds = clock() - start
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    evaluation = task.evaluate(epoch)
                for key, value in evaluation.items():
                    if isinstance(value, float) and not math.isfinite(value):
                        raise self.diverged(epoch, steps, steps, f"the evaluation's {key} is {value}")
                record = dict(epoch=epoch, **task.epoch_record(means, evaluation))
                record.update(steps=steps, seconds=seconds, cpu_seconds=time.process_time() - cpu_start)
                record[f"{task.unit}_per_s"] = samples / max(seconds, 1e-9)
                record["lr"] = self.learning_rate()                # after the epoch's last step
                bad = non_finite_weights(task.model)
                if bad:
                    raise self.diverged(epoch, steps, steps, f"the weights {', '.join(bad[:3])} are not finite")
                task.after_epoch(run, record, history)
                history.append(record)
                # checkpoint.npz last: until it is written, the epoch does not count (Ctrl-C
                # before it keeps the previous epoch, and resuming drops later records)
                if task.metric and self.improves(record.get(task.metric), best):
                    best, best_epoch = record[task.metric], epoch
                    run.save_checkpoint(task.model, task.optimizer, epoch, config.to_dict(), self.schedulers,
                                        name=BEST)
                run.save_metrics(history)
                run.save_checkpoint(task.model, task.optimizer, epoch, config.to_dict(), self.schedulers)
                log(task.summary(record))
                last_seconds = clock() - start               # the whole epoch: steps, evaluation, saving
        except KeyboardInterrupt:
            text, finished = self.stop_message(f"\ninterrupted during epoch {epoch}")
            log(text)
            raise TrainingInterrupted(run.path, finished) from None

        if stopped:
            text, finished = self.stop_message(stopped)
            log(text)
            stopped = "time budget"
            if not finished:
                return dict(history=history, model=task.model, run_dir=run.path, best_epoch=None,
                            stopped=stopped)
            run.resume(task.model, task.optimizer, self.schedulers)    # the weights of that checkpoint
        result = dict(history=history, model=task.model, run_dir=run.path, best_epoch=best_epoch,
                      stopped=stopped)
        result.update(task.finish(run, history) or {})
        return result


def make_schedulers(config, optimizers, steps_per_epoch):
    """One learning-rate scheduler per optimizer for config.scheduler (None: none)."""
    name = getattr(config, "scheduler", None)
    if not name:
        return []
    from ..optim.lr_scheduler import for_training

    return [for_training(name, optimizer, config.epochs, steps_per_epoch) for optimizer in optimizers]


__all__ = ["Task", "Trainer", "TrainingInterrupted", "TrainingDiverged", "StepBatches",
           "CHECKPOINT", "BEST"]
