"""Benchmark suite: one DCGAN training step (a discriminator step and a
generator step, each with Adam) in minidl and in the same model written in
PyTorch, same shapes, same weights.

    python -m minidl.bench.gan_step            # the registry's 8x8 and 28x28 DCGANs
    python -m minidl.bench.gan_step --quick    # a tiny shape (smoke test)

The PyTorch twin mirrors minidl.models.gan layer for layer and starts from
minidl's initial weights (copied), so the first step's losses agree:
`check_same_step` checks it (before a table is made, and in the tests), so
the two sides are known to do the same work.
Each library runs at its defaults, in its own fresh process (the harness
builds a step only in the process that times it): PyTorch with its own
thread count (one per core), minidl with the thread policy `minidl train`
uses (minidl/threads.py). The table prints each process's thread counts.
Ratios are against torch (above 1: minidl is slower).

The "work" is the nominal multiply-add flops of the step: per player pass
2 * (MACs of the convolutions and linear layers), forward once per use and
backward twice (input and weight gradients).
"""
import sys

import numpy as np

from .harness import BuiltOnFirstCall, Case, has_torch, step_suite_main
from ..threads import set_training_threads
from .. import random as minidl_random
from ..models.gan import GAN, GANConfig
from ..training.gan import OptimizerPair, train_step

# (label, batch, image size, latent, width): the registry's digit and 28x28 models
STANDARD = [("B64 8x8 z32 w64 (digits)", 64, 8, 32, 64),
            ("B64 28x28 z64 w64 (fashion-mnist)", 64, 28, 64, 64)]
QUICK = [("B8 8x8 z8 w16", 8, 8, 8, 16)]


def macs(model):
    """Multiply-adds of one forward pass of each player for one sample: (G, D)."""
    from .. import nn

    def count(module, size_in):
        total, size = 0, size_in
        for layer in module.net:
            if isinstance(layer, nn.Linear):
                total += layer.weight.shape[0] * layer.weight.shape[1]
            elif isinstance(layer, nn.ConvTranspose2d):
                c_in, c_out, k, _ = layer.weight.shape
                total += c_in * c_out * k * k * size * size     # every input pixel scatters k*k
                size *= 2
            elif isinstance(layer, nn.Conv2d):
                c_out, c_in, k, _ = layer.weight.shape
                size //= 2
                total += c_in * c_out * k * k * size * size     # every output pixel gathers k*k
        return total

    s = model.config.image_size
    return count(model.generator, s // 4), count(model.discriminator, s)


def step_flops(model, batch):
    """D step: D on real and fake (fwd + bwd), G forward; G step: D fwd + input-grad
    bwd, G bwd. Backward of a layer ~ 2x its forward."""
    g, d = macs(model)
    d_step = 2 * (3 * d) + g                  # two D passes, each fwd + 2x bwd; G fwd
    g_step = (d + 2 * d) + 2 * g              # D fwd + bwd, G bwd
    return 2.0 * batch * (d_step + g_step)


def minidl_setup(batch, size, latent, width, seed=0):
    minidl_random.manual_seed(seed)
    model = GAN(GANConfig(image_size=size, latent_dim=latent, width=width))
    optimizers = OptimizerPair(model, 2e-4)
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1, 1, (batch, 1, size, size)).astype(np.float32)   # (B, 1, S, S)
    z = rng.standard_normal((batch, latent)).astype(np.float32)            # (B, latent)
    return model, optimizers, real, z


def torch_twin(model):
    """The same two networks in PyTorch, with `model`'s current weights."""
    import torch
    from torch import nn

    config = model.config
    start, wide, narrow = config.image_size // 4, config.width, config.width // 2
    generator = nn.Sequential(
        nn.Linear(config.latent_dim, wide * start * start, bias=False),
        nn.Unflatten(1, (wide, start, start)),
        nn.BatchNorm2d(wide), nn.ReLU(),
        nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(narrow), nn.ReLU(),
        nn.ConvTranspose2d(narrow, config.channels, 4, stride=2, padding=1), nn.Tanh())
    discriminator = nn.Sequential(
        nn.Conv2d(config.channels, narrow, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(narrow, wide, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(wide * start * start, 1))
    for ours, theirs in ((model.generator, generator), (model.discriminator, discriminator)):
        state = {k[len("net."):]: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
        theirs.load_state_dict(state, strict=False)
    return generator, discriminator


def torch_setup(model, real, z):
    import torch
    import torch.nn.functional as TF

    generator, discriminator = torch_twin(model)
    adam_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    adam_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = torch.from_numpy(real), torch.from_numpy(z)

    def step():
        fake = generator(z)
        d_real, d_fake = discriminator(real), discriminator(fake.detach())
        loss_d = (TF.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + TF.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        adam_d.zero_grad()
        loss_d.backward()
        adam_d.step()
        d_gen = discriminator(fake)
        loss_g = TF.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        adam_g.zero_grad()
        loss_g.backward()
        adam_g.step()
        return dict(d_loss=loss_d.item(), g_loss=loss_g.item())
    return step


def minidl_as_trained(batch, size, latent, width):
    """minidl's step with the threads `minidl train` uses, set for this process."""
    set_training_threads()
    model, optimizers, real, z = minidl_setup(batch, size, latent, width)
    return lambda: train_step(model, optimizers, real, z)


def torch_as_default(batch, size, latent, width):
    """torch's step at its defaults, from minidl's initial weights."""
    model, _, real, z = minidl_setup(batch, size, latent, width)     # builds weights only; runs no kernel
    return torch_setup(model, real, z)


def check_same_step(quick=False):
    """The first step's losses of minidl and the torch twin agree (same weights,
    same data): the two sides do the same work. Needs torch."""
    for label, batch, size, latent, width in (QUICK if quick else STANDARD):
        model, optimizers, real, z = minidl_setup(batch, size, latent, width)
        ours, theirs = train_step(model, optimizers, real, z), torch_as_default(batch, size, latent, width)()
        for key in ("d_loss", "g_loss"):
            if not np.isclose(ours[key], theirs[key], rtol=1e-3, atol=1e-4):
                raise AssertionError(f"gan_step {label}: {key} minidl {ours[key]} vs torch {theirs[key]}")


def cases(quick=False):
    for label, batch, size, latent, width in (QUICK if quick else STANDARD):
        shape = (batch, size, latent, width)
        implementations = {"minidl": BuiltOnFirstCall(lambda s=shape: minidl_as_trained(*s), ("numba", "blas"))}
        if has_torch():
            implementations["torch"] = BuiltOnFirstCall(lambda s=shape: torch_as_default(*s), ("torch",))
        model = GAN(GANConfig(image_size=size, latent_dim=latent, width=width))
        yield Case("dcgan train step", label, implementations, work=step_flops(model, batch),
                   baseline="torch" if "torch" in implementations else "")


def main(argv):
    step_suite_main("gan_step", check_same_step, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
