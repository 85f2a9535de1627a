"""Generative adversarial networks: a generator G draws images from noise z, a
discriminator D tells real images from G's; each learns against the other.

- DCGAN (Radford et al. 2015): G is Linear -> reshape -> [ConvTranspose2d +
  BatchNorm + ReLU] blocks that double the size -> tanh; D is [Conv2d +
  LeakyReLU(0.2)] blocks that halve it -> one logit. Sized for 8x8 and 28x28.
- MLPGAN: the classic fully connected GAN (Goodfellow et al. 2014), with the
  three changes that make it train on digits: batch normalisation between the
  generator's layers, dropout in the discriminator, and one-sided label
  smoothing (D's target for real images is 0.9, see `GAN`).

A GAN may keep a moving average of its generator's weights (`ema_decay`,
Karras et al. 2018, Yazici et al. 2019): G's weights keep oscillating as the
two players chase each other, and their average over the last few hundred
steps draws cleaner samples than any single step's G. `sample` then draws
from the average; training still updates G itself.

Images are in [-1, 1] (tanh's range): scale data with `images * 2 - 1`.
D returns logits (no sigmoid), to pair with `F.binary_cross_entropy_with_logits`.
"""
from dataclasses import dataclass, asdict

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from .. import random as minidl_random


@dataclass
class GANConfig:
    image_size: int = 8          # 8 (digits) or 28 (MNIST, Fashion-MNIST); a multiple of 4
    channels: int = 1
    latent_dim: int = 32
    width: int = 64              # channels of the widest convolution (DCGAN) / hidden units (MLP)

    def to_dict(self):
        return asdict(self)


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def extra_repr(self):
        return f"shape={self.shape}"

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


def _check_size(config):
    if config.image_size % 4 != 0:
        raise ValueError(f"DCGAN: image_size must be a multiple of 4, got {config.image_size}")


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, config):
        super().__init__()
        _check_size(config)
        start = config.image_size // 4                     # two doublings reach the size
        wide, narrow = config.width, config.width // 2
        self.config = config
        self.net = nn.Sequential(
            nn.Linear(config.latent_dim, wide * start * start, bias=False),
            Reshape(wide, start, start),                                   # (N, wide, S/4, S/4)
            nn.BatchNorm2d(wide), nn.ReLU(),
            nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False),  # (N, narrow, S/2, S/2)
            nn.BatchNorm2d(narrow), nn.ReLU(),
            nn.ConvTranspose2d(narrow, config.channels, 4, stride=2, padding=1),  # (N, C, S, S)
            nn.Tanh())

    def forward(self, z):
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """images (N, C, S, S) -> logits (N, 1): high for real."""

    def __init__(self, config):
        super().__init__()
        _check_size(config)
        narrow, wide = config.width // 2, config.width
        end = config.image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(config.channels, narrow, 4, stride=2, padding=1),    # (N, narrow, S/2, S/2)
            nn.LeakyReLU(0.2),
            nn.Conv2d(narrow, wide, 4, stride=2, padding=1),               # (N, wide, S/4, S/4)
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(wide * end * end, 1))                                 # (N, 1)

    def forward(self, images):
        return self.net(images)


class MLPGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, C, S, S) in [-1, 1], through two hidden
    layers (2 * width and 4 * width units), each Linear -> BatchNorm1d -> LeakyReLU.

    Without the batch norm (and without D's dropout and label smoothing) the
    dense GAN drew a few blurred shapes and left some digits out; tutorial 07
    trains and measures both versions. Normalising each hidden unit over the
    batch keeps the units spread out and the gradients from D well scaled, as
    in DCGAN's generator."""

    def __init__(self, config):
        super().__init__()
        size, hidden = config.image_size, (2 * config.width, 4 * config.width)
        self.net = nn.Sequential(
            nn.Linear(config.latent_dim, hidden[0]), nn.BatchNorm1d(hidden[0]), nn.LeakyReLU(0.2),  # (N, 2w)
            nn.Linear(hidden[0], hidden[1]), nn.BatchNorm1d(hidden[1]), nn.LeakyReLU(0.2),          # (N, 4w)
            nn.Linear(hidden[1], config.channels * size * size), nn.Tanh(),                         # (N, C*S*S)
            Reshape(config.channels, size, size))                                                   # (N, C, S, S)

    def forward(self, z):
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """images (N, C, S, S) -> logits (N, 1), through two hidden layers (4 * width
    and 2 * width units), each Linear -> LeakyReLU(0.2) -> Dropout(dropout).

    Dropout keeps D from memorising the 1347 training digits: a D that wins
    outright gives G no useful gradient (its D(G(z)) goes to 0)."""

    def __init__(self, config, dropout=0.3):
        super().__init__()
        size, hidden = config.image_size, (4 * config.width, 2 * config.width)
        self.net = nn.Sequential(
            nn.Flatten(),                                                                    # (N, C*S*S)
            nn.Linear(config.channels * size * size, hidden[0]), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]), nn.LeakyReLU(0.2), nn.Dropout(dropout),        # (N, 2w)
            nn.Linear(hidden[1], 1))                                                         # (N, 1)

    def forward(self, images):
        return self.net(images)


class GAN(nn.Module):
    """The two players together, so one state_dict holds both.

    `real_label` is the target D is trained towards on real images. The dense
    GAN uses 0.9 ("one-sided label smoothing", Salimans et al. 2016): D is never
    pushed to total certainty about real images, so its logits stay moderate
    and G keeps a useful gradient. Generated images keep the target 0."""

    def __init__(self, config, kind="dcgan", real_label=None, ema_decay=None):
        super().__init__()
        if kind not in ("dcgan", "mlp"):
            raise ValueError(f"GAN: kind must be 'dcgan' or 'mlp', got {kind!r}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"GAN: ema_decay must be in (0, 1), got {ema_decay!r}")
        self.config, self.kind, self.ema_decay = config, kind, ema_decay
        self.real_label = (0.9 if kind == "mlp" else 1.0) if real_label is None else float(real_label)
        make_generator = DCGANGenerator if kind == "dcgan" else MLPGenerator
        self.generator = make_generator(config)
        self.discriminator = (DCGANDiscriminator if kind == "dcgan" else MLPDiscriminator)(config)
        self.generator_average = None
        if ema_decay is not None:
            self.generator_average = make_generator(config)           # starts as a copy of G
            self.generator_average.load_state_dict(self.generator.state_dict())
            self.register_buffer("average_updates", np.zeros((), np.int64))

    def update_average(self):
        """After a generator step: average <- d * average + (1 - d) * G, for every
        parameter and floating buffer (batch-norm statistics). d is ema_decay,
        lowered early on to (1 + t) / (10 + t) at update t, so that the random
        initial weights are forgotten quickly rather than kept at weight d^t."""
        if self.generator_average is None:
            raise ValueError("GAN.update_average: this GAN keeps no average (ema_decay=None)")
        self.average_updates.data += 1
        t = int(self.average_updates.data)
        decay = min(self.ema_decay, (1.0 + t) / (10.0 + t))
        current = dict(self.generator._state_targets())
        for name, average in self.generator_average._state_targets().items():
            value = current[name].data
            if average.data.dtype.kind == "f":
                average.data *= decay
                average.data += (1.0 - decay) * value
            else:
                average.data[...] = value                              # counters: copied

    def noise(self, n, rng=None):
        """n latent vectors z ~ N(0, I), float32: (n, latent_dim)."""
        rng = rng or minidl_random.generator()
        return rng.standard_normal((n, self.config.latent_dim)).astype(np.float32)

    def sample(self, n=None, z=None, rng=None):
        """Images in [-1, 1] from G in eval mode (from G's moving average when the
        GAN keeps one): (n, C, S, S) ndarray."""
        z = self.noise(n, rng) if z is None else np.asarray(z, dtype=np.float32)
        generator = self.generator if self.generator_average is None else self.generator_average
        was_training = generator.training
        generator.eval()
        with no_grad():
            images = generator(Tensor(z)).data
        generator.train(was_training)
        return images

    def interpolate(self, z0, z1, steps=10):
        """Images along the straight line from z0 to z1: (steps, C, S, S)."""
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]       # (steps, 1)
        return self.sample(z=(1 - t) * np.asarray(z0)[None] + t * np.asarray(z1)[None])


# ---- the registry's two GANs ---------------------------------------------------------
def gan_config(input_shape, width=64):
    """A GANConfig for images of shape (C, S, S): latent 32 for 8x8 images, else 64."""
    channels, size, _ = input_shape
    return GANConfig(image_size=size, channels=channels, latent_dim=32 if size <= 16 else 64, width=width)


def build_dcgan(input_shape, num_classes=None):
    """"dcgan": convolutional G and D for images of shape (C, S, S); samples are
    drawn from the moving average of G's weights, ema_decay 0.999. Until update
    8990 the ramp (1 + t) / (10 + t) is the smaller of the two, so in the
    registry's 300 epochs of digits (6300 updates) the average covers roughly
    the last t / 9 updates: about the last 33 epochs at the end of the run."""
    return GAN(gan_config(input_shape), kind="dcgan", ema_decay=0.999)


def build_mlp_gan(input_shape, num_classes=None):
    """"gan": the classic fully connected G and D for images of shape (C, S, S);
    samples are drawn from the moving average of G's weights, ema_decay 0.999,
    as for "dcgan". In the registry's 150 epochs of digits (3150 updates) the
    average covers roughly the last 350 updates, about the last 17 epochs.
    Without it, how close the samples come to real digits depends on where
    the last epoch's oscillation of the game happens to stop, and moves with
    float rounding from one processor to another."""
    return GAN(gan_config(input_shape), kind="mlp", ema_decay=0.999)
