"""Training a GAN: the loop behind `minidl train dcgan|gan` and `minidl sample`.

For every mini-batch of real images x (scaled to [-1, 1]) and noise z:

    discriminator step:  loss_D = bce(D(x), 1) + bce(D(G(z)), 0)    G(z) detached
    generator step:      loss_G = bce(D(G(z)), 1)                   non-saturating loss

both with Adam(betas=(0.5, 0.999)), bce = binary_cross_entropy_with_logits. The
DCGAN paper's lr is 2e-4; the registry's "dcgan" uses 5e-4, which on the 8x8
digits reached the quality targets in about half the steps (docs/results/gan/).
D(x) and D(G(z)) (as probabilities) are tracked: near 0.5 both when the game
is balanced; D(G(z)) near 0 means D wins outright and G gets little signal.

Each epoch writes samples_epoch_NNN.png (the same fixed noise every epoch, so
the grids show progress), and at the end the run directory gets curves, an
interpolation strip and the sample-quality report of `minidl.metrics`,
measured with a CNN trained on the same dataset (classifier/ in the run dir).
"""
import json
import time

import numpy as np
from tqdm.auto import tqdm

import minidl as mdl
from .. import functional as F
from .. import optim, viz
from ..autograd.tensor import Tensor
from ..data import DataLoader, load_dataset
from ..metrics import classifier_outputs, classifier_report, frechet_distance
from ..models.gan import GAN, GANConfig
from .classifier import TrainingInterrupted
from .config import TrainConfig, epoch_seed, make_config
from .run_directory import RunDirectory

KINDS = {"dcgan": "dcgan", "gan": "mlp"}


def build_gan(input_shape, num_classes, kind="dcgan"):
    """The registry's builder: a GAN for images of shape (C, S, S)."""
    channels, size, _ = input_shape
    width = 64
    latent = 32 if size <= 16 else 64
    return GAN(GANConfig(image_size=size, channels=channels, latent_dim=latent, width=width),
               kind=kind)


def build_mlp_gan(input_shape, num_classes):
    return build_gan(input_shape, num_classes, kind="mlp")


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


def train_step(model, optimizers, real, z):
    """One discriminator step and one generator step; returns the batch's figures."""
    fake = model.generator(Tensor(z))                                  # (B, C, S, S)
    d_real = model.discriminator(Tensor(real))                         # (B, 1)
    d_fake = model.discriminator(fake.detach())                        # (B, 1)
    loss_d = _bce(d_real, 1.0) + _bce(d_fake, 0.0)
    optimizers.discriminator.zero_grad()
    loss_d.backward()
    optimizers.discriminator.step()

    loss_g = _bce(model.discriminator(fake), 1.0)                      # non-saturating
    optimizers.generator.zero_grad()
    loss_g.backward()
    optimizers.generator.step()
    return dict(d_loss=loss_d.item(), g_loss=loss_g.item(),
                d_real=_probability(d_real), d_fake=_probability(d_fake))


def fixed_noise(model, seed, n=64):
    return model.noise(n, np.random.default_rng([int(seed), 2024]))


def to_pixels(images):
    """[-1, 1] -> [0, 1]."""
    return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)


def fit_gan(config, run_dir, resume=False, progress=True, log=print, quality=True, max_seconds=None):
    """Train the GAN of `config` (model "dcgan" or "gan") in `run_dir`.

    max_seconds: a training-time budget; when it runs out the current epoch
    stops after its batch (its record says how many steps it ran and
    "stopped_by_budget": true), is checkpointed, and training ends."""
    run = RunDirectory(run_dir).create()
    train_set = load_dataset(config.dataset, "train", root=config.data_root)
    mdl.manual_seed(config.seed)
    model = build_gan(train_set.images.shape[1:], len(train_set.classes), KINDS[config.model])
    optimizers = OptimizerPair(model, config.lr)
    done, history = 0, []
    if resume:
        done, history = run.resume(model, optimizers)
    run.save_config(config.to_dict())
    noise = fixed_noise(model, config.seed)

    budget_start = time.perf_counter()
    epoch = done
    try:
        for epoch in range(done + 1, config.epochs + 1):
            seed = epoch_seed(config.seed, epoch)
            mdl.manual_seed(seed)
            loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, drop_last=True,
                                seed=seed)
            model.train()
            sums, start = dict(d_loss=0.0, g_loss=0.0, d_real=0.0, d_fake=0.0), time.perf_counter()
            steps, out_of_time = 0, False
            with tqdm(total=len(loader), desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                      disable=not progress, dynamic_ncols=True) as bar:
                for images, _ in loader:
                    real = images.data * 2.0 - 1.0                           # (B, C, S, S) in [-1, 1]
                    step = train_step(model, optimizers, real, model.noise(len(real)))
                    steps += 1
                    for key in sums:
                        sums[key] += step[key]
                    rate = steps * config.batch_size / (time.perf_counter() - start + 1e-9)
                    bar.set_postfix(D=f"{step['d_loss']:.3f}", G=f"{step['g_loss']:.3f}",
                                    Dx=f"{step['d_real']:.2f}", DGz=f"{step['d_fake']:.2f}",
                                    samples_per_s=f"{rate:,.0f}", refresh=False)
                    bar.update(1)
                    if max_seconds is not None and time.perf_counter() - budget_start > max_seconds:
                        out_of_time = True
                        break
            seconds = time.perf_counter() - start
            record = {k: v / steps for k, v in sums.items()}
            record.update(epoch=epoch, steps=steps, seconds=seconds,
                          samples_per_s=steps * config.batch_size / seconds)
            if out_of_time:
                record["stopped_by_budget"] = True
            history.append(record)
            viz.plot_samples(to_pixels(model.sample(z=noise)), run.file(f"samples_epoch_{epoch:03d}.png"),
                                title=f"{config.model} on {config.dataset}, epoch {epoch}")
            run.save_checkpoint(model, optimizers, epoch, config.to_dict())
            run.save_metrics(history)
            log(f"{config.model} | {config.dataset} | epoch {epoch}/{config.epochs} | "
                f"D loss {record['d_loss']:.3f} G loss {record['g_loss']:.3f} | "
                f"D(x) {record['d_real']:.2f} D(G(z)) {record['d_fake']:.2f} | {seconds:.1f} s"
                + (f" | time budget reached after {steps} of {len(loader)} steps" if out_of_time else ""))
            if out_of_time:
                break
    except KeyboardInterrupt:
        finished = run.load_checkpoint()["epoch"] if run.has_checkpoint() else 0
        log(f"\ninterrupted during epoch {epoch}: {run.path} keeps the checkpoint of epoch {finished}.")
        if finished:
            log(f"continue with:  minidl train {config.model} --resume {run.path}")
        raise TrainingInterrupted(run.path, finished) from None

    plot_gan_curves(history, run.file("gan_curves.png"))
    z0, z1 = noise[0], noise[1]
    viz.plot_samples(to_pixels(model.interpolate(z0, z1, steps=10)), run.file("interpolation.png"),
                        ncols=10, title="from one latent point to another")
    report = None
    if quality:
        report = sample_quality(model, config, run, log=log)
    return dict(history=history, model=model, run_dir=run.path, quality=report)


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


# Epochs of the reference CNN where `minidl train cnn`'s default would take too long
# for a metric (60,000 images; one epoch is enough for useful features).
REFERENCE_EPOCHS = {"mnist": 1, "fashion-mnist": 1}


def reference_classifier(config, run, log=print):
    """A CNN trained on the same dataset (kept in run/classifier), for the metrics:
    `minidl train cnn`'s defaults, with REFERENCE_EPOCHS for the large datasets."""
    from .classifier import fit as fit_classifier, new_model, load_data

    folder = run.file("classifier")
    cnn_config = make_config("cnn", dataset=config.dataset, seed=config.seed,
                             data_root=config.data_root, epochs=REFERENCE_EPOCHS.get(config.dataset))
    sub = RunDirectory(folder)
    if sub.has_checkpoint() and sub.load_checkpoint()["epoch"] >= cnn_config.epochs:
        train_set, _ = load_data(cnn_config)
        model = new_model(cnn_config, train_set)
        model.load_state_dict(sub.load_checkpoint()["model"])
        return model, cnn_config
    log("training the reference CNN for the sample-quality metrics ...")
    return fit_classifier(cnn_config, folder, progress=False, log=log)["model"], cnn_config


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
    (run.path / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    metrics = json.loads(run.file("metrics.json").read_text())
    metrics["quality"] = report
    run.file("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
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
    model = build_gan(shape, 10, KINDS[config.model])
    model.load_state_dict(checkpoint["model"])
    images = to_pixels(model.sample(args.num, rng=np.random.default_rng(args.seed)))
    path = args.out or run.file("sample.png")
    viz.plot_samples(images, path, title=f"{config.model}, epoch {checkpoint['epoch']}")
    print(f"wrote {path}")
    return 0
