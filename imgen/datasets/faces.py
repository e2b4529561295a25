"""The generators' image sets: KaoKore faces and Noto emoji, their held-out splits, and loading them at 64 px."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from .folders import list_images, square_rgb

SETS = {"kaokore": "faces/kaokore128", "emoji": "emoji/noto72"}   # set name -> folder under the data root


def split_files(data: Path, name: str) -> tuple[list[Path], list[Path]]:
    """(training, held-out) images of a set. KaoKore has its own splits (``train_`` vs ``dev_``/``test_``);
    for the emoji, the 10 % of files with the lowest CRC32 of their name are held out (fixed, spread over the set)."""
    files = list_images([data / SETS[name]])
    if name == "kaokore":
        held = {f for f in files if not f.name.startswith("train_")}
    else:
        held = set(sorted(files, key=lambda f: (zlib.crc32(f.name.encode()), f.name))[:round(0.1 * len(files))])
    return [f for f in files if f not in held], [f for f in files if f in held]


def training_files(data: Path, name: str) -> list[Path]:
    files = split_files(data, name)[0]
    if not files:
        raise SystemExit(f"no training images in {data / SETS[name]}")
    return files


def load_set(files: list[Path], size: int = 64) -> torch.Tensor:
    """All images as one uint8 tensor (N, 3, size, size); RGBA (emoji) is composited on white."""
    out = np.empty((len(files), size, size, 3), np.uint8)
    for i, f in enumerate(files):
        out[i] = square_rgb(f, size)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
