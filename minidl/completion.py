"""Image completion with pixel-gpt: keep the top half of a digit, let the model draw the rest.

    minidl complete runs/pixel-gpt --classifier runs/cnn

pixel-gpt reads a digit as a start token then 64 grey levels row by row
(minidl.training.gpt_tasks). To complete a digit, the prompt is the start
token and the 32 pixels of the top four rows; the model samples the 32
pixels of the bottom half one at a time, each given everything above it.

The start token is the digit's class ("complete this 7") when the class is
given. Without it there are two ways to start (`start`):
  - "unknown": the "unknown class" token the model was also trained with
    ("complete this"); the model has to work out from the top half, pixel by
    pixel, which digit it is drawing;
  - "inferred": the model first reads the top half itself, scoring it after
    each class token, log p(top half | class) (`top_half_log_likelihoods`),
    and starts from the class that explains it best (`infer_classes`): the
    same model used as a classifier, Bayes' rule with equal priors.
Nobody tells the model the class either way. "inferred" is the default: on a
validation split of the training digits its completions are read as the
right digit far more often (benchmarks/results/completion_choice.md).

A trained digits classifier (the reference CNN, `minidl train
cnn`) then reads each completion; `completion_report` gives the share read
as the original digit's class, with and without the class given, beside
  - the classifier on the original digits at the same 4 grey levels
    (its ceiling on these images), and
  - the classifier on the masked digits (bottom half blank): what the top
    half alone says, without any completion.
"""

import numpy as np

import minidl as mdl
from .training.gpt_tasks import LEVELS, UNKNOWN

HALF = 32                  # pixels of the top four rows of an 8x8 digit
STARTS = ("unknown", "inferred")   # what starts a completion made without the class
# The defaults of `minidl complete`, chosen on a validation split of the training
# digits, never on the test digits (benchmarks/results/completion_choice.md).
START = "inferred"
TEMPERATURE = 0.4


def prompts(task, sequences, with_class):
    """(N, 1 + HALF) prompts: the start token (class or UNKNOWN) and the top half."""
    prompt = np.array(sequences[:, :1 + HALF], copy=True)                     # (N, 33)
    if not with_class:
        prompt[:, 0] = UNKNOWN
    return prompt


def top_half_log_likelihoods(model, sequences, batch_size=256):
    """log p(top half | class c) under the model, for every class c: (N, 10).

    The top half is scored after each class token in turn: the sum over its 32
    pixels of log p(pixel | class token, the pixels before it)."""
    top = np.asarray(sequences)[:, 1:1 + HALF]                                 # (N, 32)
    scores = np.zeros((len(top), 10))
    was_training = model.training
    model.eval()
    with mdl.no_grad():
        for c in range(10):
            prompt = np.concatenate([np.full((len(top), 1), LEVELS + c), top], axis=1)   # (N, 33)
            for start in range(0, len(top), batch_size):
                chunk = prompt[start:start + batch_size]
                logits = model(chunk[:, :-1]).data.astype(np.float64)           # (B, 32, V)
                shifted = logits - logits.max(axis=-1, keepdims=True)
                log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
                taken = np.take_along_axis(log_probs, chunk[:, 1:, None], axis=-1)[..., 0]  # (B, 32)
                scores[start:start + batch_size, c] = taken.sum(axis=1)
    model.train(was_training)
    return scores


def infer_classes(model, sequences):
    """The class the model finds most likely for each top half (N,): the argmax
    of p(top half | class), i.e. of the posterior under a uniform prior."""
    return np.argmax(top_half_log_likelihoods(model, sequences), axis=1)


def complete(model, task, sequences, with_class, samples=1, temperature=1.0, rng=None, start="unknown"):
    """Completed sequences (N * samples, 65), `samples` consecutive rows per digit.

    Without the class (`with_class` False), `start` says what starts the prompt:
    "unknown", the "unknown class" token; or "inferred", the class token of
    `infer_classes`: the model's own reading of the top half."""
    if model.config.vocab_size <= UNKNOWN:
        raise ValueError(f"complete: this pixel-gpt has {model.config.vocab_size} tokens and no "
                         f"'unknown class' token ({UNKNOWN}); train it again with "
                         f"`minidl train pixel-gpt`")
    if start not in STARTS:
        raise ValueError(f"complete: start must be one of {STARTS}, got {start!r}")
    prompt = prompts(task, sequences, with_class)                              # (N, 33)
    if not with_class and start == "inferred":
        prompt[:, 0] = LEVELS + infer_classes(model, sequences)
    prompt = np.repeat(prompt, samples, axis=0)                                # (N * samples, 33)
    return model.generate(prompt, task.block_size - HALF, temperature=temperature, rng=rng)


def masked_images(task, sequences):
    """The digits with their bottom half blank (level 0), as images (N, 1, 8, 8)."""
    blank = np.array(sequences, copy=True)
    blank[:, 1 + HALF:] = 0
    return task.images_from(blank)


def load_classifier(classifier_run):
    """A digits classifier from its run directory, in eval mode."""
    from .models import build_model
    from .training import RunDirectory, TrainConfig

    run = RunDirectory(classifier_run)
    config = TrainConfig.from_dict(run.load_config())
    if config.kind != "classifier" or config.dataset != "digits":
        raise ValueError(f"complete: {classifier_run} holds a {config.model!r} run on {config.dataset!r}; "
                         f"the reference must be a classifier trained on the 8x8 digits")
    classifier = build_model(config.model, (1, 8, 8), 10)
    classifier.load_state_dict(run.load_checkpoint()["model"])
    classifier.eval()
    return classifier


def classify(classifier, images):
    from .training.classifier import prepare_batch

    with mdl.no_grad():
        return classifier(prepare_batch(images, "digits")).data.argmax(axis=1)


def completion_report(model, task, classifier, count=None, samples=4, temperature=None, seed=0,
                      start=None):
    """Shares of completions of the first `count` test digits (all by default)
    that the classifier reads as the original class, with and without the
    class given (`start`: see `complete`); plus the ceiling (quantised
    originals), the masked digits, and how often the model's own reading of
    the top half (`infer_classes`) is the digit's class."""
    temperature = TEMPERATURE if temperature is None else temperature
    start = START if start is None else start
    sequences = task.eval_windows[:count]                                     # (N, 65)
    labels = task.test_images.labels[:len(sequences)]
    rng = np.random.default_rng(seed)
    report = dict(digits=len(sequences), samples_per_digit=samples, temperature=temperature, start=start,
                  quantised_originals=float(np.mean(classify(classifier, task.images_from(sequences)) == labels)),
                  top_half_only=float(np.mean(classify(classifier, masked_images(task, sequences)) == labels)),
                  inferred_class=float(np.mean(infer_classes(model, sequences) == labels)))
    for name, with_class in (("without_class", False), ("with_class", True)):
        completed = complete(model, task, sequences, with_class, samples, temperature, rng, start=start)
        read = classify(classifier, task.images_from(completed))
        report[name] = float(np.mean(read == np.repeat(labels, samples)))
    return report


def plot_completions(task, sequences, completed_without, completed_with, samples, path):
    """Grid: per digit a row: original | masked | completions without the class | with it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    originals, masked = task.images_from(sequences), masked_images(task, sequences)
    without = task.images_from(completed_without).reshape(len(sequences), samples, 8, 8)
    given = task.images_from(completed_with).reshape(len(sequences), samples, 8, 8)
    columns = 2 + 2 * samples
    fig, axes = plt.subplots(len(sequences), columns, figsize=(0.9 * columns, 0.95 * len(sequences)),
                             squeeze=False)
    for row in range(len(sequences)):
        tiles = [originals[row, 0], masked[row, 0]] + list(without[row]) + list(given[row])
        for column, tile in enumerate(tiles):
            axes[row, column].imshow(tile, cmap="gray", vmin=0, vmax=1)
            axes[row, column].axis("off")
        axes[row, 0].set_title(f"class {sequences[row, 0] - LEVELS}", fontsize=6)
    titles = ["original", "top half"] + ["no class"] * samples + ["class given"] * samples
    for column, title in enumerate(titles):
        axes[0, column].set_title(title if column else f"original\nclass {sequences[0, 0] - LEVELS}", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def complete_run(run_dir, num=10, samples=4, classifier_run=None, temperature=None, seed=0, out=None,
                 log=print, start=None):
    """`minidl complete`: the grid of `num` test digits (completions.png) and,
    with a classifier run, the completion report over all test digits
    (completion.json). Returns the report (None without a classifier)."""
    from .training import RunDirectory
    from .training.gpt import load_run

    run = RunDirectory(run_dir)
    model_name = run.load_config()["model"]
    if model_name != "pixel-gpt":
        raise ValueError(f"complete: {run_dir} holds a {model_name!r} run; completion needs pixel-gpt")
    config, model, task = load_run(run_dir)
    if num < 1 or samples < 1:
        raise ValueError(f"complete: --num and --samples must be positive, got {num} and {samples}")
    temperature = TEMPERATURE if temperature is None else temperature
    start = START if start is None else start
    rng = np.random.default_rng(seed)
    sequences = task.eval_windows[:num]
    without = complete(model, task, sequences, False, samples, temperature, rng, start=start)
    given = complete(model, task, sequences, True, samples, temperature, rng, start=start)
    path = plot_completions(task, sequences, without, given, samples, out or run.file("completions.png"))
    log(f"wrote {path}")
    if classifier_run is None:
        log("(give --classifier RUN_DIR, a `minidl train cnn` run, to measure the completions)")
        return None
    report = completion_report(model, task, load_classifier(classifier_run), samples=samples,
                               temperature=temperature, seed=seed, start=start)
    log(f"completions read as the original class: {report['without_class']:.1%} without the class, "
        f"{report['with_class']:.1%} with it ({report['digits']} test digits x {samples}; start "
        f"{start!r}, temperature {temperature:g}; the model's own reading of the top half is right for "
        f"{report['inferred_class']:.1%}); the "
        f"classifier reads {report['quantised_originals']:.1%} of the originals and "
        f"{report['top_half_only']:.1%} of the top halves alone")
    run.write_json("completion.json", report)
    return report
