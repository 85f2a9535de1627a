"""The GAN training loop: determinism, checkpoint round trip through the run
directory, a short run on digits that moves the right way, the CLI end to end
(train, quality report, sample), and the sample-quality numbers' ordering."""
import json
import shutil

import numpy as np
import pytest

import minidl as mdl
from minidl.cli import main
from minidl.data import load_dataset
from minidl.models.gan import GAN, GANConfig, build_dcgan
from minidl.training import gan as gan_training
from minidl.training import TrainingDiverged
from minidl.training.config import make_config
from minidl.training.gan import OptimizerPair, fit_gan, sample_quality, to_pixels, train_step
from minidl.training.run_directory import RunDirectory
from training_helpers import interrupt_path_writes


def _digits_in_gan_range():
    return load_dataset("digits", "train").images * 2.0 - 1.0           # (1347, 1, 8, 8) in [-1, 1]


def _losses_of_a_few_steps(seed, steps=4):
    mdl.manual_seed(seed)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=16))
    optimizers = OptimizerPair(model, 2e-4)
    data, rng = _digits_in_gan_range(), np.random.default_rng(seed)
    figures = []
    for _ in range(steps):
        step = train_step(model, optimizers, data[rng.integers(0, len(data), 16)], model.noise(16))
        figures.append((step["d_loss"], step["g_loss"], step["d_real"], step["d_fake"]))
    return figures, model


def test_same_seed_gives_identical_losses_bit_for_bit():
    first, model_a = _losses_of_a_few_steps(seed=3)
    second, model_b = _losses_of_a_few_steps(seed=3)
    assert first == second                                              # exact float equality
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    other, _ = _losses_of_a_few_steps(seed=4)
    assert other != first                                               # the seed matters


def test_a_short_run_on_digits_moves_the_right_way():
    """After a few dozen steps D tells real from generated (D(x) > D(G(z))), and the
    generated pixels' mean and spread move from G's initial output toward the data's."""
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=16, width=32))
    optimizers = OptimizerPair(model, 2e-4)
    data, rng = _digits_in_gan_range(), np.random.default_rng(0)
    z = model.noise(500, np.random.default_rng(1))
    before = model.sample(z=z)
    gaps = []
    for step in range(60):
        figures = train_step(model, optimizers, data[rng.integers(0, len(data), 32)], model.noise(32))
        gaps.append(figures["d_real"] - figures["d_fake"])
    after = model.sample(z=z)
    assert np.mean(gaps[-20:]) > 0.05
    distance_before = abs(before.mean() - data.mean()) + abs(before.std() - data.std())
    distance_after = abs(after.mean() - data.mean()) + abs(after.std() - data.std())
    assert distance_after < 0.7 * distance_before, (distance_before, distance_after)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """`minidl train gan --epochs 2` on digits with the full quality report; the
    reference CNN gets 2 epochs instead of `minidl train cnn`'s 10, to stay fast."""
    run_dir = tmp_path_factory.mktemp("gan") / "run"
    patch = pytest.MonkeyPatch()
    patch.setitem(gan_training.REFERENCE_EPOCHS, "digits", 2)
    try:
        code = main(["train", "gan", "--epochs", "2", "--batch-size", "32", "--out", str(run_dir),
                     "--no-progress"])
    finally:
        patch.undo()
    assert code == 0
    return run_dir


def test_cli_train_writes_the_run_directory(trained_run):
    for name in ("config.json", "metrics.json", "checkpoint.npz", "samples_epoch_001.png",
                 "samples_epoch_002.png", "gan_curves.png", "interpolation.png", "samples_final.png",
                 "quality.json", "classifier/checkpoint.npz"):
        assert (trained_run / name).is_file(), name
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2]
    assert all(r["steps"] == 1347 // 32 for r in metrics["epochs"])
    quality = json.loads((trained_run / "quality.json").read_text())
    assert metrics["quality"] == quality
    assert quality["samples"] == 1000 and quality["frechet_samples"] == 450
    assert len(quality["class_shares"]) == 10 and sum(quality["class_shares"]) == pytest.approx(1.0)
    assert quality["frechet_real_floor"] < quality["frechet_noise_ceiling"]


def test_cli_sample_writes_a_png_and_repeats_with_the_same_seed(trained_run, tmp_path):
    path = tmp_path / "grid.png"
    assert main(["sample", str(trained_run), "--num", "9", "--out", str(path)]) == 0
    assert path.is_file() and path.stat().st_size > 1000
    assert main(["sample", str(trained_run)]) == 0                     # default: RUN_DIR/sample.png
    assert (trained_run / "sample.png").is_file()


def test_checkpoint_round_trip_gives_identical_samples(tmp_path):
    config = make_config("dcgan", dataset="digits", epochs=1, batch_size=128)
    result = fit_gan(config, tmp_path / "run", progress=False, log=lambda *a: None, quality=False)
    z = result["model"].noise(16, np.random.default_rng(5))
    run = RunDirectory(tmp_path / "run")
    checkpoint = run.load_checkpoint()
    assert checkpoint["epoch"] == 1 and checkpoint["config"]["model"] == "dcgan"
    mdl.manual_seed(123)                                               # a different initialisation
    fresh = build_dcgan((1, 8, 8))
    assert not np.array_equal(fresh.sample(z=z), result["model"].sample(z=z))
    fresh.load_state_dict(checkpoint["model"])
    np.testing.assert_array_equal(fresh.sample(z=z), result["model"].sample(z=z))
    optimizers = OptimizerPair(fresh, 2e-4)
    optimizers.load_state_dict(checkpoint["optimizer"])                # both players' Adam states
    for player in ("generator", "discriminator"):
        saved, loaded = checkpoint["optimizer"][player], getattr(optimizers, player).state_dict()
        assert any(key.startswith("state.") for key in saved) and saved.keys() == loaded.keys()
        for key in saved:
            np.testing.assert_array_equal(loaded[key], saved[key], err_msg=f"{player} {key}")


def test_resume_continues_exactly(tmp_path):
    """2 epochs in one go == 1 epoch, then --resume to 2 (same batches, same noise)."""
    quiet = dict(progress=False, log=lambda *a: None, quality=False)
    config = make_config("gan", dataset="digits", epochs=2, batch_size=128)
    straight = fit_gan(config, tmp_path / "a", **quiet)
    fit_gan(make_config("gan", dataset="digits", epochs=1, batch_size=128), tmp_path / "b", **quiet)
    resumed = fit_gan(config, tmp_path / "b", resume=True, **quiet)
    assert [r["d_loss"] for r in straight["history"]] == [r["d_loss"] for r in resumed["history"]]


def test_a_time_budget_shorter_than_an_epoch_keeps_no_checkpoint(tmp_path):
    messages = []
    config = make_config("gan", dataset="digits", epochs=3, batch_size=32)
    result = fit_gan(config, tmp_path / "run", progress=False, log=messages.append, quality=False,
                     max_minutes=1e-6)
    assert result["stopped"] == "time budget" and result["history"] == []
    assert "reached during epoch 1" in messages[-1]
    assert not RunDirectory(tmp_path / "run").has_checkpoint()


def test_a_diverging_discriminator_stops_the_run_and_names_the_loss(tmp_path):
    config = make_config("gan", dataset="digits", epochs=2, batch_size=32, lr=1e30)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+ of \d+: (the (d_loss|g_loss) (is (nan|inf)|blew up)"
                                               r"|the gradient of \S+ is not finite|\S+ is not finite after)"):
        fit_gan(config, tmp_path / "run", progress=False, log=lambda *a: None, quality=False)


class _StandIn:
    """A 'generator' that returns given images (pixels in [0, 1]) as GAN samples."""

    def __init__(self, images):
        self.images = images

    def noise(self, n, rng=None):
        return np.zeros((n, 1), np.float32)

    def sample(self, n=None, z=None, rng=None):
        return self.images[: len(z)] * 2.0 - 1.0                          # back to [-1, 1]


def test_the_reference_cnn_is_reused_or_continued_not_retrained(trained_run, tmp_path, monkeypatch):
    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run, run_dir)
    before = RunDirectory(run_dir / "classifier").load_metrics()
    monkeypatch.setitem(gan_training.REFERENCE_EPOCHS, "digits", 3)      # one epoch more than it has
    gan_training.reference_classifier(make_config("gan", dataset="digits"), RunDirectory(run_dir),
                                      log=lambda *a: None)
    after = RunDirectory(run_dir / "classifier").load_metrics()
    assert [r["epoch"] for r in after] == [1, 2, 3] and after[:2] == before


def test_sample_quality_orders_real_blurred_and_noise(trained_run, tmp_path, monkeypatch):
    """With the run's reference CNN: real training images score near the floor,
    the same images with heavy noise land between floor and ceiling."""
    monkeypatch.setitem(gan_training.REFERENCE_EPOCHS, "digits", 2)      # the fixture's CNN, reused
    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run, run_dir)
    config = make_config("gan", dataset="digits")
    train = load_dataset("digits", "train").images
    rng = np.random.default_rng(0)
    noisy = np.clip(train + rng.normal(0.0, 0.35, train.shape), 0.0, 1.0).astype(np.float32)
    log = lambda *a: None
    real = sample_quality(_StandIn(train), config, RunDirectory(run_dir), n=1000, log=log)
    damaged = sample_quality(_StandIn(noisy), config, RunDirectory(run_dir), n=1000, log=log)
    assert real["frechet_generated"] < 3 * real["frechet_real_floor"]
    assert real["frechet_real_floor"] < damaged["frechet_generated"] < damaged["frechet_noise_ceiling"]
    assert real["confident_fraction"] > damaged["confident_fraction"]
    assert real["min_class_share"] > 0.05


@pytest.mark.slow
def test_a_trained_dcgan_lands_between_the_real_floor_and_the_noise_ceiling(tmp_path):
    """A real (short) DCGAN run on digits: generated features are farther from the
    held-out images than other real images are, but much nearer than noise."""
    config = make_config("dcgan", dataset="digits", epochs=50)         # ~1000 steps
    patch = pytest.MonkeyPatch()
    patch.setitem(gan_training.REFERENCE_EPOCHS, "digits", 5)
    try:
        result = fit_gan(config, tmp_path / "run", progress=False, log=lambda *a: None)
    finally:
        patch.undo()
    quality = result["quality"]
    assert quality["frechet_real_floor"] < quality["frechet_generated"] < quality["frechet_noise_ceiling"]
    assert to_pixels(result["model"].sample(4)).shape == (4, 1, 8, 8)


def test_ctrl_c_while_the_quality_report_is_written_leaves_both_json_files_whole(trained_run, tmp_path,
                                                                               monkeypatch):
    """sample_quality rewrote quality.json and metrics.json in place: a Ctrl-C in the
    middle of a write left a truncated file that no later command could read."""
    monkeypatch.setitem(gan_training.REFERENCE_EPOCHS, "digits", 2)      # the fixture's CNN, reused
    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run, run_dir)
    before = {name: (run_dir / name).read_text() for name in ("quality.json", "metrics.json")}
    interrupt_path_writes(monkeypatch)                                 # half of each write, then Ctrl-C
    train = load_dataset("digits", "train").images
    with pytest.raises(KeyboardInterrupt):
        sample_quality(_StandIn(train), make_config("gan", dataset="digits"), RunDirectory(run_dir),
                       n=1000, log=lambda *a: None)
    monkeypatch.undo()
    for name, text in before.items():
        assert (run_dir / name).read_text() == text, name
    assert not list(run_dir.glob("*.partial"))
    assert RunDirectory(run_dir).read_json("metrics.json")["quality"] == json.loads(before["quality.json"])
