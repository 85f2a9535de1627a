"""A small U-Net: a label for every pixel, from features at three scales.

    image (N, C, H, W)                                   H, W divisible by 4
      encoder   block(C -> w)        (N, w, H, W)        --- skip 1 ---+
                max-pool 2, block(w -> 2w)     (N, 2w, H/2, W/2) -- skip 2 -+  |
                max-pool 2, block(2w -> 4w)    (N, 4w, H/4, W/4)  bottom  |  |
      decoder   upsample 2 (bilinear), conv 1x1 (4w -> 2w), join skip 2,  |  |
                block(4w -> 2w)                (N, 2w, H/2, W/2) <-------+  |
                upsample 2, conv 1x1 (2w -> w), join skip 1,                |
                block(2w -> w)                 (N, w, H, W)     <----------+
      head      conv 1x1 (w -> classes)        (N, classes, H, W): per-pixel logits

A block is two 3x3 convolutions (padding 1, so the size is kept), each
followed by BatchNorm and ReLU. The encoder sees more and more context
(the bottom's 3x3 convolutions span ~24 input pixels) but loses where things
are; the skip connections bring back the fine positions, so the decoder can
draw sharp borders. "Joining" is channel concatenation (F.cat on dim 1).
"""
from .. import functional as F
from .. import nn


class ConvBlock(nn.Module):
    """Two (Conv2d 3x3 padding 1 -> BatchNorm2d -> ReLU): (N, in, H, W) -> (N, out, H, W)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU())

    def forward(self, x):
        return self.layers(x)


class UpStep(nn.Module):
    """Upsample x2 (bilinear), Conv2d 1x1 to halve the channels, concatenate the
    skip connection, then a ConvBlock."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear")
        self.reduce = nn.Conv2d(in_channels, out_channels, 1)
        self.block = ConvBlock(2 * out_channels, out_channels)

    def forward(self, x, skip):                                    # (N, in, h, w), (N, out, 2h, 2w)
        x = self.reduce(self.upsample(x))                          # (N, out, 2h, 2w)
        return self.block(F.cat([x, skip], dim=1))                 # (N, out, 2h, 2w)


class UNet(nn.Module):
    """UNet(in_channels=1, num_classes=11, width=16): see the module docstring."""

    def __init__(self, in_channels=1, num_classes=11, width=16):
        super().__init__()
        self.encoder1 = ConvBlock(in_channels, width)
        self.encoder2 = ConvBlock(width, 2 * width)
        self.bottom = ConvBlock(2 * width, 4 * width)
        self.pool = nn.MaxPool2d(2)
        self.up2 = UpStep(4 * width, 2 * width)
        self.up1 = UpStep(2 * width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, images):                                     # (N, C, H, W)
        if images.ndim != 4 or images.shape[2] % 4 or images.shape[3] % 4:
            raise ValueError(f"UNet: expected images (N, C, H, W) with H and W divisible by 4, "
                             f"got {tuple(images.shape)}")
        skip1 = self.encoder1(images)                              # (N, w, H, W)
        skip2 = self.encoder2(self.pool(skip1))                    # (N, 2w, H/2, W/2)
        bottom = self.bottom(self.pool(skip2))                     # (N, 4w, H/4, W/4)
        x = self.up2(bottom, skip2)                                # (N, 2w, H/2, W/2)
        x = self.up1(x, skip1)                                     # (N, w, H, W)
        return self.head(x)                                        # (N, classes, H, W)


def build(input_shape, num_classes):
    """The registry's builder: a UNet of width 16 for images (C, H, W)."""
    return UNet(input_shape[0], num_classes, width=16)
