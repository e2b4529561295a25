"""A painting set's brushwork as a model: the distribution of its small patches, and a pass that moves a
picture's patches onto it (issue #17).

What it stores (fitted to paintings by :meth:`PatchTexture.fit`, no gradient training): for each level of a
Laplacian pyramid, the paintings' 7x7 patches normalised per colour channel (their mean and spread), the
first ``dims`` principal axes of those patches, ``rounds`` fixed random rotations of that span, and along each
rotated axis the paintings' ``quantiles`` (the 1-D distribution of the projections).

What it does (``forward``): the picture's patches (every ``stride`` px) on each level are normalised the
same way and moved, rotation after rotation, along each axis to the paintings' value at the same quantile
(sliced optimal transport: Rabin, Peyré, Delon & Bernot 2011; Pitié et al. 2005), within the principal span
only (the rest of each patch stays); then they get the paintings' mean and spread, are overlap-averaged back
and the pyramid is collapsed. Averaging pulls the patches back towards the mean, so the whole pass runs
``passes`` times. Each patch moves as little as the matching allows, so outlines stay where they were while
their profile, the fine texture and the broad tones take the paintings'.

Unlike :mod:`imgen.tasks.texture_transfer` (one reference picture, its patches sorted per call), the target
is a whole set, summarised once as quantiles: the picture's own quantiles come from a subsample of its
patches and a lookup table maps each value, so a call needs no full sort: 0.14 s at 512x512 on this project's
2-core CPU (stride 5, 16 axes; stride 3 and 32 axes: 0.31 s for the same texture SWD, see the card).

Input and output: (n, 3, h, w) float RGB in 0..1; pictures too small for a patch come back unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..pyramid import collapse, laplacian_pyramid, overlap_average, strided_patches
from . import ModelConfig, register


@dataclass
class PatchTextureConfig(ModelConfig):
    levels: int = 4          # Laplacian levels, the last being the low-pass residual (all moved)
    patch: int = 7
    dims: int = 16           # principal axes of the paintings' patches the transport works in
    rounds: int = 2          # fixed random rotations per level and pass
    quantiles: int = 1024    # stored per rotated axis
    passes: int = 2
    stride: int = 5          # picture patches every `stride` px on levels at least 64 px high and wide
    table: int = 2048        # lookup-table entries per axis for the value -> target map
    sample: int = 2048       # picture patches per level whose projections give the picture's quantiles


@register("patch_texture", PatchTextureConfig)
class PatchTexture(nn.Module):
    def __init__(self, config: PatchTextureConfig = PatchTextureConfig()):
        super().__init__()
        self.config = c = config
        dim, levels, rounds, d = 3 * c.patch * c.patch, c.levels, c.rounds, c.dims
        self.register_buffer("span", torch.zeros(levels, dim, d))              # principal axes per level
        self.register_buffer("mean", torch.zeros(levels, 3))                   # paintings' patch mean ...
        self.register_buffer("std", torch.ones(levels, 3))                     # ... and spread, per channel
        self.register_buffer("rotation", torch.eye(d).repeat(levels, rounds, 1, 1))
        self.register_buffer("quantile", torch.zeros(levels, rounds, d, c.quantiles))

    # ------------------------------------------------------------------------------------ fitting
    @torch.no_grad()
    def fit(self, images, per_image: int = 128, seed: int = 0) -> "PatchTexture":
        """Fit to ``images`` (an iterable of (3, h, w) float 0..1 tensors, at the scale the pass will see):
        ``per_image`` random patches per level of each image make up the target distribution."""
        c = self.config
        gen = torch.Generator().manual_seed(seed)
        pooled: list[list[torch.Tensor]] = [[] for _ in range(c.levels)]
        for img in images:
            for k, band in enumerate(laplacian_pyramid(img[None].float().cpu() * 2 - 1, c.levels)):
                if min(band.shape[-2:]) < c.patch:
                    continue
                p = F.unfold(band, c.patch)[0]
                pooled[k].append(p[:, torch.randperm(p.shape[1], generator=gen)[:per_image]])
        if any(not p for p in pooled):
            raise ValueError("PatchTexture.fit: the images are too small for every pyramid level")
        for k in range(c.levels):
            q = torch.cat(pooled[k], 1)
            v = q.view(3, -1, q.shape[1])
            mean, std = v.mean((1, 2)), v.std((1, 2)).clamp_min(1e-6)
            qn = ((v - mean[:, None, None]) / std[:, None, None]).view_as(q)
            span = torch.linalg.eigh((qn @ qn.T).double() / qn.shape[1])[1][:, -c.dims:].float()
            y = span.T @ qn
            at = torch.linspace(0, y.shape[1] - 1, c.quantiles).round().long()
            self.span[k], self.mean[k], self.std[k] = span, mean, std
            for r in range(c.rounds):
                rot = torch.linalg.qr(torch.randn(c.dims, c.dims, generator=gen, dtype=torch.float64))[0].float()
                self.rotation[k, r] = rot
                self.quantile[k, r] = torch.sort(rot.T @ y, dim=1).values[:, at]
        return self

    # ------------------------------------------------------------------------------------ the pass
    def _map(self, px: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Each row of ``px`` (d, n) moved to ``target``'s (d, K) value at its quantile, through a lookup table
        on a uniform grid of the row's range (the row's quantiles from a fixed subsample)."""
        c = self.config
        n = px.shape[1]
        pick = torch.linspace(0, n - 1, min(c.sample, n), device=px.device).long()
        s = torch.sort(px[:, pick], dim=1).values
        src = s[:, torch.linspace(0, s.shape[1] - 1, c.quantiles, device=px.device).round().long()].contiguous()
        lo, width = src[:, :1], (src[:, -1:] - src[:, :1]).clamp_min(1e-6)
        grid = lo + width * torch.linspace(0, 1, c.table, device=px.device)[None]
        i = torch.searchsorted(src, grid.contiguous()).clamp(1, c.quantiles - 1)
        a, b = src.gather(1, i - 1), src.gather(1, i)
        w = ((grid - a) / (b - a).clamp_min(1e-9)).clamp(0, 1)
        table = torch.lerp(target.gather(1, i - 1), target.gather(1, i), w)           # (d, table)
        f = ((px - lo) * ((c.table - 1) / width)).clamp_(0, c.table - 1.001)
        j = f.long()
        f -= j
        t0 = table.gather(1, j)
        return t0.add_(f.mul_(table.gather(1, j + 1) - t0))

    def _transport(self, p: torch.Tensor, k: int) -> torch.Tensor:
        """Normalised patches (dim, n) of level k moved onto the paintings' distribution."""
        span = self.span[k]
        y0 = span.T @ p
        y = y0.clone()
        for rot, target in zip(self.rotation[k], self.quantile[k]):
            px = rot.T @ y
            y.addmm_(rot, self._map(px, target).sub_(px))
        return p.addmm_(span, y.sub_(y0))

    def _level(self, band: torch.Tensor, k: int) -> torch.Tensor:
        c = self.config
        # the picture's patch statistics per channel are those of the band's pixels (each pixel sits in
        # about patch^2 / stride^2 patches): much cheaper than over the unfolded patches
        mean = band.mean((2, 3)).view(3, 1, 1)
        std = band.std((2, 3)).clamp_min(1e-6).view(3, 1, 1)
        p, size, st = strided_patches(band, c.patch, c.stride)
        n = p.shape[1]
        v = p.view(3, -1, n).sub_(mean).div_(std)
        moved = self._transport(v.view(-1, n), k).view(3, -1, n)
        moved.mul_(self.std[k].view(3, 1, 1)).add_(self.mean[k].view(3, 1, 1))
        return overlap_average(moved.view(-1, n), size, band.shape[-2:], c.patch, st)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if min(x.shape[-2:]) < c.patch:
            return x
        outs = []
        for img in x.float():
            y = img[None] * 2 - 1
            for _ in range(c.passes):
                levels = laplacian_pyramid(y, c.levels)
                y = collapse([self._level(b, k) if min(b.shape[-2:]) >= c.patch and b.shape[0] == 1 else b
                              for k, b in enumerate(levels)])
            outs.append(((y + 1) / 2).clamp(0, 1))
        return torch.cat(outs).to(x.dtype)
