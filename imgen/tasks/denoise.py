"""Denoise: turn a user's image (any mode, any size) and a noise level into a clean image.

Gray images run through the same network as three equal channels. Alpha is split off and re-attached.
Large images are processed in overlapping tiles on CPU (a low peak memory); on a GPU in one piece when its
memory holds them (tiles otherwise). The noise level is given (0..255 scale) or estimated.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
import torch
from PIL import Image

from ..cancel import checkpoint
from ..device import whole_image_fits
from ..image_io import join_alpha, open_image, run_tiled, split_alpha, to_uint8
from ..runtime import ModelRunner, RunnerCache

DEFAULT_MODEL = "denoise-unet"
CLASSICAL = ("nlm",)
TILE, OVERLAP = 768, 128
GPU_BYTES_PER_PIXEL = 2048   # CUDA memory budget per input pixel: denoise-unet's layer outputs sum to 592 B (fp32)
SIGMA_MAX = 75.0

Progress = Callable[[int, int], None]


def estimate_sigma(arr: np.ndarray) -> float:
    """Blind noise-level estimate on the 0..255 scale (wavelet MAD, averaged over channels)."""
    from skimage.restoration import estimate_sigma as _est
    a = np.asarray(arr, np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if min(a.shape[:2]) < 8:
        return 0.0
    s = _est(a, channel_axis=2 if a.ndim == 3 else None, average_sigmas=True)
    return float(np.clip(s, 0.0, SIGMA_MAX))


class NetworkDenoiser(ModelRunner):
    """Runs a trained denoiser module on float arrays in 0..255 space (H, W, 3), tiled when large.

    On CPU it runs through ONNX Runtime, elsewhere through PyTorch (:class:`imgen.runtime.ModelRunner`). On CUDA
    an image runs in one piece when the GPU's free memory holds it (``whole``: None = decide by memory,
    True/False = always / never), falling back to tiles if it runs out.
    """

    input_names, what, default_multiple = ("x", "sigma"), "denoiser", 16

    def __init__(self, module: torch.nn.Module, tile: int = TILE, overlap: int = OVERLAP, backend: str | None = None,
                 whole: bool | None = None):
        super().__init__(module, backend)
        self.tile, self.overlap, self.whole = tile, overlap, whole

    def example_inputs(self):
        return torch.zeros(1, 3, 64, 64), torch.zeros(1)

    def _run(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return self.run(self.pad(x), torch.full((x.shape[0],), float(sigma)), size=x.shape[-2:])

    def _in_one_piece(self, x: torch.Tensor) -> bool:
        if self.onnx is not None or self.whole is False:
            return False
        return self.whole or whole_image_fits(self.device, x.shape[-2] * x.shape[-1], GPU_BYTES_PER_PIXEL)

    def __call__(self, noisy: np.ndarray, sigma: float, progress: Progress | None = None) -> np.ndarray:
        x = self.image_tensor(noisy)
        y = None
        if self._in_one_piece(x):
            try:
                y = self._run(x, sigma)
                if progress:
                    progress(1, 1)
            except torch.OutOfMemoryError:   # the estimate was optimistic: tiles after all
                torch.cuda.empty_cache()
        if y is None:
            y = run_tiled(lambda t: self._run(t, sigma), x, self.tile, self.overlap, progress, align=self.multiple)
        return self.image_array(y)


class NLMDenoiser:
    """OpenCV non-local means (h = 0.8 sigma), the classical comparison. Input is clipped to uint8 first."""

    def __call__(self, noisy: np.ndarray, sigma: float, progress: Progress | None = None) -> np.ndarray:
        u8 = to_uint8(noisy)
        h = max(0.8 * sigma, 1e-3)
        if u8.shape[2] == 3 and not _is_gray(u8):
            out = cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21)
        else:
            out = cv2.fastNlMeansDenoising(np.ascontiguousarray(u8[:, :, 0]), None, h, 7, 21)[:, :, None].repeat(3, 2)
        if progress:
            progress(1, 1)
        return out.astype(np.float32)


def _is_gray(a: np.ndarray) -> bool:
    return bool(np.array_equal(a[:, :, 0], a[:, :, 1]) and np.array_equal(a[:, :, 1], a[:, :, 2]))


_DENOISERS = RunnerCache(NetworkDenoiser, "denoising model")


def get_denoiser(name: str = DEFAULT_MODEL, device: str | None = None):
    """A callable ``(noisy HxWx3 float 0..255, sigma, progress) -> HxWx3 float`` for a model name ("nlm": OpenCV's
    non-local means), a loaded module, or a denoiser object (returned as it is)."""
    if name == "nlm":
        return NLMDenoiser()
    return _DENOISERS.get(name, device)


def denoise_array(noisy: np.ndarray, sigma: float, denoiser, progress: Progress | None = None) -> np.ndarray:
    """Denoise an (H, W) or (H, W, C) float/uint8 array on the 0..255 scale (unclipped input is fine).

    Gray input runs as three equal channels and comes back (H, W). Output is float, not yet clipped.
    """
    a = np.asarray(noisy, np.float32)
    gray = a.ndim == 2 or a.shape[2] == 1
    a3 = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2) if gray else a
    out = denoiser(a3, float(np.clip(sigma, 0.0, SIGMA_MAX)), progress)
    return out.mean(axis=2) if gray else out


@dataclass
class DenoiseResult:
    image: Image.Image
    sigma: float                      # the noise level used
    sigma_estimated: float | None     # the automatic estimate, when one was made
    seconds: float
    backend: str = ""
    notes: list[str] = field(default_factory=list)


def denoise_image(image, sigma: float | str = "auto", model: str = DEFAULT_MODEL, gray: bool = False,
                  device: str | None = None, progress: Progress | None = None) -> DenoiseResult:
    """Denoise a user's image (path, bytes, PIL or array). ``sigma``: "auto" or 0..75 (0..255 scale).

    The output keeps the input's size and alpha; gray (mode L/LA/I;16...) stays gray; ``gray=True``
    converts colour input to gray first.
    """
    img = open_image(image)
    base, alpha = split_alpha(img)
    if gray and base.mode != "L":
        base = base.convert("L")
    arr = np.asarray(base)
    notes: list[str] = []
    est = None
    if sigma is None or (isinstance(sigma, str) and sigma.strip().lower() == "auto"):
        est = estimate_sigma(arr)
        s = est
        notes.append(f"Estimated noise level: σ ≈ {est:.1f}")
    else:
        try:
            s = float(sigma)
        except (TypeError, ValueError):
            raise ValueError(f"The noise level must be 'auto' or a number between 0 and 75, "
                             f"not {str(sigma)[:40]!r}.") from None
        if not np.isfinite(s):
            raise ValueError("The noise level must be a number between 0 and 75.")
        if s < 0 or s > SIGMA_MAX:
            notes.append(f"Noise level {s:g} is outside 0–{SIGMA_MAX:g}; using {np.clip(s, 0, SIGMA_MAX):g}.")
            s = float(np.clip(s, 0, SIGMA_MAX))
    denoiser = get_denoiser(model, device)
    checkpoint()  # decoding and the noise estimate may have taken a while
    t0 = time.perf_counter()
    out = to_uint8(denoise_array(arr, s, denoiser, progress))
    seconds = time.perf_counter() - t0
    result = Image.fromarray(out, "L" if out.ndim == 2 else "RGB")
    return DenoiseResult(join_alpha(result, alpha), s, est, seconds, getattr(denoiser, "backend", "OpenCV"), notes)


@dataclass
class SyntheticNoiseTrial:
    noisy: Image.Image
    result: DenoiseResult
    psnr_noisy: float      # of the noisy image against the clean upload
    psnr_denoised: float   # of the result against the clean upload


def denoise_with_synthetic_noise(image, noise_sigma: float, sigma: float | str = "auto", seed: int = 0,
                                 **kwargs) -> SyntheticNoiseTrial:
    """The "try it" flow: add noise of ``noise_sigma`` to a clean image, denoise, score both against it."""
    from ..metrics.fidelity import psnr
    try:
        noise_sigma = float(noise_sigma)
    except (TypeError, ValueError):
        noise_sigma = float("nan")
    if not np.isfinite(noise_sigma) or noise_sigma < 0:
        raise ValueError("The added noise level must be a number of 0 or more.")
    clean = open_image(image)
    if kwargs.get("gray"):
        base, alpha = split_alpha(clean)
        clean = join_alpha(base.convert("L"), alpha)
    noisy = add_gaussian_noise(clean, noise_sigma, seed)
    res = denoise_image(noisy, sigma=sigma, **kwargs)
    ref = np.asarray(split_alpha(clean)[0])
    return SyntheticNoiseTrial(noisy, res, psnr(ref, np.asarray(split_alpha(noisy)[0])),
                               psnr(ref, np.asarray(split_alpha(res.image)[0])))


def add_gaussian_noise(image: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    """The "try it" helper: add Gaussian noise of ``sigma`` (0..255 scale), clipped to uint8; alpha kept."""
    base, alpha = split_alpha(open_image(image))
    a = np.asarray(base, np.float64)
    noisy = to_uint8(a + np.random.default_rng(seed).standard_normal(a.shape) * float(sigma))
    return join_alpha(Image.fromarray(noisy, base.mode), alpha)
