"""Denoising benchmark with the shared protocol (see ../shared/data/README.md).

For the k-th image in sorted file-name order (k from 0): noise = default_rng(k).standard_normal(shape) * sigma
in [0, 255] float space, added without clipping; the output is clipped and rounded to uint8; PSNR and SSIM
over the whole image (RGB for colour sets, the single channel for gray sets).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..image_io import load_image
from ..image_io import to_uint8
from ..tasks.denoise import denoise_array, get_denoiser
from ..datasets.folders import list_images
from ..metrics.fidelity import psnr, ssim


def protocol_noise(k: int, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    return np.random.default_rng(k).standard_normal(shape) * sigma


class BM3DDenoiser:
    """Optional offline baseline via the PyPI ``bm3d`` package (its licence forbids network/commercial use,
    so it is never offered in the app)."""

    def __init__(self):
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise SystemExit("--model bm3d needs the optional `bm3d` package (pip install bm3d; non-commercial licence)")

    def __call__(self, noisy, sigma, progress=None):
        import bm3d
        if np.array_equal(noisy[:, :, 0], noisy[:, :, 1]):
            out = bm3d.bm3d(noisy[:, :, 0] / 255.0, sigma / 255.0)[:, :, None].repeat(3, 2)
        else:
            out = bm3d.bm3d_rgb(noisy / 255.0, sigma / 255.0)
        return np.asarray(out) * 255.0


def evaluate_denoise(data: str | Path, sigmas=(15, 25, 50), gray: bool = False, limit: int | None = None,
                     model: str = "denoise-unet", device: str | None = None, progress: bool = True) -> dict:
    paths = list_images([data])[: limit or None]
    if not paths:
        raise SystemExit(f"no images in {data}")
    denoiser = BM3DDenoiser() if model == "bm3d" else get_denoiser(model, device)
    images = [np.asarray(load_image(p, mode="L" if gray else "RGB")) for p in paths]
    # warm-up (first call allocates, loads kernels): not part of the timing
    denoise_array(images[0][:64, :64].astype(np.float32), 25.0, denoiser)
    results = []
    for sigma in sigmas:
        ps, ss, secs, mps = [], [], 0.0, 0.0
        it = enumerate(images)
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(images), desc=f"{model} sigma={sigma}", leave=False)
        for k, clean in it:
            noisy = clean.astype(np.float64) + protocol_noise(k, clean.shape, sigma)
            t0 = time.perf_counter()
            out = to_uint8(denoise_array(noisy, sigma, denoiser))
            secs += time.perf_counter() - t0
            mps += clean.shape[0] * clean.shape[1] / 1e6
            ps.append(psnr(clean, out))
            ss.append(ssim(clean, out))
        results.append({"sigma": sigma, "psnr": round(float(np.mean(ps)), 3), "ssim": round(float(np.mean(ss)), 4),
                        "seconds_per_mp": round(secs / mps, 3), "n": len(images)})
    return {"task": "denoise", "model": model, "data": str(data), "gray": gray, "results": results}


def format_table(report: dict) -> str:
    lines = [f"{report['task']} · {report['model']} · {report['data']}{' (gray)' if report.get('gray') else ''}",
             f"{'sigma':>6} {'PSNR':>8} {'SSIM':>7} {'s/MP':>7} {'n':>4}"]
    for r in report["results"]:
        lines.append(f"{r['sigma']:>6} {r['psnr']:>8.2f} {r['ssim']:>7.4f} {r['seconds_per_mp']:>7.3f} {r['n']:>4}")
    return "\n".join(lines)


def sample_sheet(data: str | Path, out: str | Path, model: str = "denoise-unet", sigma: float = 25, n: int = 4,
                 crop: int = 192) -> None:
    """A PNG with one row per image: noisy | denoised | clean, on centre crops (protocol noise)."""
    from PIL import Image
    rows = []
    for k, p in enumerate(list_images([data])[:n]):
        clean = np.asarray(load_image(p, mode="RGB"))
        h, w = clean.shape[:2]
        clean = clean[(h - crop) // 2:(h + crop) // 2, (w - crop) // 2:(w + crop) // 2]
        noisy = clean.astype(np.float64) + protocol_noise(k, clean.shape, sigma)
        den = to_uint8(denoise_array(noisy, sigma, get_denoiser(model)))
        rows.append(np.concatenate([to_uint8(noisy), den, clean], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
