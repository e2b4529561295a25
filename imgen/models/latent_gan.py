"""A small style-modulated GAN for exploring a latent space (64x64), sized for CPU training and serving.

Generator = mapping network (z -> w, as in StyleGAN) + a DCGAN-like synthesis network whose every block is
modulated by w (per-channel scale and bias after pixel normalisation). The intermediate space w is where
exploration happens: truncation (``w_avg + psi * (w - w_avg)``) and GANSpace directions (principal
components of w, stored with the checkpoint as the buffers ``directions`` and ``direction_std``).

Sampling is deterministic and batch-independent (no batch norm, no noise inputs), so a seed always gives
the same image whatever else is in the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from . import ModelConfig, register


@dataclass
class LatentGANConfig(ModelConfig):
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    widths: tuple[int, ...] = (256, 256, 128, 64, 32)  # channels at 4, 8, 16, 32, 64 px
    channels: int = 3
    n_directions: int = 16                               # principal directions of w kept with the checkpoint
    direction_labels: tuple[str, ...] = ()               # names given to directions after looking at them


def pixel_norm(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=dim, keepdim=True) + 1e-8)


class Mapping(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, layers: int):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        for layer in self.layers:  # He init for leaky ReLU and zero bias: w keeps z's variation (the default
            nn.init.kaiming_normal_(layer.weight, a=0.2)  # init shrank it ~50x over 4 layers: near-constant w)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
        return x


class ModulatedBlock(nn.Module):
    """Upsample x2 (transposed conv 4x4), LeakyReLU, pixel norm, then per-channel scale/bias from w."""

    def __init__(self, c_in: int, c_out: int, w_dim: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
        self.style = nn.Linear(w_dim, 2 * c_out)
        nn.init.zeros_(self.style.weight)
        nn.init.zeros_(self.style.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(F.leaky_relu(self.conv(x), 0.2))
        scale, bias = self.style(w).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * (1 + scale) + bias


@register("latent_gan", LatentGANConfig)
class LatentGAN(nn.Module):
    """``forward(w)``: (N, w_dim) -> images (N, C, 64, 64) in [-1, 1]. ``mapping(z)`` gives w."""

    def __init__(self, config: LatentGANConfig | None = None):
        super().__init__()
        self.config = c = config or LatentGANConfig()
        self.mapping = Mapping(c.z_dim, c.w_dim, c.mapping_layers)
        self.const = nn.Linear(c.w_dim, c.widths[0] * 16)
        nn.init.kaiming_normal_(self.const.weight, a=0.2)
        nn.init.zeros_(self.const.bias)
        self.blocks = nn.ModuleList(ModulatedBlock(a, b, c.w_dim) for a, b in zip(c.widths[:-1], c.widths[1:]))
        self.to_rgb = nn.Conv2d(c.widths[-1], c.channels, 3, padding=1)
        self.register_buffer("w_avg", torch.zeros(c.w_dim))
        self.register_buffer("directions", torch.zeros(c.n_directions, c.w_dim))
        self.register_buffer("direction_std", torch.zeros(c.n_directions))

    @property
    def resolution(self) -> int:
        return 4 * 2 ** len(self.blocks)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = self.const(w).view(w.shape[0], self.config.widths[0], 4, 4)
        x = pixel_norm(F.leaky_relu(x, 0.2))
        for block in self.blocks:
            x = block(x, w)
        return torch.tanh(self.to_rgb(x))

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        return self.w_avg + psi * (w - self.w_avg)

    def sample(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        return self(self.truncate(self.mapping(z), psi))


@dataclass
class LatentDiscConfig(ModelConfig):
    widths: tuple[int, ...] = (64, 128, 256, 256)  # after each stride-2 conv: 32, 16, 8, 4 px
    channels: int = 3


@register("latent_disc", LatentDiscConfig)
class LatentDisc(nn.Module):
    """DCGAN-style discriminator with a minibatch-stddev feature; returns one logit per image."""

    def __init__(self, config: LatentDiscConfig | None = None):
        super().__init__()
        self.config = c = config or LatentDiscConfig()
        chans = [c.channels] + list(c.widths)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        self.final = nn.Conv2d(c.widths[-1] + 1, c.widths[-1], 3, padding=1)
        self.out = nn.Linear(c.widths[-1] * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        group = min(4, x.shape[0])
        while x.shape[0] % group:
            group -= 1
        y = x.view(group, -1, *x.shape[1:]).std(dim=0, unbiased=False).mean(dim=(1, 2, 3))  # (N/group,)
        y = y.repeat(group).view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        x = F.leaky_relu(self.final(torch.cat([x, y], dim=1)), 0.2)
        return self.out(x.flatten(1)).squeeze(1)
