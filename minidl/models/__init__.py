"""minidl.models: the networks students train, and a registry that builds them by name.

    from minidl.models import build_model
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10)

The registry is what `minidl train MODEL` uses. Each entry names a builder,
`builder(input_shape, num_classes) -> nn.Module`, given as "module:function"
so that a model file is imported only when it is asked for, and the kind of
model, which tells the CLI how to train it and what `minidl sample` does:

    kind "classifier": trained by minidl.training.classifier on image datasets;
    kind "generator":  a generative model (GPT, GAN) whose file also defines
                       `sample_from_run(run_dir, args)` for `minidl sample`.

Adding a model is one `register` line below (or a `register` call in its own file).
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

    def resolve(self, attribute=None):
        """The builder callable (or another `attribute` of the builder's module)."""
        if callable(self.builder) and attribute is None:
            return self.builder
        if callable(self.builder):
            module = importlib.import_module(self.builder.__module__)
        else:
            module_name, _, function = self.builder.partition(":")
            module = importlib.import_module(module_name)
            attribute = attribute or function
        return getattr(module, attribute)


REGISTRY = {}


def register(name, builder, kind="classifier", description="", **defaults):
    """Make `name` buildable by `build_model` and trainable by `minidl train name`.
    Keyword arguments are its training defaults (epochs, lr, batch_size,
    optimizer, ...), used where the command line does not say otherwise."""
    if kind not in ("classifier", "generator"):
        raise ValueError(f"models.register: kind must be 'classifier' or 'generator', got {kind!r}")
    REGISTRY[name] = ModelEntry(name, builder, kind, description, tuple(sorted(defaults.items())))
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
         epochs=10, batch_size=32, optimizer="adam", lr=2e-3)
register("lenet", "minidl.models.lenet:build", description="LeNet-5: conv 6-16 5x5, 2 max-pools, dense 120-84",
         epochs=10, batch_size=32, optimizer="adam", lr=2e-3)
register("vit", "minidl.models.vit:build", description="Vision Transformer: conv patches, class token, 4 pre-norm encoder layers",
         epochs=30, batch_size=64, optimizer="adamw", lr=1e-3)
register("gpt", "minidl.training.gpt:build_character_gpt", kind="generator",
         description="character GPT on the bundled Shakespeare slice (4 layers, 4 heads, width 128)",
         epochs=10, batch_size=32, optimizer="adamw", lr=1e-3)
register("pixel-gpt", "minidl.training.gpt:build_pixel_gpt", kind="generator",
         description="GPT over 4-level digit pixels, started by a class token",
         epochs=10, batch_size=64, optimizer="adamw", lr=1e-3)
register("dcgan", "minidl.training.gan:build_gan", kind="generator",
         description="DCGAN: ConvTranspose2d+BatchNorm generator, Conv2d+LeakyReLU discriminator",
         epochs=30, batch_size=64, optimizer="adam", lr=2e-4)
register("gan", "minidl.training.gan:build_mlp_gan", kind="generator",
         description="the classic fully connected GAN (both players trained properly)",
         epochs=30, batch_size=64, optimizer="adam", lr=2e-4)
