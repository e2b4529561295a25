"""Laplacian pyramids (Burt & Adelson 1983) with the 5-tap binomial filter, and a band's strided patches and
their overlap-averaged way back, for the texture measures (:mod:`imgen.metrics.swd`) and the texture passes
(:mod:`imgen.models.patch_texture`, :mod:`imgen.tasks.texture_transfer`)."""
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


def strided_patches(band: torch.Tensor, patch: int, stride: int) -> tuple[torch.Tensor, tuple[int, int], int]:
    """A (1, C, H, W) band's ``patch`` x ``patch`` patches every ``stride`` px (every px on bands under 64 px), as
    (C * patch^2, n), the band replicate-padded at the bottom and right so that they cover all of it. Returns
    (patches, padded size, the stride used), what :func:`overlap_average` takes back."""
    bh, bw = band.shape[-2:]
    st = stride if min(bh, bw) >= 64 else 1
    ph, pw = (-(bh - patch)) % st, (-(bw - patch)) % st
    padded = F.pad(band, (0, pw, 0, ph), mode="replicate") if ph or pw else band
    return F.unfold(padded, patch, stride=st)[0], tuple(padded.shape[-2:]), st


def overlap_average(patches: torch.Tensor, size: tuple[int, int], crop: tuple[int, int], patch: int,
                    stride: int) -> torch.Tensor:
    """(C * patch^2, n) patches of a ``size`` picture put back as (1, C, h, w), overlaps averaged, cropped to
    ``crop`` (h, w): the inverse of :func:`strided_patches`."""
    acc = F.fold(patches.reshape(1, patches.shape[0], -1), size, patch, stride=stride)
    return (acc / coverage(size, patch, stride, patches.device))[..., :crop[0], :crop[1]]


def coverage(size: tuple[int, int], patch: int, stride: int, device) -> torch.Tensor:
    """How many patches (``patch`` wide, every ``stride`` px) cover each pixel of a ``size`` picture, (h, w), at
    least 1: the product of the row and the column counts (what folding a tensor of ones gives, without the fold)."""
    def counts(length: int) -> torch.Tensor:
        starts = torch.arange(0, length - patch + 1, stride, device=device)
        edges = torch.zeros(length + 1, device=device)
        edges.index_add_(0, starts, torch.ones(len(starts), device=device))
        edges.index_add_(0, starts + patch, -torch.ones(len(starts), device=device))
        return edges[:length].cumsum(0)
    return (counts(size[0])[:, None] * counts(size[1])[None, :]).clamp_min(1)
