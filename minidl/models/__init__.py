"""minidl.models: the networks students train, and a registry that builds them by name.

    from minidl.models import build_model
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10)

The registry is what `minidl train MODEL` uses. Each entry names a builder,
`builder(input_shape, num_classes) -> nn.Module`, given as "module:function"
so that a model file is imported only when it is asked for, and the kind of
model, which tells the CLI how to train it and what `minidl sample` does:

    kind "classifier": trained by minidl.training.classifier:fit on image
                       datasets, unless the entry names another `trainer`;
    kind "generator":  a generative model (GPT, GAN) with its own loop. Its
                       trainer is called as
                       trainer(config, run_dir, resume=..., progress=..., log=...)
                       with a minidl.training.TrainConfig (like classifier.fit),
                       and its sampler by `minidl sample` as sampler(run_dir, args)
                       (args: the parsed command line). By default they are
                       `fit_<file>` and `sample_from_run` in the builder's module
                       (minidl.training.gpt:fit_gpt, ...); trainer="module:function"
                       and sampler="module:function" name others.

Adding a model is one `register` line below (or a `register` call in its own
file). Extra keyword arguments are the model's training defaults.
"""
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: object           # "package.module:function", or the callable itself
    kind: str = "classifier"  # "classifier" or "generator"
    description: str = ""
    defaults: tuple = ()      # training defaults: (("epochs", 20), ("lr", 1e-3), ...)
    trainer: object = None    # "module:function" or callable; None: classifier.fit
    sampler: object = None    # "module:function" or callable, for `minidl sample`

    def resolve(self, what="builder"):
        """The callable named by this entry's `builder`, `trainer` or `sampler`."""
        target = getattr(self, what)
        if target is None and what == "trainer" and self.kind == "classifier":
            target = "minidl.training.classifier:fit"
        elif target is None and what in ("trainer", "sampler") and isinstance(self.builder, str):
            module = self.builder.partition(":")[0]
            function = f"fit_{module.rsplit('.', 1)[-1]}" if what == "trainer" else "sample_from_run"
            if hasattr(importlib.import_module(module), function):
                target = f"{module}:{function}"
        if target is None:
            raise ValueError(f"model {self.name!r} ({self.kind}) has no {what} registered; add "
                             f"{what}=\"module:function\" to its register(...) line in minidl/models/__init__.py")
        return resolve_target(target)


def resolve_target(target):
    """A callable, or the function named by "package.module:function"."""
    if callable(target):
        return target
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


REGISTRY = {}


def register(name, builder, kind="classifier", description="", trainer=None, sampler=None, **defaults):
    """Make `name` buildable by `build_model` and trainable by `minidl train name`.
    Keyword arguments are its training defaults (epochs, lr, batch_size,
    optimizer, ...), used where the command line does not say otherwise."""
    if kind not in ("classifier", "generator"):
        raise ValueError(f"models.register: kind must be 'classifier' or 'generator', got {kind!r}")
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
    return model_entry(name).resolve()(input_shape, int(num_classes))


# ---- the registry: one line per model ----------------------------------------
register("mlp", "minidl.models.mlp:build", description="Flatten, Linear(in, 128), ReLU, Linear(128, classes)",
         epochs=20, batch_size=32, optimizer="adam", lr=3e-3)
register("cnn", "minidl.models.cnn:build", description="Keras example CNN: conv 32-64-64 3x3, 2 max-pools, dense 64",
         epochs=15, batch_size=32, optimizer="adamw", lr=2e-3, weight_decay=0.05)   # digits: 98.0-98.7%, see cnn.py
register("lenet", "minidl.models.lenet:build", description="LeNet-5: conv 6-16 5x5, 2 max-pools, dense 120-84",
         epochs=15, batch_size=32, optimizer="adam", lr=2e-3)   # digits: ~96.7% (seed 0)
register("vit", "minidl.models.vit:build", description="Vision Transformer: conv patches, class token, 4 pre-norm encoder layers",
         epochs=30, batch_size=64, optimizer="adamw", lr=1e-3)
register("gpt", "minidl.training.gpt:build_character_gpt", kind="generator",
         description="character GPT on the bundled Shakespeare slice (4 layers, 4 heads, width 64, 64 characters)",
         dataset="shakespeare", epochs=8, batch_size=32, optimizer="adamw", lr=3e-3)
register("pixel-gpt", "minidl.training.gpt:build_pixel_gpt", kind="generator",
         description="GPT over 4-level digit pixels, started by a class token (4 layers, 4 heads, width 64)",
         dataset="digits", epochs=10, batch_size=32, optimizer="adamw", lr=3e-3)
register("dcgan", "minidl.training.gan:build_gan", kind="generator",
         description="DCGAN: ConvTranspose2d+BatchNorm generator, Conv2d+LeakyReLU discriminator",
         epochs=200, batch_size=64, optimizer="adam", lr=5e-4)   # digits: 79% confident, every class >= 8%
register("gan", "minidl.training.gan:build_mlp_gan", kind="generator",
         description="the classic fully connected GAN (both players trained properly)",
         epochs=30, batch_size=64, optimizer="adam", lr=2e-4)
