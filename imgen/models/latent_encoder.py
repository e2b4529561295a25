"""An image -> w encoder for a latent GAN (64x64): the starting point of projecting a picture into the GAN.

Trained after the generator (``python -m imgen train encoder``) on the generator's own samples, whose w is
known, and on real faces through the frozen generator. Its output is refined by the explorer's optimisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import ModelConfig, register
from .latent_vae import ConvEncoder


@dataclass
class LatentEncoderConfig(ModelConfig):
    w_dim: int = 128
    widths: tuple[int, ...] = (32, 64, 128, 256)
    channels: int = 3
    generator: str = ""            # the registry name of the generator whose w space this encoder predicts


@register("latent_encoder", LatentEncoderConfig)
class LatentEncoder(nn.Module):
    """``forward(x)``: (N, C, 64, 64) in [-1, 1] -> (N, w_dim)."""

    def __init__(self, config: LatentEncoderConfig | None = None):
        super().__init__()
        self.config = c = config or LatentEncoderConfig()
        self.net = ConvEncoder(c.channels, c.widths, c.w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
