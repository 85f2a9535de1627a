"""Training a GAN: `minidl train dcgan|gan` (GANTask, run by the shared Trainer
of minidl.training.loop) and `minidl sample`.

For every mini-batch of real images x (scaled to [-1, 1]) and noise z:

    discriminator step:  loss_D = bce(D(x), r) + bce(D(G(z)), 0)    G(z) detached
    generator step:      loss_G = bce(D(G(z)), 1)                   non-saturating loss

both with Adam(betas=(0.5, 0.999)), bce = binary_cross_entropy_with_logits,
r = model.real_label (1, or 0.9 for the dense GAN: label smoothing). The
DCGAN paper's lr is 2e-4; the registry's "dcgan" uses 5e-4 for 300 epochs and
draws its samples from a moving average of G's weights (`GAN.update_average`,
called after every step): on the 8x8 digits that raised the share of samples
the reference CNN classifies confidently from 79% to 82-86% (the two figures
are the same seed on two floating-point code paths; docs/results/gan/dcgan_recipe.md).
D(x) and D(G(z)) (as probabilities) are tracked: near 0.5 both when the game
is balanced; D(G(z)) near 0 means D wins outright and G gets little signal.

Each epoch writes samples_epoch_NNN.png (the same fixed noise every epoch, so
the grids show progress), and at the end the run directory gets curves, an
interpolation strip and the sample-quality report of `minidl.metrics`,
measured with a CNN trained on the same dataset (classifier/ in the run dir).
"""

import numpy as np

import minidl as mdl
from .. import functional as F
from .. import optim, viz
from ..autograd.tensor import Tensor
from ..data import DataLoader, load_dataset
from ..metrics import classifier_outputs, classifier_report, frechet_distance
from ..threads import training_threads
from .config import TrainConfig
from .loop import Task, Trainer
from .run_directory import RunDirectory


def build_gan(config, input_shape):
    """The untrained GAN of a run: the registry's builder for config.model."""
    from ..models import build_model

    return build_model(config.model, input_shape, 10)


class OptimizerPair:
    """The two players' optimizers, checkpointed as one state."""

    def __init__(self, model, lr):
        self.generator = optim.Adam(model.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        self.discriminator = optim.Adam(model.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))

    def state_dict(self):
        return {"generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict()}

    def load_state_dict(self, state):
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])


def _bce(logits, value):
    return F.binary_cross_entropy_with_logits(logits, np.full(logits.shape, value, np.float32))


def _probability(logits):
    return float(np.mean(1.0 / (1.0 + np.exp(-np.clip(logits.data, -60, 60)))))


def train_step(model, optimizers, real, z, update=None):
    """One discriminator step and one generator step; returns the batch's figures.
    `update(optimizer)` replaces optimizer.step() (the Trainer clips there)."""
    with training_threads():               # one thread pool at a time (minidl/threads.py)
        return _game_step(model, optimizers, real, z, update or (lambda optimizer: optimizer.step()))


def _game_step(model, optimizers, real, z, update):
    fake = model.generator(Tensor(z))                                  # (B, C, S, S)
    d_real = model.discriminator(Tensor(real))                         # (B, 1)
    d_fake = model.discriminator(fake.detach())                        # (B, 1)
    loss_d = _bce(d_real, model.real_label) + _bce(d_fake, 0.0)         # real_label < 1: label smoothing
    optimizers.discriminator.zero_grad()
    loss_d.backward()
    update(optimizers.discriminator)

    loss_g = _bce(model.discriminator(fake), 1.0)                      # non-saturating
    optimizers.generator.zero_grad()
    loss_g.backward()
    update(optimizers.generator)
    return dict(d_loss=loss_d.item(), g_loss=loss_g.item(),
                d_real=_probability(d_real), d_fake=_probability(d_fake))


def fixed_noise(model, seed, n=64):
    return model.noise(n, np.random.default_rng([int(seed), 2024]))


def to_pixels(images):
    """[-1, 1] -> [0, 1]."""
    return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)


class GANTask(Task):
    """The adversarial game for the Trainer. There is no held-out metric per
    epoch (so no best.npz): the sample-quality report is measured once, at the end."""

    losses = ("d_loss", "g_loss")

    def __init__(self, config, quality=True, log=print):
        self.config, self.quality, self.log = config, quality, log
        self.train_set = load_dataset(config.dataset, "train", root=config.data_root)
        mdl.manual_seed(config.seed)
        self.model = build_gan(config, self.train_set.images.shape[1:])
        self.optimizer = OptimizerPair(self.model, config.lr)
        self.noise = fixed_noise(self.model, config.seed)

    @property
    def optimizers(self):
        return [self.optimizer.generator, self.optimizer.discriminator]

    def batches(self, epoch, seed):
        return DataLoader(self.train_set, batch_size=self.config.batch_size, shuffle=True, drop_last=True,
                          seed=seed)

    def train_step(self, batch):
        images, _ = batch
        real = images.data * 2.0 - 1.0                                  # (B, C, S, S) in [-1, 1]
        figures = train_step(self.model, self.optimizer, real, self.model.noise(len(real)), self.update)
        if self.model.generator_average is not None:
            self.model.update_average()
        return dict(figures, size=len(real))

    def after_epoch(self, run, record, history):
        viz.plot_samples(to_pixels(self.model.sample(z=self.noise)),
                         run.file(f"samples_epoch_{record['epoch']:03d}.png"),
                         title=f"{self.config.model} on {self.config.dataset}, epoch {record['epoch']}")

    def summary(self, record):
        return (f"{self.config.model} | {self.config.dataset} | epoch {record['epoch']}/{self.config.epochs} | "
                f"D loss {record['d_loss']:.3f} G loss {record['g_loss']:.3f} | "
                f"D(x) {record['d_real']:.2f} D(G(z)) {record['d_fake']:.2f} | {record['seconds']:.1f} s")

    def finish(self, run, history):
        plot_gan_curves(history, run.file("gan_curves.png"))
        z0, z1 = self.noise[0], self.noise[1]
        viz.plot_samples(to_pixels(self.model.interpolate(z0, z1, steps=10)), run.file("interpolation.png"),
                         ncols=10, title="from one latent point to another")
        report = sample_quality(self.model, self.config, run, log=self.log) if self.quality else None
        return dict(quality=report)


def fit_gan(config, run_dir, resume=False, progress=True, log=print, quality=True, max_minutes=None):
    """Train the GAN of `config` (model "dcgan" or "gan") in `run_dir` with the
    shared Trainer; `quality=False` skips the final sample-quality report."""
    task = GANTask(config, quality, log)
    return Trainer(task, config, run_dir, resume=resume, progress=progress, log=log,
                   max_minutes=max_minutes).run()


def plot_gan_curves(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(epochs, [r["d_loss"] for r in history], label="discriminator")
    left.plot(epochs, [r["g_loss"] for r in history], label="generator")
    left.set_xlabel("epoch"), left.set_ylabel("mean loss"), left.legend()
    right.plot(epochs, [r["d_real"] for r in history], label="D(x), real")
    right.plot(epochs, [r["d_fake"] for r in history], label="D(G(z)), generated")
    right.axhline(0.5, color="gray", lw=0.8, ls="--")
    right.set_xlabel("epoch"), right.set_ylabel("mean probability 'real'"), right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# Epochs of the reference CNN where the recipe's 15 would take too long for a
# metric (60,000 images; one epoch is enough for useful features).
REFERENCE_EPOCHS = {"mnist": 1, "fashion-mnist": 1}
# The reference CNN's own recipe, fixed so that GAN figures stay comparable when
# `minidl train cnn`'s defaults change. No label smoothing: smoothing by e caps
# the probability the CNN gives any class near 1 - e + e / 10, which would make
# "confidence >= 0.9" a statement about the smoothing, not about the samples.
REFERENCE_RECIPE = dict(model="cnn", kind="classifier", epochs=15, batch_size=32, optimizer="adamw",
                        lr=2e-3, weight_decay=0.05, label_smoothing=0.0, scheduler=None, augment=False)


def reference_classifier(config, run, log=print):
    """A CNN trained on the same dataset (kept in run/classifier), for the metrics:
    REFERENCE_RECIPE, with REFERENCE_EPOCHS for the large datasets."""
    from .classifier import fit as fit_classifier, new_model, load_data

    folder = run.file("classifier")
    recipe = dict(REFERENCE_RECIPE, epochs=REFERENCE_EPOCHS.get(config.dataset, REFERENCE_RECIPE["epochs"]))
    cnn_config = TrainConfig(dataset=config.dataset, seed=config.seed, data_root=config.data_root, **recipe)
    sub = RunDirectory(folder)
    if sub.has_checkpoint() and sub.load_checkpoint()["epoch"] >= cnn_config.epochs:
        train_set, _ = load_data(cnn_config)
        model = new_model(cnn_config, train_set)
        model.load_state_dict(sub.load_checkpoint()["model"])
        return model, cnn_config
    resume = sub.has_checkpoint()              # trained for fewer epochs: continue it
    log(f"{'continuing' if resume else 'training'} the reference CNN for the sample-quality metrics ...")
    return fit_classifier(cnn_config, folder, resume=resume, progress=False, log=log)["model"], cnn_config


def classifier_accuracy(run):
    """The reference CNN's test accuracy (how far to trust its verdicts), as its
    run recorded it for its last epoch."""
    records = RunDirectory(run.file("classifier")).load_metrics()
    return records[-1]["test_acc"] if records else None


def sample_quality(model, config, run, n=1000, log=print):
    """Frechet distances (generated, real-vs-real floor, noise ceiling) on the CNN's
    penultimate features, and the CNN's confidence and class coverage on samples."""
    from .classifier import prepare_batch

    classifier, cnn_config = reference_classifier(config, run, log)
    test = load_dataset(config.dataset, "test", root=config.data_root).images
    train = load_dataset(config.dataset, "train", root=config.data_root).images
    rng = np.random.default_rng([int(config.seed), 7])
    generated = to_pixels(model.sample(z=model.noise(n, rng)))              # (n, C, S, S)
    # Every Frechet distance compares sets of the same size m (its estimate depends on m):
    # held-out real images against generated ones, other real images (floor), uniform noise (ceiling).
    m = min(n, len(test), len(train))
    held_out = test[rng.permutation(len(test))[:m]]
    other_real = train[rng.permutation(len(train))[:m]]
    noise = rng.uniform(0.0, 1.0, size=held_out.shape).astype(np.float32)

    def outputs(images):
        return classifier_outputs(classifier, prepare_batch(images, config.dataset).data)

    real_features, real_probabilities = outputs(held_out)
    generated_features, generated_probabilities = outputs(generated)
    real_report = classifier_report(real_probabilities, confidence=0.9)
    report = dict(
        frechet_generated=frechet_distance(real_features, generated_features[:m]),
        frechet_real_floor=frechet_distance(real_features, outputs(other_real)[0]),
        frechet_noise_ceiling=frechet_distance(real_features, outputs(noise)[0]),
        samples=n, frechet_samples=m, classifier_test_acc=classifier_accuracy(run),
        real_confident_fraction=real_report["confident_fraction"],              # the same CNN on real images
        **classifier_report(generated_probabilities, confidence=0.9))
    run.write_json("quality.json", report)             # each file whole or not at all (Ctrl-C, full disk)
    metrics = run.read_json("metrics.json")
    metrics["quality"] = report
    run.write_json("metrics.json", metrics)
    viz.plot_samples(generated[:100], run.file("samples_final.png"), ncols=10,
                        title=f"{config.model}: 100 of the {n} measured samples")
    log(f"sample quality ({n} samples, Frechet on {m}): Frechet distance {report['frechet_generated']:.2f} "
        f"(real vs real {report['frechet_real_floor']:.2f}, noise {report['frechet_noise_ceiling']:.2f}); "
        f"{report['confident_fraction']:.1%} classified with confidence >= 0.9 "
        f"(real images: {report['real_confident_fraction']:.1%}); "
        f"smallest class share {report['min_class_share']:.1%} (reference CNN: "
        f"{report['classifier_test_acc'] or float('nan'):.1%} test accuracy)")
    return report


def sample_from_run(run_dir, args):
    """`minidl sample RUN_DIR`: a grid of args.num samples (and nothing else)."""
    run = RunDirectory(run_dir)
    config = TrainConfig.from_dict(run.load_config())
    checkpoint = run.load_checkpoint()
    shape = load_dataset(config.dataset, "test", root=config.data_root).images.shape[1:]
    model = build_gan(config, shape)
    model.load_state_dict(checkpoint["model"])
    images = to_pixels(model.sample(args.num, rng=np.random.default_rng(args.seed)))
    path = args.out or run.file("sample.png")
    viz.plot_samples(images, path, title=f"{config.model}, epoch {checkpoint['epoch']}")
    print(f"wrote {path}")
    return 0
