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
