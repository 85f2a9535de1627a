"""minidl.models: the networks students train, and a registry that builds them by name.

    from minidl.models import build_model
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10)

The registry is what `minidl train MODEL` uses. Each `register` line below
names, by explicit import, the model's builder,
`builder(input_shape, num_classes) -> nn.Module`, and its trainer,
`trainer(config, run_dir, resume=..., progress=..., log=..., max_minutes=...)`
(a minidl.training.TrainConfig; every trainer runs its task through the shared
Trainer of minidl.training.loop), and the kind of model:

    kind "classifier": `minidl eval` re-evaluates its checkpoint;
    kind "generator":  a generative model (GPT, GAN); `minidl sample` calls its
                       sampler(run_dir, args) (args: the parsed command line);
    kind "segmenter":  labels every pixel of a scene (U-Net, seg-ViT); `minidl
                       eval` re-scores its checkpoint (minidl.training.segmentation).

Adding a model is one `register` line below (or a `register` call in its own
file). Extra keyword arguments are the model's training defaults.
"""
from dataclasses import dataclass

from .cnn import build as build_cnn
from .gan import build_dcgan, build_mlp_gan
from .gpt import build_character_gpt, build_pixel_gpt
from .lenet import build as build_lenet
from .mlp import build as build_mlp
from .seg_vit import build as build_seg_vit
from .unet import build as build_unet
from .vit import build as build_vit


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: object           # builder(input_shape, num_classes) -> nn.Module
    kind: str = "classifier"  # "classifier", "generator" or "segmenter"
    description: str = ""
    defaults: tuple = ()      # training defaults: (("epochs", 20), ("lr", 1e-3), ...)
    trainer: object = None    # trainer(config, run_dir, resume=, progress=, log=, max_minutes=)
    sampler: object = None    # sampler(run_dir, args), for `minidl sample`


REGISTRY = {}


def register(name, builder, trainer, kind="classifier", description="", sampler=None, **defaults):
    """Make `name` buildable by `build_model` and trainable by `minidl train name`.
    Keyword arguments are its training defaults (epochs, lr, batch_size,
    optimizer, ...), used where the command line does not say otherwise."""
    if kind not in ("classifier", "generator", "segmenter"):
        raise ValueError(f"models.register: kind must be 'classifier', 'generator' or 'segmenter', got {kind!r}")
    if not callable(builder) or not callable(trainer) or (sampler is not None and not callable(sampler)):
        raise TypeError(f"models.register({name!r}): builder, trainer and sampler must be functions")
    REGISTRY[name] = ModelEntry(name, builder, kind, description, tuple(sorted(defaults.items())),
                                trainer, sampler)
    return builder


def available_models(kind=None):
    """Registered model names (of one kind, if given), in registration order."""
    return [n for n, e in REGISTRY.items() if kind is None or e.kind == kind]


def model_entry(name):
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def build_model(name, input_shape, num_classes):
    """A freshly initialised model `name` for inputs of shape (C, H, W) (one
    sample, no batch axis) and `num_classes` outputs."""
    input_shape = tuple(int(s) for s in input_shape)
    return model_entry(name).builder(input_shape, int(num_classes))


# ---- the registry: one line per model ----------------------------------------
# The trainers import minidl.models themselves, so they are imported here, after
# everything they use from this module is defined.
from ..training import classifier, gan as gan_training, gpt as gpt_training  # noqa: E402
from ..training import segmentation  # noqa: E402

register("mlp", build_mlp, classifier.fit, description="Flatten, Linear(in, 128), ReLU, Linear(128, classes)",
         epochs=20, batch_size=32, optimizer="adam", lr=3e-3)
register("cnn", build_cnn, classifier.fit, description="Keras example CNN: conv 32-64-64 3x3, 2 max-pools, dense 64",
         epochs=15, batch_size=32, optimizer="adamw", lr=2e-3, weight_decay=0.05,
         label_smoothing=0.1, scheduler="cosine")   # chosen on a validation split, see cnn.py
register("lenet", build_lenet, classifier.fit, description="LeNet-5: conv 6-16 5x5, 2 max-pools, dense 120-84",
         epochs=15, batch_size=32, optimizer="adam", lr=2e-3)   # digits: ~96.7% (seed 0)
register("vit", build_vit, classifier.fit, description="Vision Transformer: conv patches, class token, 4 pre-norm encoder layers",
         epochs=30, batch_size=64, optimizer="adamw", lr=1e-3)
register("gpt", build_character_gpt, gpt_training.fit_gpt, kind="generator", sampler=gpt_training.sample_from_run,
         description="character GPT on the bundled Shakespeare slice (4 layers, 4 heads, width 64, 64 characters)",
         dataset="shakespeare", epochs=8, batch_size=32, optimizer="adamw", lr=3e-3)
register("pixel-gpt", build_pixel_gpt, gpt_training.fit_gpt, kind="generator", sampler=gpt_training.sample_from_run,
         description="GPT over 4-level digit pixels, started by a class token (4 layers, 4 heads, width 64)",
         dataset="digits", epochs=10, batch_size=32, optimizer="adamw", lr=3e-3)
register("dcgan", build_dcgan, gan_training.fit_gan, kind="generator", sampler=gan_training.sample_from_run,
         description="DCGAN: ConvTranspose2d+BatchNorm generator, Conv2d+LeakyReLU discriminator",
         epochs=300, batch_size=64, optimizer="adam", lr=5e-4)   # digits: 82-86% confident, see docs/results/gan/
register("gan", build_mlp_gan, gan_training.fit_gan, kind="generator", sampler=gan_training.sample_from_run,
         description="the classic fully connected GAN: batch norm in G, dropout in D, label smoothing 0.9, averaged G",
         epochs=150, batch_size=64, optimizer="adam", lr=2e-4)
register("unet", build_unet, segmentation.fit, kind="segmenter",
         description="U-Net: conv blocks 16-32-64, max-pool down, bilinear upsample + skip connections up",
         dataset="digit-scenes", epochs=20, batch_size=32, optimizer="adamw", lr=3e-3, scheduler="cosine")
register("seg-vit", build_seg_vit, segmentation.fit, kind="segmenter",
         description="Transformer segmenter: ViT encoder over 4x4 patches, a per-token class head plus a light conv decoder",
         dataset="digit-scenes", epochs=30, batch_size=32, optimizer="adamw", lr=2e-3, scheduler="cosine",
         augment=True)   # scenes composed afresh every epoch: on fixed scenes it overfits (segmentation.md)
