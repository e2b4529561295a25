"""Folders of images in the shared data's layout (``../shared/data``: ``photos/cbsd432``, ``faces/kaokore128``...),
and the square resize the generators' trainers keep images at."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"   # the shared data beside the repository

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(folders: Iterable[str | Path]) -> list[Path]:
    """Every image file directly inside the given folders, sorted by name within each folder."""
    out: list[Path] = []
    for folder in folders:
        out += sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return out


def square_rgb(path: str | Path, size: int) -> np.ndarray:
    """An image as (size, size, 3) uint8 RGB: transparency composited on white, then area-resized."""
    from ..image_io import load_image
    a = np.asarray(load_image(path, mode="RGBA"), np.float32)
    rgb = a[..., :3] * (a[..., 3:] / 255) + 255 * (1 - a[..., 3:] / 255)
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).round().clip(0, 255).astype(np.uint8)
