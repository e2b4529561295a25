"""Patches for training: images held in memory, random crops, flips and 90-degree turns."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch



class PatchSampler:
    """Holds a folder's worth of images as uint8 arrays and draws random augmented patches.

    ``mode`` is "RGB" or "L". Images smaller than the patch are skipped.
    """

    def __init__(self, paths: Sequence[str | Path], patch: int, mode: str = "RGB"):
        from ..image_io import load_image

        self.patch = patch
        self.mode = mode
        self.images: list[np.ndarray] = []
        for p in paths:
            arr = np.asarray(load_image(p, mode=mode))
            if arr.ndim == 2:
                arr = arr[:, :, None]
            if min(arr.shape[:2]) >= patch:
                self.images.append(arr)
        if not self.images:
            raise ValueError(f"no image of at least {patch}x{patch} px among {len(paths)} files")

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """n random patches as a float tensor (n, C, patch, patch) in [0, 1]."""
        p = self.patch
        out = np.empty((n, p, p, self.images[0].shape[2]), np.uint8)
        for i in range(n):
            img = self.images[rng.integers(len(self.images))]
            y = rng.integers(img.shape[0] - p + 1)
            x = rng.integers(img.shape[1] - p + 1)
            crop = img[y:y + p, x:x + p]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[i] = np.rot90(crop, k=int(rng.integers(4)))
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def colour_change(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random saturation (x0.5-1.6), mild channel mix and gamma (0.75-1.33) of an (..., 3) RGB array: uint8 in,
    uint8 out; float (0..1) in, float out. Colours the photo sets are short of (saturated, tinted)."""
    is_u8 = rgb.dtype == np.uint8
    x = rgb.astype(np.float32) / 255 if is_u8 else rgb.astype(np.float32)
    gray = x @ np.float32([0.299, 0.587, 0.114])
    x = gray[..., None] + np.float32(rng.uniform(0.5, 1.6)) * (x - gray[..., None])
    mix = np.eye(3, dtype=np.float32) + rng.normal(0, 0.06, (3, 3)).astype(np.float32)
    x = np.clip(x @ (mix / mix.sum(1, keepdims=True)).T, 0, 1) ** np.float32(np.exp(rng.uniform(-0.29, 0.29)))
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8) if is_u8 else x


def jitter_colours(batch: torch.Tensor, rng: np.random.Generator, p: float) -> torch.Tensor:
    """Each (3, h, w) image of ``batch`` (0..1) given a :func:`colour_change` with probability ``p``."""
    out = batch.clone()
    for i in range(len(batch)):
        if rng.random() < p:
            x = colour_change(batch[i].permute(1, 2, 0).numpy(), rng)
            out[i] = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)
    return out
