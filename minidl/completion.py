"""Image completion with pixel-gpt: keep the top half of a digit, let the model draw the rest.

    minidl complete runs/pixel-gpt --classifier runs/cnn

pixel-gpt reads a digit as a start token then 64 grey levels row by row
(minidl.training.gpt_tasks). To complete a digit, the prompt is the start
token and the 32 pixels of the top four rows; the model samples the 32
pixels of the bottom half one at a time, each given everything above it.

The start token is either the digit's class ("complete this 7") or the
"unknown class" token the model was also trained with ("complete this"):
without the class, the model has to infer from the top half which digit it
is drawing. A trained digits classifier (the reference CNN, `minidl train
cnn`) then reads each completion; `completion_report` gives the share read
as the original digit's class, with and without the class given, beside
  - the classifier on the original digits at the same 4 grey levels
    (its ceiling on these images), and
  - the classifier on the masked digits (bottom half blank): what the top
    half alone says, without any completion.
"""
import json

import numpy as np

import minidl as mdl
from .training.gpt_tasks import LEVELS, UNKNOWN

HALF = 32                  # pixels of the top four rows of an 8x8 digit


def prompts(task, sequences, with_class):
    """(N, 1 + HALF) prompts: the start token (class or UNKNOWN) and the top half."""
    prompt = np.array(sequences[:, :1 + HALF], copy=True)                     # (N, 33)
    if not with_class:
        prompt[:, 0] = UNKNOWN
    return prompt


def complete(model, task, sequences, with_class, samples=1, temperature=1.0, rng=None):
    """Completed sequences (N * samples, 65), `samples` consecutive rows per digit."""
    if model.config.vocab_size <= UNKNOWN:
        raise ValueError(f"complete: this pixel-gpt has {model.config.vocab_size} tokens and no "
                         f"'unknown class' token ({UNKNOWN}); train it again with "
                         f"`minidl train pixel-gpt`")
    prompt = np.repeat(prompts(task, sequences, with_class), samples, axis=0)  # (N * samples, 33)
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


def completion_report(model, task, classifier, count=None, samples=4, temperature=1.0, seed=0):
    """Shares of completions of the first `count` test digits (all by default)
    that the classifier reads as the original class, with and without the
    class given; plus the ceiling (quantised originals) and the masked digits."""
    sequences = task.eval_windows[:count]                                     # (N, 65)
    labels = task.test_images.labels[:len(sequences)]
    rng = np.random.default_rng(seed)
    report = dict(digits=len(sequences), samples_per_digit=samples, temperature=temperature,
                  quantised_originals=float(np.mean(classify(classifier, task.images_from(sequences)) == labels)),
                  top_half_only=float(np.mean(classify(classifier, masked_images(task, sequences)) == labels)))
    for name, with_class in (("without_class", False), ("with_class", True)):
        completed = complete(model, task, sequences, with_class, samples, temperature, rng)
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


def complete_run(run_dir, num=10, samples=4, classifier_run=None, temperature=1.0, seed=0, out=None,
                 log=print):
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
    rng = np.random.default_rng(seed)
    sequences = task.eval_windows[:num]
    without = complete(model, task, sequences, False, samples, temperature, rng)
    given = complete(model, task, sequences, True, samples, temperature, rng)
    path = plot_completions(task, sequences, without, given, samples, out or run.file("completions.png"))
    log(f"wrote {path}")
    if classifier_run is None:
        log("(give --classifier RUN_DIR, a `minidl train cnn` run, to measure the completions)")
        return None
    report = completion_report(model, task, load_classifier(classifier_run), samples=samples,
                               temperature=temperature, seed=seed)
    log(f"completions read as the original class: {report['without_class']:.1%} without the class, "
        f"{report['with_class']:.1%} with it ({report['digits']} test digits x {samples}); the "
        f"classifier reads {report['quantised_originals']:.1%} of the originals and "
        f"{report['top_half_only']:.1%} of the top halves alone")
    run.file("completion.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
