"""Laplacian pyramids (Burt & Adelson 1983) with the 5-tap binomial filter, for the texture measures
(:mod:`imgen.metrics.swd`) and the texture passes (:mod:`imgen.models.patch_texture`,
:mod:`imgen.tasks.texture_transfer`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def blur(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) blurred by the separable 5-tap binomial filter, reflected at the borders (shifted sums:
    4x faster on a CPU than a grouped convolution)."""
    k = _BINOMIAL
    p = F.pad(x, (2, 2, 2, 2), mode="reflect")
    h = p[..., :, :-4] * k[0] + p[..., :, 1:-3] * k[1] + p[..., :, 2:-2] * k[2] + p[..., :, 3:-1] * k[3] + p[..., :, 4:] * k[4]
    return h[..., :-4, :] * k[0] + h[..., 1:-3, :] * k[1] + h[..., 2:-2, :] * k[2] + h[..., 3:-1, :] * k[3] + h[..., 4:, :] * k[4]


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """(N, C, H, W) float -> ``levels`` bands, finest first; the last is the low-pass residual (fewer levels
    when the picture gets too small to blur)."""
    out = []
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 3:
            break
        down = blur(x)[..., ::2, ::2]
        out.append(x - F.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False))
        x = down
    out.append(x)
    return out


def collapse(levels: list[torch.Tensor]) -> torch.Tensor:
    """The inverse of :func:`laplacian_pyramid`."""
    x = levels[-1]
    for band in reversed(levels[:-1]):
        x = band + F.interpolate(x, size=band.shape[-2:], mode="bilinear", align_corners=False)
    return x
