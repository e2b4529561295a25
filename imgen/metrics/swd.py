"""Multi-scale sliced Wasserstein distance between two sets of images (Karras et al. 2018, "Progressive
Growing of GANs", section 5): a distribution distance that needs no pretrained network.

Each image is split into a Laplacian pyramid (5-tap binomial filter); from every level, ``patches_per_image``
random 7x7 patches are taken as descriptors (at the same positions in both sets); each level's descriptors are normalised per colour channel by
their own set's mean and spread; the sliced Wasserstein distance between the two sets' descriptors is the
mean over random unit directions of the L1 distance between the sorted projections. Reported x1000 per level
(finest first) and averaged. Both sets must have the same number of images (the sorted projections are
compared element by element); the result depends on that number, so a floor (real vs real of the same size)
belongs beside it.
"""
from __future__ import annotations

import numpy as np
import torch

from ..pyramid import laplacian_pyramid


def patch_positions(n: int, h: int, w: int, per_image: int, rng: np.random.Generator, size: int = 7):
    """Random top-left corners (ys, xs), each (n, per_image), of ``size`` x ``size`` patches."""
    return (torch.from_numpy(rng.integers(0, h - size + 1, (n, per_image))),
            torch.from_numpy(rng.integers(0, w - size + 1, (n, per_image))))


def gather_patches(level: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, size: int = 7) -> torch.Tensor:
    """The patches at (ys, xs) of each image: (N * per_image, C * size * size)."""
    n, c, h, w = level.shape
    per_image = ys.shape[1]
    offs = torch.arange(size)
    rows = (ys[..., None] + offs).view(n, per_image, size, 1).expand(-1, -1, -1, size)
    cols = (xs[..., None] + offs).view(n, per_image, 1, size).expand(-1, -1, size, -1)
    flat = (rows * w + cols).reshape(n, 1, -1).expand(-1, c, -1)          # (N, C, P*size*size)
    p = level.flatten(2).gather(2, flat).view(n, c, per_image, size * size)
    return p.permute(0, 2, 1, 3).reshape(n * per_image, c * size * size)


def normalise_patches(desc: np.ndarray, channels: int, channels_last: bool = False) -> np.ndarray:
    """Per colour channel (over all patches and positions): zero mean, unit spread (Karras et al.).
    ``desc`` rows are flattened (C, k, k) patches, or (k, k, C) ones with ``channels_last``."""
    shape = (len(desc), -1, channels) if channels_last else (len(desc), channels, -1)
    axes = (0, 1) if channels_last else (0, 2)
    d = np.asarray(desc, np.float64).reshape(shape)
    d = d - d.mean(axis=axes, keepdims=True)
    d = d / np.maximum(d.std(axis=axes, keepdims=True), 1e-8)
    return d.reshape(len(desc), -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int, rng: np.random.Generator,
                       repeats: int = 1) -> float:
    """Mean over ``directions`` x ``repeats`` random unit directions of mean |sort(a·d) - sort(b·d)|
    (equal-size descriptor sets (n, dim))."""
    m = min(len(a), len(b))
    a, b = a[:m], b[:m]
    vals = []
    for _ in range(repeats):
        d = rng.standard_normal((a.shape[1], directions))
        d /= np.linalg.norm(d, axis=0, keepdims=True)
        pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
        vals.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(vals))


def multiscale_swd(a_u8: torch.Tensor, b_u8: torch.Tensor, levels: int = 3, patches_per_image: int = 128,
                   directions: int = 512, repeats: int = 4, seed: int = 0) -> dict:
    """SWD x1000 per Laplacian level (finest first) and their mean, between uint8 (N, C, H, W) image sets.

    Pyramid levels stop where a 7x7 patch no longer fits (16 px: three levels for 64 px images).
    """
    if len(a_u8) != len(b_u8):
        n = min(len(a_u8), len(b_u8))
        a_u8, b_u8 = a_u8[:n], b_u8[:n]
    rng = np.random.default_rng(seed)
    c = a_u8.shape[1]
    pa = laplacian_pyramid(a_u8.double() / 127.5 - 1, levels)
    pb = laplacian_pyramid(b_u8.double() / 127.5 - 1, levels)
    per_level = []
    for la, lb in zip(pa, pb):  # the same patch positions in both sets: a set against itself scores 0
        ys, xs = patch_positions(len(la), *la.shape[-2:], patches_per_image, rng)
        da = normalise_patches(gather_patches(la, ys, xs).numpy(), c).astype(np.float32)
        db = normalise_patches(gather_patches(lb, ys, xs).numpy(), c).astype(np.float32)
        per_level.append(1000 * sliced_wasserstein(da, db, directions, rng, repeats))
    return {"swd": float(np.mean(per_level)), "swd_levels": per_level}
