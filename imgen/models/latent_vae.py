"""A small convolutional VAE (64x64) that presents the same latent-explorer interface as :mod:`latent_gan`.

The encoder maps an image to the mean and log-variance of a diagonal Gaussian over z; the decoder maps z back
to an image. For the explorer the VAE looks like the GAN: ``mapping(z)`` turns a seed's standard-normal draw
into a latent, ``w_avg`` is the centre that the truncation ``w_avg + psi * (w - w_avg)`` pulls towards (so ψ
is a sampling temperature), and ``directions`` / ``direction_std`` are the principal directions of the
training faces' posterior means. ``encode(x)`` gives the posterior mean of a picture: a picture enters the
latent space in one forward pass.

Sampling: ``mapping(z) = w_avg + z @ latent_basis``. Untrained, the basis is the identity and the centre zero
(the N(0, I) prior). The export fits a full-covariance Gaussian to the training faces' posterior means and
stores its mean and square-root covariance there ("ex-post density estimation", Ghosh et al. 2020): a VAE
trained for sharp reconstructions (small KL weight) leaves its prior's typical points far from where the
decoder was trained, and samples drawn from the prior are noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from . import ModelConfig, register


@dataclass
class LatentVAEConfig(ModelConfig):
    z_dim: int = 128
    widths: tuple[int, ...] = (16, 32, 64, 128)   # encoder after each stride-2 stage: 32, 16, 8, 4 px
    channels: int = 3
    n_directions: int = 16
    direction_labels: tuple[str, ...] = ()

    @property
    def w_dim(self) -> int:  # the explorer's name for the space it edits
        return self.z_dim


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(F.leaky_relu(x, 0.2)), 0.2))


class ConvEncoder(nn.Module):
    """(N, C, 64, 64) in [-1, 1] -> (N, out_dim): residual blocks and stride-2 convs down to 4x4, then linear."""

    def __init__(self, channels: int, widths: tuple[int, ...], out_dim: int):
        super().__init__()
        w = list(widths)
        layers = [nn.Conv2d(channels, w[0], 3, padding=1)]
        for a, b in zip([w[0]] + w[:-1], w):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), ResBlock(b)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(w[-1] * 16, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.leaky_relu(self.body(x).flatten(1), 0.2))


@register("latent_vae", LatentVAEConfig)
class LatentVAE(nn.Module):
    """``forward(w)``: (N, z_dim) -> images (N, C, 64, 64) in [-1, 1]; ``encode(x)`` -> (mean, logvar)."""

    def __init__(self, config: LatentVAEConfig | None = None):
        super().__init__()
        self.config = c = config or LatentVAEConfig()
        w = list(c.widths)
        self.encoder = ConvEncoder(c.channels, c.widths, 2 * c.z_dim)
        self.from_z = nn.Linear(c.z_dim, w[-1] * 16)
        dec = []
        for a, b in zip(w[::-1], w[::-1][1:] + [w[0]]):
            dec += [ResBlock(a), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)
        self.to_rgb = nn.Conv2d(w[0], c.channels, 3, padding=1)
        self.register_buffer("w_avg", torch.zeros(c.z_dim))
        self.register_buffer("latent_basis", torch.eye(c.z_dim))
        self.register_buffer("directions", torch.zeros(c.n_directions, c.z_dim))
        self.register_buffer("direction_std", torch.zeros(c.n_directions))

    @property
    def resolution(self) -> int:
        return 4 * 2 ** len(self.config.widths)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30, 20)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = self.from_z(w).view(w.shape[0], self.config.widths[-1], 4, 4)
        x = self.decoder(x)
        return torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.w_avg + z @ self.latent_basis

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        return self.w_avg + psi * (w - self.w_avg)

    def sample(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        return self(self.truncate(self.mapping(z), psi))
