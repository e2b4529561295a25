"""A fast non-blind denoiser: pixel-unshuffle front end (as in FFDNet) + a small residual U-Net.

The noise level sigma (0..255 scale) enters as a constant map next to the image, so one network covers
sigma 0..75. The network predicts a residual that is added to the noisy input. Fully convolutional: the
input must have sides divisible by ``multiple`` (pad with :func:`imgen.image_io.pad_to_multiple`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from . import ModelConfig, register


@dataclass
class DenoiseUNetConfig(ModelConfig):
    channels: int = 3                      # image channels (a gray image is fed as 3 equal channels)
    widths: tuple[int, ...] = (32, 64, 128, 256)  # feature width per level; level i runs at 1/2**(i+1) scale
    blocks: int = 2                        # residual blocks per level on each side
    bottom_blocks: int = 0                 # extra residual blocks at the lowest level (cheap: 1/2**len(widths) scale)
    sigma_scale: float = 255.0             # sigma is divided by this before it enters the net



class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


@register("denoise_unet", DenoiseUNetConfig)
class DenoiseUNet(nn.Module):
    """x: (N, C, H, W) in [0, 1] (noisy, unclipped); sigma: (N,) on the 0..255 scale. Returns the estimate."""

    def __init__(self, config: DenoiseUNetConfig | None = None):
        super().__init__()
        self.config = config = config or DenoiseUNetConfig()
        w = config.widths
        c = config.channels
        self.head = nn.Conv2d(4 * c + 1, w[0], 3, padding=1)
        self.enc = nn.ModuleList(nn.Sequential(*[ResBlock(w[i]) for _ in range(config.blocks)]) for i in range(len(w)))
        self.down = nn.ModuleList(nn.Conv2d(w[i], w[i + 1], 2, stride=2) for i in range(len(w) - 1))
        self.up = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in range(len(w) - 1))
        self.bottom = nn.Sequential(*[ResBlock(w[-1]) for _ in range(config.bottom_blocks)])
        self.dec = nn.ModuleList(nn.Sequential(*[ResBlock(w[i]) for _ in range(config.blocks)]) for i in range(len(w) - 1))
        self.tail = nn.Conv2d(w[0], 4 * c, 3, padding=1)

    @property
    def multiple(self) -> int:
        return 2 ** len(self.config.widths)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = (sigma.to(x.dtype) / self.config.sigma_scale).view(n, 1, 1, 1).expand(n, 1, h // 2, w // 2)
        f = self.head(torch.cat([F.pixel_unshuffle(x, 2), s], dim=1))
        skips = []
        for i, enc in enumerate(self.enc):
            f = enc(f)
            if i < len(self.down):
                skips.append(f)
                f = F.relu(self.down[i](f), inplace=True)
        f = self.bottom(f)
        for i in reversed(range(len(self.up))):
            f = self.up[i](f) + skips[i]
            f = self.dec[i](f)
        return x + F.pixel_shuffle(self.tail(f), 2)
