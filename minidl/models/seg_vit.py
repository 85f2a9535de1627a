"""A Transformer segmenter: a ViT encoder over patches, a light convolutional decoder.

    image (N, C, H, W)                       H, W divisible by the patch size p
      -> BatchNorm2d(C): the scenes standardised     (N, C, H, W)
      -> patches: Conv2d(C, dim, kernel k, stride p)       (N, dim, H/p, W/p)
         (k = p: side-by-side patches; k = 2p, padding p/2: each token sees
         its patch and half of its neighbours', a whole digit for p = 4)
      -> tokens + learned positions                        (N, P, dim), P = HW / p^2
         (token t is the patch in row t // (W/p), column t % (W/p): `to_tokens`)
      -> `depth` pre-norm TransformerEncoderLayers         every patch attends to every patch
      -> LayerNorm, back to a map (`to_map`)               (N, dim, H/p, W/p)
      -> F.interpolate to (H, W), bilinear                 (N, dim, H, W)
      -> join a 3x3 conv of the image (the fine detail     (N, dim + w, H, W)
         the coarse tokens cannot hold), then
         Conv2d 3x3 (dim + w -> w), BatchNorm2d, ReLU, Conv2d 1x1 (w -> classes)
      -> plus the token head: Linear(dim, classes) on every token, as a map,
         bilinearly upsampled to (H, W)                    (N, classes, H, W)

The Transformer decides WHAT each region is (a digit is spread over several
patches, so the class needs attention across them); the decoder decides
WHERE its borders are, at pixel resolution. There is no class token: every
patch token is an output.

Why the token head and the BatchNorms: 92% of a scene's pixels are
background, and the per-pixel loss first drops by finding the strokes
("ink, some digit"), which the detail convolution alone can do. Training
then sits on a plateau where every digit class gets the same score: the
signal that tells the digits apart comes from the tokens, and without a
short path it had to cross the decoder's two small weight matrices, whose
product is what moves it. Without the token head and the normalisation the
model (identical, forward and gradients, to a PyTorch twin, which stalls the
same way) stayed on that plateau, near the intensity baseline. The token
head gives the tokens a direct, linear say in every pixel's class scores;
standardising the mostly-black input and the decoder's features keeps the
small class signal from being drowned. With them it leaves the plateau
in the first epochs. It then overfits 1000 fixed training scenes; its
registry defaults therefore train on scenes composed afresh every epoch
(`augment`, minidl.training.segmentation), see benchmarks/results/segmentation.md.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd.grad_mode import no_grad
from .vit import patch_embedding


class SegmentationTransformer(nn.Module):
    def __init__(self, image_size=32, patch_size=4, in_channels=1, num_classes=11, dim=64,
                 depth=4, heads=4, mlp_dim=128, decoder_width=32, patch_kernel=None):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(in_channels)
        self.patch_embedding = patch_embedding("SegmentationTransformer", image_size, patch_size,
                                               in_channels, dim, patch_kernel)
        self.image_size, self.patch_size, self.dim = image_size, patch_size, dim
        self.grid = image_size // patch_size
        self.position_embedding = nn.LearnedPositionalEmbedding(self.grid * self.grid, dim)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, heads, dim_feedforward=mlp_dim, dropout=0.0,
                                       activation="gelu", norm_first=True)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.token_head = nn.Linear(dim, num_classes)
        self.detail = nn.Sequential(nn.Conv2d(in_channels, decoder_width, 3, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.Conv2d(dim + decoder_width, decoder_width, 3, padding=1, bias=False),
            nn.BatchNorm2d(decoder_width), nn.ReLU(),
            nn.Conv2d(decoder_width, num_classes, 1))

    @staticmethod
    def to_tokens(feature_map):
        """(N, dim, g, g) -> (N, g * g, dim): token r * g + c is the map's cell (r, c)."""
        return feature_map.flatten(2).transpose(1, 2)

    def to_map(self, tokens):
        """(N, g * g, dim) -> (N, dim, g, g): the exact inverse of `to_tokens`."""
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], self.grid, self.grid)

    def tokens(self, images):
        """images (N, C, H, W) -> patch tokens with positions (N, P, dim)."""
        if images.ndim != 4 or images.shape[2:] != (self.image_size, self.image_size):
            raise ValueError(f"SegmentationTransformer: expected images (N, C, {self.image_size}, "
                             f"{self.image_size}), got {tuple(images.shape)}")
        patches = self.patch_embedding(self.input_norm(images))            # (N, dim, g, g)
        return self.position_embedding(self.to_tokens(patches))            # (N, P, dim)

    def forward(self, images):                                              # (N, C, H, W)
        x = self.tokens(images)                                             # (N, P, dim)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)                                                    # (N, P, dim)
        size = (self.image_size, self.image_size)
        fine = F.interpolate(self.to_map(x), size=size, mode="bilinear")    # (N, dim, H, W)
        joined = F.cat([fine, self.detail(self.input_norm(images))], dim=1)  # (N, dim + w, H, W)
        per_token = F.interpolate(self.to_map(self.token_head(x)), size=size, mode="bilinear")
        return self.decoder(joined) + per_token                             # (N, classes, H, W)

    def attention_maps(self, images):
        """Head-averaged attention of every layer: a list of (N, P, P) arrays."""
        maps, was_training = [], self.training
        self.eval()
        with no_grad():
            x = self.tokens(images)
            for layer in self.layers:
                h = layer.norm1(x)
                _, weights = layer.self_attn(h, h, h, need_weights=True)    # (N, P, P)
                maps.append(np.asarray(weights.data))
                x = layer(x)
        self.train(was_training)
        return maps


def build(input_shape, num_classes):
    """The registry's builder: 4x4 patches (64 tokens on a 32x32 scene), width 64, 4 layers."""
    channels, height, width = input_shape
    if height != width:
        raise ValueError(f"SegmentationTransformer: square images only, got {height}x{width}")
    patch = 4 if height <= 32 else 8
    return SegmentationTransformer(image_size=height, patch_size=patch, in_channels=channels,
                                   num_classes=num_classes, patch_kernel=2 * patch)
