"""Image completion with pixel-gpt: prompts keep the top half, the unknown-class token is
trained, the report counts what the classifier reads, and `minidl complete` writes its grid."""
import json

import numpy as np
import pytest

import minidl as mdl
from minidl import cli, completion
from minidl.models.gpt import GPT, GPTConfig
from minidl.training import gpt as gpt_training
from minidl.training.gpt_tasks import LEVELS, UNKNOWN, UNKNOWN_CLASS_RATE, PixelTask

from training_helpers import interrupt_path_writes


@pytest.fixture(scope="module")
def task():
    return PixelTask()


def tiny_gpt(task):
    mdl.manual_seed(0)
    return GPT(GPTConfig(vocab_size=task.vocab_size, block_size=64, n_layer=1, n_head=1, n_embd=8))


def test_training_batches_start_with_the_unknown_token_about_a_quarter_of_the_time(task):
    inputs, targets = task.batch(4000, np.random.default_rng(0))
    unknown = inputs[:, 0] == UNKNOWN
    assert task.vocab_size == UNKNOWN + 1 == LEVELS + 11
    assert abs(unknown.mean() - UNKNOWN_CLASS_RATE) < 0.03
    assert np.all((inputs[~unknown, 0] >= LEVELS) & (inputs[~unknown, 0] < UNKNOWN))
    assert np.all(targets < LEVELS), "the model is never asked to predict a start token"
    assert np.all(task.train[:, 0] < UNKNOWN), "the stored training sequences keep their classes"


def test_prompts_keep_the_top_half_and_choose_the_start_token(task):
    sequences = task.eval_windows[:5]
    with_class = completion.prompts(task, sequences, True)
    without = completion.prompts(task, sequences, False)
    np.testing.assert_array_equal(with_class, sequences[:, :33])
    np.testing.assert_array_equal(without[:, 1:], sequences[:, 1:33])
    assert np.all(without[:, 0] == UNKNOWN)


def test_completions_keep_the_prompt_and_add_32_pixels(task):
    model = tiny_gpt(task)
    sequences = task.eval_windows[:3]
    out = completion.complete(model, task, sequences, with_class=False, samples=2,
                              rng=np.random.default_rng(0))
    assert out.shape == (6, 65)
    np.testing.assert_array_equal(out[::2, 1:33], sequences[:, 1:33])
    np.testing.assert_array_equal(out[1::2, 1:33], sequences[:, 1:33])
    masked = completion.masked_images(task, sequences)
    assert masked.shape == (3, 1, 8, 8) and np.all(masked[:, 0, 4:] == 0)
    np.testing.assert_array_equal(masked[:, 0, :4], task.images_from(sequences)[:, 0, :4])


def test_masked_images_blank_every_bottom_pixel_and_leave_the_sequences_alone(task):
    # Every pixel at the brightest level, so a bottom pixel left unblanked shows.
    sequences = task.eval_windows[:2].copy()
    sequences[:, 1:] = LEVELS - 1
    before = sequences.copy()
    masked = completion.masked_images(task, sequences)
    np.testing.assert_array_equal(sequences, before)
    full = task.images_from(sequences)                                      # (2, 1, 8, 8)
    np.testing.assert_array_equal(masked[:, 0, :4], full[:, 0, :4])
    assert np.all(full[:, 0, 4:] > 0) and np.all(masked[:, 0, 4:] == 0)


def test_top_half_log_likelihoods_are_the_models_loss_on_the_top_half_after_each_class(task):
    """Score c of a digit is log p(top half | class c): minus 32 times the model's mean
    cross-entropy (GPT.loss) on the sequence (class token c, top half)."""
    model = tiny_gpt(task)
    sequences = task.eval_windows[:4]
    scores = completion.top_half_log_likelihoods(model, sequences, batch_size=3)     # (4, 10)
    assert scores.shape == (4, 10) and np.all(scores < 0)
    for row in (0, 3):
        for c in (0, 7):
            tokens = np.concatenate([[LEVELS + c], sequences[row, 1:33]])[None]       # (1, 33)
            with mdl.no_grad():
                loss = model.loss(tokens[:, :-1], tokens[:, 1:]).item()
            assert scores[row, c] == pytest.approx(-32 * loss, rel=1e-4)


def test_inferred_start_puts_the_models_most_likely_class_first(task):
    model = tiny_gpt(task)
    sequences = task.eval_windows[:5]
    best = np.argmax(completion.top_half_log_likelihoods(model, sequences), axis=1)
    np.testing.assert_array_equal(completion.infer_classes(model, sequences), best)
    out = completion.complete(model, task, sequences, with_class=False, samples=2, start="inferred",
                              rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out[:, 0], np.repeat(LEVELS + best, 2))
    np.testing.assert_array_equal(out[::2, 1:33], sequences[:, 1:33])
    given = completion.complete(model, task, sequences, with_class=True, start="inferred",
                                rng=np.random.default_rng(0))
    np.testing.assert_array_equal(given[:, 0], sequences[:, 0])          # with the class, the class starts it
    with pytest.raises(ValueError, match="start must be one of"):
        completion.complete(model, task, sequences, with_class=False, start="guess")


class ReadsBottomRow:
    """A stand-in 'classifier' that answers class 7 when the bottom row has any ink, else 1."""

    def eval(self):
        return self

    def __call__(self, images):
        ink = images.data[:, 0, 7].max(axis=1) > images.data.min()          # normalised input
        return mdl.tensor(np.where(ink[:, None], np.eye(10)[7], np.eye(10)[1]).astype(np.float32))


def test_report_counts_completions_read_as_the_original_class(task):
    model = tiny_gpt(task)
    report = completion.completion_report(model, task, ReadsBottomRow(), count=20, samples=2)
    labels = task.test_images.labels[:20]
    # the masked digits have a blank bottom row: read as 1 exactly where the digit is a 1
    assert report["top_half_only"] == pytest.approx(np.mean(labels == 1))
    assert report["digits"] == 20 and report["samples_per_digit"] == 2
    for key in ("without_class", "with_class", "quantised_originals"):
        assert 0.0 <= report[key] <= 1.0


def test_old_pixel_gpt_without_the_unknown_token_is_refused(task):
    mdl.manual_seed(0)
    old = GPT(GPTConfig(vocab_size=LEVELS + 10, block_size=64, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(ValueError, match="no 'unknown class' token"):
        completion.complete(old, task, task.eval_windows[:1], with_class=False)


def test_complete_command_writes_the_grid_and_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(gpt_training.MODEL_SIZES, "pixel-gpt", (1, 2, 16))
    monkeypatch.setenv("MINIDL_GPT_STEPS", "2")
    pixel_run, cnn_run = tmp_path / "pixel", tmp_path / "cnn"
    assert cli.main(["train", "pixel-gpt", "--epochs", "1", "--out", str(pixel_run), "--no-progress"]) == 0
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", str(cnn_run), "--no-progress"]) == 0
    assert cli.main(["complete", str(pixel_run), "--num", "3", "--samples", "2"]) == 0
    assert (pixel_run / "completions.png").stat().st_size > 3000
    assert cli.main(["complete", str(pixel_run), "--num", "2", "--samples", "1", "--start", "unknown",
                     "--temperature", "0.9", "--out", str(tmp_path / "unknown.png")]) == 0
    assert (tmp_path / "unknown.png").stat().st_size > 3000
    assert cli.main(["complete", str(pixel_run), "--num", "2", "--samples", "1",
                     "--classifier", str(cnn_run)]) == 0
    report = json.loads((pixel_run / "completion.json").read_text())
    assert report["digits"] == 450 and 0 <= report["without_class"] <= 1
    assert report["start"] == completion.START and report["temperature"] == completion.TEMPERATURE
    assert "without the class" in capsys.readouterr().out
    assert cli.main(["complete", str(cnn_run)]) == 1                     # not a pixel-gpt run
    assert cli.main(["complete", str(pixel_run), "--classifier", str(pixel_run)]) == 1
    # Ctrl-C while completion.json is rewritten: the old report stays whole (it was written in place)
    before = (pixel_run / "completion.json").read_text()
    interrupt_path_writes(monkeypatch)
    assert cli.main(["complete", str(pixel_run), "--num", "2", "--samples", "1",
                     "--classifier", str(cnn_run), "--seed", "1"]) == 130
    assert (pixel_run / "completion.json").read_text() == before
    assert not list(pixel_run.glob("*.partial"))


@pytest.mark.slow
def test_completion_without_the_class_reaches_its_measured_floor(tmp_path):
    """The issue's target: >= 70% of completions made WITHOUT the class are read as the
    original class by the reference CNN. It is NOT reliably met: with `minidl complete`'s
    defaults (the model starts from the class it infers from the top half, at the
    temperature chosen on a validation split) the registry-default models reached 74.8%,
    then 70.4% and 69.8% after changes to the framework's conv and layer_norm code (other
    float rounding) altered the training runs (benchmarks/results/completion.md). This asserts the floor
    those runs clear with room for such run-to-run spread, and that it is far above what
    the top half alone says."""
    from minidl.models import model_entry
    from minidl.training import make_config
    from minidl.training.gpt import load_run

    for name in ("pixel-gpt", "cnn"):
        model_entry(name).trainer(make_config(name), tmp_path / name, progress=False, log=lambda *a: None)
    _, model, task = load_run(tmp_path / "pixel-gpt")
    report = completion.completion_report(model, task, completion.load_classifier(tmp_path / "cnn"))
    message = (f"completions read as the original class: {report['without_class']:.1%} without the class "
               f"(start {report['start']!r}, temperature {report['temperature']}; target 70% not reliably "
               f"met), {report['with_class']:.1%} with it; the model's reading of the top half "
               f"{report['inferred_class']:.1%}; top half alone {report['top_half_only']:.1%}, originals "
               f"{report['quantised_originals']:.1%}")
    print(message)
    assert report["start"] == "inferred" and report["digits"] == 450
    assert report["without_class"] >= 0.62 and report["with_class"] >= 0.8, message
    assert report["without_class"] > report["top_half_only"] + 0.35, message


class StampsTheStartToken:
    """A stand-in pixel-gpt: its completions have ink in the bottom half exactly
    when the start token is the class token of a 7; it scores every token alike."""

    def __init__(self, task):
        self.config = GPTConfig(vocab_size=task.vocab_size)
        self.training = False

    def eval(self):
        self.training = False
        return self

    def train(self, mode=True):
        self.training = mode
        return self

    def __call__(self, idx):
        return mdl.tensor(np.zeros(np.shape(idx) + (self.config.vocab_size,), np.float32))

    def generate(self, prompt, new_tokens, temperature=1.0, rng=None):
        ink = np.where(prompt[:, :1] == LEVELS + 7, LEVELS - 1, 0)                    # (N, 1)
        return np.concatenate([prompt, np.broadcast_to(ink, (len(prompt), new_tokens))], axis=1)


def test_report_pairs_each_completion_with_its_own_digit_and_says_which_had_the_class(task):
    """Worked out by hand with the stand-ins: with the class, a 7 is completed
    with ink (read 7) and every other digit without (read 1), so the share read
    right is the share of 1s and 7s; without the class ("unknown" start) no
    completion has ink, so it is the share of 1s. The 2 samples of a digit sit
    next to each other and are compared with that digit's label."""
    labels = task.test_images.labels[:40]
    assert 0 < np.mean(labels == 7) and 0 < np.mean(labels == 1)
    report = completion.completion_report(StampsTheStartToken(task), task, ReadsBottomRow(), count=40,
                                          samples=2, start="unknown")
    assert report["with_class"] == pytest.approx(np.mean((labels == 7) | (labels == 1)))
    assert report["without_class"] == pytest.approx(np.mean(labels == 1))
    assert report["inferred_class"] == pytest.approx(np.mean(labels == 0))        # all scores tie: class 0
    bottom_ink = task.eval_windows[:40, -8:].max(axis=1) > 0
    assert report["quantised_originals"] == pytest.approx(np.mean(np.where(bottom_ink, 7, 1) == labels))


class StampsTheStartTokenAndPrefersSevens(StampsTheStartToken):
    """As above, but after the class token of a 7 every pixel is more likely
    (start tokens are ruled out), so the top half of any digit reads best as a 7."""

    def __call__(self, idx):
        logits = np.zeros(np.shape(idx) + (self.config.vocab_size,), np.float32)
        logits[np.asarray(idx)[:, 0] == LEVELS + 7, :, LEVELS:] = -10.0
        return mdl.tensor(logits)


def test_the_default_start_without_the_class_is_the_class_the_model_infers(task):
    """The module's documented default: with no `start` given, a completion
    without the class starts from the model's own reading of the top half (here
    always 7, so every completion has ink and is read as a 7)."""
    labels = task.test_images.labels[:40]
    report = completion.completion_report(StampsTheStartTokenAndPrefersSevens(task), task, ReadsBottomRow(),
                                          count=40, samples=2)
    assert report["inferred_class"] == pytest.approx(np.mean(labels == 7))
    assert report["without_class"] == pytest.approx(np.mean(labels == 7))
    assert report["start"] == "inferred"
