"""Image quality metrics on uint8 arrays (whole image, all channels)."""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    mse = np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    reference, test = np.asarray(reference), np.asarray(test)
    channel_axis = 2 if reference.ndim == 3 else None
    return float(structural_similarity(reference.astype(np.float64), test.astype(np.float64),
                                       data_range=data_range, channel_axis=channel_axis))
