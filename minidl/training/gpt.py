"""Training a GPT: `minidl train gpt|pixel-gpt` and their `minidl sample`.

Two tasks (minidl.training.gpt_tasks), one model class (minidl.models.gpt.GPT),
one GPTTask for the shared Trainer (minidl.training.loop): "gpt" predicts the
next character of the bundled Shakespeare slice, against a bigram baseline on
the same validation windows; "pixel-gpt" the next grey level of an 8x8 digit
after a class token (or, for a quarter of the training sequences, an
"unknown class" token), so that generating from a class token draws that digit
(a trained CNN then says how often it is recognised: `recognition_report`).

An "epoch" is `steps_per_epoch` optimisation steps (AdamW) on random windows;
after each, the validation loss is measured on fixed windows (best.npz keeps
the epoch with the lowest), a sample is written and the checkpoint saved. The
environment variable MINIDL_GPT_STEPS overrides the steps per epoch (e.g.
MINIDL_GPT_STEPS=3 for a smoke test of the CLI). The model sizes are
minidl.models.gpt.MODEL_SIZES.
"""
import dataclasses
import os

import numpy as np

import minidl as mdl
from .. import viz
from ..models.gpt import CHARACTER_BLOCK, GPT, GPTConfig, MODEL_SIZES
from .gpt_tasks import EVAL_WINDOWS, LEVELS, CharacterTask, PixelTask  # noqa: F401  (re-exported)
from .config import TrainConfig, make_optimizer
from .loop import StepBatches, Task, Trainer
from .run_directory import RunDirectory

STEPS_PER_EPOCH = 100
PIXEL_TEMPERATURE = 0.7    # sampling temperature of the digit grids (1.0 gives speckled digits)


def default_steps_per_epoch():
    """STEPS_PER_EPOCH, or the positive integer in $MINIDL_GPT_STEPS."""
    value = os.environ.get("MINIDL_GPT_STEPS", "")
    if not value:
        return STEPS_PER_EPOCH
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MINIDL_GPT_STEPS must be a positive integer, got {value!r}")
    return int(value)


def make_task(config):
    if config.model == "pixel-gpt":
        return PixelTask(config.data_root)
    return CharacterTask(block_size=CHARACTER_BLOCK)


def gpt_config(task):
    """The GPTConfig of a task: its vocabulary and block size, MODEL_SIZES' shape."""
    n_layer, n_head, n_embd = MODEL_SIZES["pixel-gpt" if isinstance(task, PixelTask) else "gpt"]
    return GPTConfig(vocab_size=task.vocab_size, block_size=task.block_size,
                     n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=0.0)


def validation_loss(model, task, batch_size=64):
    model.eval()
    total = 0.0
    with mdl.no_grad():
        for start in range(0, len(task.eval_windows), batch_size):
            window = task.eval_windows[start:start + batch_size]
            total += model.loss(window[:, :-1], window[:, 1:]).item() * len(window)
    model.train()
    return total / len(task.eval_windows)


def write_sample(model, task, path, rng, temperature=None):
    """A grid of 4 digits per class (PNG), or 300 characters after a newline (text)."""
    if isinstance(task, PixelTask):
        prompts = (LEVELS + np.arange(10).repeat(4))[:, None]                # 4 of each class
        sequences = model.generate(prompts, task.block_size, temperature=temperature or PIXEL_TEMPERATURE,
                                   rng=rng)                                 # (40, 65)
        viz.plot_samples(task.images_from(sequences), path, ncols=8,
                            titles=[str(c) for c in np.arange(10).repeat(4)])
    else:
        text = task.decode(model.generate(np.array([[task.index["\n"]]]), 300, temperature=temperature or 0.8,
                                          top_k=20, rng=rng)[0])
        path.write_text(text)
        return text
    return None


class GPTTask(Task):
    """Next-token prediction for the Trainer; best.npz follows the validation loss."""

    losses = ("loss",)
    metric, maximize = "validation_loss", False
    unit = "tokens"

    def __init__(self, config, steps_per_epoch=None, log=print, data=None):
        expected = "digits" if config.model == "pixel-gpt" else "shakespeare"
        if config.dataset != expected:
            raise ValueError(f"{config.model}: trains on the bundled {expected!r} data only, "
                             f"got dataset {config.dataset!r}")
        self.config, self.log = config, log
        self.steps_per_epoch = steps_per_epoch or default_steps_per_epoch()
        self.data = make_task(config) if data is None else data      # data: a PixelTask of other splits
        mdl.manual_seed(config.seed)
        self.model = GPT(gpt_config(self.data))
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.baseline = self.data.bigram_loss() if isinstance(self.data, CharacterTask) else None

    def config_record(self):
        return dict(self.config.to_dict(), gpt=self.model.config.to_dict())

    def batches(self, epoch, seed):
        rng = np.random.default_rng(seed)
        return StepBatches(self.steps_per_epoch, lambda: self.data.batch(self.config.batch_size, rng))

    def train_step(self, batch):
        inputs, targets = batch                                            # (B, T) each
        loss = self.model.loss(inputs, targets)
        self.optimizer.zero_grad()
        loss.backward()
        self.update(self.optimizer)
        return dict(loss=loss.item(), size=inputs.size)

    def evaluate(self, epoch):
        return dict(validation_loss=validation_loss(self.model, self.data))

    def epoch_record(self, means, evaluation):
        record = dict(train_loss=means["loss"], **evaluation)
        if self.baseline is not None:
            record["bigram_validation_loss"] = self.baseline
        return record

    def after_epoch(self, run, record, history):
        record["seconds_per_step"] = record["seconds"] / record["steps"]
        # wall-clock and CPU minutes of training so far (on a shared machine the
        # CPU time of this process is what an idle machine would take, with one thread)
        for key, value in (("training_minutes", record["seconds"]),
                           ("training_cpu_minutes", record["cpu_seconds"])):
            record[key] = (history[-1].get(key, 0.0) if history else 0.0) + value / 60
        suffix = "png" if isinstance(self.data, PixelTask) else "txt"
        rng = np.random.default_rng([int(self.config.seed), int(record["epoch"]), 1])
        write_sample(self.model, self.data, run.file(f"samples_epoch_{record['epoch']:03d}.{suffix}"), rng)
        plot_gpt_curves(history + [record], run.file("curves.png"), self.baseline, self.steps_per_epoch)

    def summary(self, record):
        baseline = self.baseline
        return (f"{self.config.model} | epoch {record['epoch']}/{self.config.epochs} | "
                f"train loss {record['train_loss']:.3f} | validation loss {record['validation_loss']:.3f}"
                + (f" (bigram {baseline:.3f})" if baseline is not None else "")
                + f" | {record['seconds_per_step'] * 1000:.0f} ms/step, {record['training_minutes']:.1f} min "
                f"({record['training_cpu_minutes']:.1f} CPU min)")

    def finish(self, run, history):
        plot_attention_example(self.model, self.data, run.file("attention.png"))
        return dict(task=self.data)


def fit_gpt(config, run_dir, resume=False, progress=True, log=print, steps_per_epoch=None, max_minutes=None,
            data=None):
    """Train the GPT of `config` ("gpt" or "pixel-gpt") in `run_dir` with the
    shared Trainer; returns its result dict (history, model, task, run_dir, ...).
    `data` replaces the task's data (e.g. a PixelTask over a validation split)."""
    task = GPTTask(config, steps_per_epoch, log, data=data)
    return Trainer(task, config, run_dir, resume=resume, progress=progress, log=log,
                   max_minutes=max_minutes).run()


def plot_gpt_curves(history, path, baseline=None, steps_per_epoch=STEPS_PER_EPOCH):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r.get("training_cpu_minutes", r["epoch"]) for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(minutes, [r["train_loss"] for r in history], "o-", label="train (mean over the epoch)")
    ax.plot(minutes, [r["validation_loss"] for r in history], "o-", label="validation")
    if baseline is not None:
        ax.axhline(baseline, color="gray", ls="--", label=f"bigram baseline {baseline:.2f}")
    ax.set_xlabel(f"training CPU time (minutes); one point per epoch of {steps_per_epoch} steps")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_attention_example(model, task, path):
    """Where the last block looks, over one validation sequence (first 32 tokens)."""
    tokens = task.eval_windows[:1, :32]
    weights = model.attention_maps(tokens)[-1][0]                             # (T, T)
    if isinstance(task, CharacterTask):
        labels = [repr(c)[1:-1] for c in task.decode(tokens[0])]
    else:
        labels = ["cls"] + [str(t) for t in tokens[0, 1:]]
    viz.plot_attention(weights, path, query_labels=labels, key_labels=labels,
                       title="last block, head-averaged attention")


# ---- pixel-gpt evaluation with a trained CNN ----------------------------------------
def class_recognition(model, task, classifier, per_class=50, rng=None, dataset="digits",
                      temperature=1.0):
    """Generate `per_class` digits of every class (at `temperature`); for each
    class, the share the classifier reads as the class asked for."""
    from .classifier import prepare_batch

    rng = rng or np.random.default_rng(0)
    asked = np.arange(10).repeat(per_class)                              # (10 * per_class,)
    images = task.images_from(model.generate((LEVELS + asked)[:, None], task.block_size,
                                             temperature=temperature, rng=rng))
    classifier.eval()
    with mdl.no_grad():
        predicted = classifier(prepare_batch(images, dataset)).data.argmax(axis=1)
    return [float(np.mean(predicted[asked == digit] == digit)) for digit in range(10)]


def recognition_report(pixel_run, classifier_run, per_class=50, seed=0, temperature=1.0, log=print):
    """Load a pixel-gpt run and a digits classifier run (`minidl train cnn`); the
    classifier's accuracy on the real test digits after the same 4-level
    quantisation (its ceiling here), then class_recognition of generated digits."""
    from ..models import build_model
    from .classifier import prepare_batch

    _, model, task = load_run(pixel_run)
    run = RunDirectory(classifier_run)
    saved = TrainConfig.from_dict(run.load_config())
    if saved.dataset != "digits":
        raise ValueError(f"recognition_report: {classifier_run} was trained on {saved.dataset!r}, "
                         f"not the 8x8 digits pixel-gpt draws")
    classifier = build_model(saved.model, (1, 8, 8), 10)
    classifier.load_state_dict(run.load_checkpoint()["model"])
    classifier.eval()
    quantised = task.images_from(task.eval_windows)                      # real test digits, 4 levels
    with mdl.no_grad():
        predicted = classifier(prepare_batch(quantised, "digits")).data.argmax(axis=1)
    real = float(np.mean(predicted == task.test_images.labels))
    rates = class_recognition(model, task, classifier, per_class, np.random.default_rng(seed),
                              temperature=temperature)
    log(f"{saved.model} on quantised real test digits: {real:.1%}")
    log("generated digits recognised as asked: " + ", ".join(f"{d}: {r:.0%}" for d, r in enumerate(rates))
        + f"; mean {np.mean(rates):.1%} ({per_class} per class, temperature {temperature})")
    return dict(real_accuracy=real, rates=rates, mean=float(np.mean(rates)))


# ---- `minidl sample` ------------------------------------------------------------------
def model_shape(run, saved):
    """The GPTConfig that config.json's "gpt" entry records (the checkpoint holds
    only weights); a ValueError naming the file unless it is exactly that."""
    fields = {f.name: f.type for f in dataclasses.fields(GPTConfig)}      # name -> int or float

    def fits(name, value):
        kinds = (int, float) if fields[name] is float else (int,)
        return isinstance(value, kinds) and not isinstance(value, bool)

    shape = saved.get("gpt")
    if not isinstance(shape, dict) or set(shape) != set(fields) or not all(fits(k, v) for k, v in shape.items()):
        raise ValueError(f"{run.file('config.json')}: the \"gpt\" entry must give the model's shape as "
                         f"numbers ({', '.join(fields)}), got {shape!r}")
    return GPTConfig(**shape)


def load_run(run_dir):
    run = RunDirectory(run_dir)
    saved = run.load_config()
    config = TrainConfig.from_dict(saved)
    model = GPT(model_shape(run, saved))
    model.load_state_dict(run.load_checkpoint()["model"])
    return config, model, make_task(config)


def sample_from_run(run_dir, args):
    config, model, task = load_run(run_dir)
    rng = np.random.default_rng(args.seed)
    if isinstance(task, PixelTask):
        path = args.out or RunDirectory(run_dir).file("sample.png")
        write_sample(model, task, path, rng, temperature=args.temperature)
        print(f"wrote {path}")
        return 0
    prompt = args.prompt or "\n"
    unknown = sorted(set(prompt) - set(task.vocabulary))
    if unknown:
        raise SystemExit(f"minidl sample: the prompt uses characters the model never saw: {unknown}")
    start = np.array([[task.index[c] for c in prompt]])
    text = task.decode(model.generate(start, args.length, temperature=args.temperature, top_k=20,
                                      rng=rng)[0])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0

