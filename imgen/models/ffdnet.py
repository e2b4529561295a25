"""FFDNet's architecture (Zhang et al. 2018), used only as the speed reference in the denoise benchmark.

Colour FFDNet: pixel-unshuffle x2, 12 conv layers of 96 channels, a noise-level map. Random weights are
enough for timing; this project ships no FFDNet weights.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class FFDNet(nn.Module):
    def __init__(self, channels: int = 3, width: int = 96, depth: int = 12):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(4 * channels + 1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 4 * channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    multiple = 2

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = (sigma.to(x.dtype) / 255.0).view(n, 1, 1, 1).expand(n, 1, h // 2, w // 2)
        return F.pixel_shuffle(self.body(torch.cat([F.pixel_unshuffle(x, 2), s], 1)), 2)
