"""A Vision Transformer: an image read as a sequence of patches.

    image (N, C, H, W)
      -> patches by a strided convolution: Conv2d(C, dim, kernel=patch, stride=patch)
         (with patch_kernel > patch_size, neighbouring patches overlap: kernel
         patch_kernel, same stride, padding (patch_kernel - patch_size) / 2)
      -> (N, P, dim) with P = (H / patch) * (W / patch) patch tokens
      -> a learned class token prepended: (N, P + 1, dim), plus learned positions
      -> `depth` pre-norm TransformerEncoderLayers (GELU)
      -> LayerNorm, then a Linear head on the class token: (N, num_classes)
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd.grad_mode import no_grad


def patch_embedding(owner, image_size, patch_size, in_channels, dim, patch_kernel=None):
    """The strided Conv2d that turns an image into a grid of patch tokens:
    kernel patch_kernel (default patch_size), stride patch_size, padding
    (patch_kernel - patch_size) / 2, so the grid is (image_size / patch_size)
    on each side. `owner` names the model in the errors."""
    if image_size % patch_size != 0:
        raise ValueError(f"{owner}: image_size {image_size} is not a multiple of patch_size {patch_size}")
    patch_kernel = patch_size if patch_kernel is None else patch_kernel
    if patch_kernel < patch_size or (patch_kernel - patch_size) % 2:
        raise ValueError(f"{owner}: patch_kernel {patch_kernel} must be patch_size "
                         f"{patch_size} plus an even number")
    return nn.Conv2d(in_channels, dim, patch_kernel, stride=patch_size,
                     padding=(patch_kernel - patch_size) // 2)


class VisionTransformer(nn.Module):
    def __init__(self, image_size=8, patch_size=2, in_channels=1, num_classes=10, dim=64,
                 depth=4, heads=4, mlp_dim=128, dropout=0.0, patch_kernel=None):
        super().__init__()
        self.patch_embedding = patch_embedding("VisionTransformer", image_size, patch_size,
                                               in_channels, dim, patch_kernel)
        self.image_size, self.patch_size, self.dim = image_size, patch_size, dim
        self.num_patches = (image_size // patch_size) ** 2
        self.class_token = nn.Parameter(np.zeros((1, 1, dim), dtype=np.float32))
        self.position_embedding = nn.LearnedPositionalEmbedding(self.num_patches + 1, dim)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, heads, dim_feedforward=mlp_dim, dropout=dropout,
                                       activation="gelu", norm_first=True)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.class_token, std=0.02)

    def tokens(self, images):
        """images (N, C, H, W) -> token sequence (N, P + 1, dim) with positions."""
        N = images.shape[0]
        if images.ndim != 4 or images.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(f"VisionTransformer: expected images (N, C, {self.image_size}, "
                             f"{self.image_size}), got {images.shape}")
        patches = self.patch_embedding(images)                             # (N, dim, h, w)
        patches = patches.flatten(2).transpose(1, 2)                       # (N, P, dim)
        cls = self.class_token.expand(N, 1, self.dim)                      # (N, 1, dim)
        x = F.cat([cls, patches], dim=1)                                   # (N, P+1, dim)
        return self.dropout(self.position_embedding(x))

    def forward(self, images):
        x = self.tokens(images)                                            # (N, P+1, dim)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x)[:, 0])                               # (N, classes)

    def attention_maps(self, images):
        """Head-averaged attention of every layer: a list of (N, P+1, P+1) arrays;
        row 0 is where the class token looks."""
        maps, was_training = [], self.training
        self.eval()                                   # no dropout in what is plotted
        with no_grad():
            x = self.tokens(images)                                        # (N, P+1, dim)
            for layer in self.layers:
                h = layer.norm1(x)
                _, weights = layer.self_attn(h, h, h, need_weights=True)   # (N, P+1, P+1)
                maps.append(weights.data)
                x = layer(x)
        self.train(was_training)
        return maps



def build(input_shape, num_classes):
    """The registry's builder: 16 patch tokens, which keeps a step cheap on a CPU.
    On 8x8 digits, patches of 2x2 read through overlapping 4x4 windows (on 1347
    training images, the overlap's bit of locality is worth ~2 points of test
    accuracy); on 28x28 images, patches of 7x7."""
    channels, height, width = input_shape
    if height != width:
        raise ValueError(f"VisionTransformer: square images only, got {height}x{width}")
    if height <= 16:
        patch, kernel = 2, 4
    else:
        patch = 7 if height % 7 == 0 else 4
        kernel = patch
    return VisionTransformer(image_size=height, patch_size=patch, in_channels=channels,
                             num_classes=num_classes, dim=64, depth=4, heads=4, mlp_dim=128,
                             patch_kernel=kernel)


def plot_class_attention(model, images, path, labels=None):
    """Save a grid: each row one image, then, per layer, the class token's
    head-averaged attention over the patches drawn on the image (brighter =
    read more). images: (N, C, H, W) as the model takes them (normalised)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pixels = np.asarray(getattr(images, "data", images))                    # (N, C, H, W)
    maps = model.attention_maps(images)                                     # layers x (N, P+1, P+1)
    side = model.image_size // model.patch_size
    upscale = np.ones((model.patch_size, model.patch_size))
    rows, columns = len(pixels), len(maps) + 1
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows), squeeze=False)
    for row in range(rows):
        picture = pixels[row].mean(axis=0)                                  # (H, W), channels averaged
        axes[row, 0].imshow(picture, cmap="gray")
        if labels is not None:
            axes[row, 0].set_title(f"label {labels[row]}", fontsize=8)
        for layer, weights in enumerate(maps):
            patches = weights[row, 0, 1:].reshape(side, side)              # class token -> patches
            axes[row, layer + 1].imshow(picture, cmap="gray")
            axes[row, layer + 1].imshow(np.kron(patches, upscale), cmap="inferno", alpha=0.6)
            axes[row, layer + 1].set_title(f"layer {layer + 1}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("where the class token looks (head-averaged)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
