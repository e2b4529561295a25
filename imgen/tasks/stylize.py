"""Stylize: turn a user's photo (any mode, any size) into a painting, or give it the colours of a reference.

Two kinds of style:

- a trained painting model (task "stylize" in the registry; a CUT/FastCUT generator, :mod:`imgen.models.
  stylize_net`), run through ONNX Runtime on CPU (PyTorch elsewhere);
- ``"reference"``: the style of any picture the user gives, without training. ``method="texture"`` (the
  default) carries the reference's texture as well as its colours: multi-scale sliced optimal transport of
  Laplacian-pyramid patches (:mod:`imgen.tasks.texture_transfer`), run at a capped size like the network.
  The classical, instant colour and tone transfers: Reinhard et al. 2001 (match the mean and spread of each channel in CIE Lab; the default: it moves the
  overall palette and keeps the photo's own contrast structure) or histogram matching (each RGB channel's
  cumulative histogram mapped onto the reference's, as ``skimage.exposure.match_histograms``; stronger, can
  posterise).

Large photos: the network runs on the whole photo scaled so its long side is at most ``max_side`` (never
tiled: the generator's instance norm uses whole-image statistics, and tiles would each get their own).
The *change* it makes at that size (output - input) is upsampled to full size and added to the
full-resolution photo, so the result has the input's size and keeps its fine detail; memory stays a few
full-size buffers (a 12-megapixel photo takes < 1 GB). The reference transfer is a per-pixel colour map
(Lab affine or a lookup table) applied at full resolution in bands of rows.

``strength`` (0..1) blends with the original: 0 returns the input's pixels bit for bit. Alpha is split off
and re-attached unchanged; gray input comes back gray (the stylized colour image converted to luma).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np
import torch
from PIL import Image

from ..cancel import checkpoint
from ..image_io import join_alpha, open_image, split_alpha
from ..runtime import ModelRunner, RunnerCache
from .numbers import finite_number

REFERENCE = "reference"
METHODS = ("texture", "reinhard", "histogram")
COLOUR_METHODS = ("reinhard", "histogram")
DEFAULT_MAX_SIDE = 768             # processing size of the network (long side), chosen for speed
MAX_PROCESSING_SIDE = 2048         # larger processing sizes are capped (memory: ~1 GB of activations there)
DEFAULT_STRENGTH = 0.8
STATS_SIDE = 512                   # colour statistics are taken on copies at most this large (long side)
BAND_ROWS = 256                    # rows per band when a colour map is applied at full resolution

Progress = Callable[[int, int], None]


# ------------------------------------------------------------------------------------------- network
class NetworkStylizer(ModelRunner):
    """Runs a stylize generator on uint8 (h, w, 3) RGB -> float32 (h, w, 3) on the 0..255 scale (ONNX Runtime
    on CPU, else PyTorch; padding to the network's multiple and minimum side: :class:`imgen.runtime.ModelRunner`)."""

    what = "stylizer"
    default_multiple, default_min_side = 4, 16

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = self.image_tensor(rgb)
        return self.image_array(self.run(self.pad(x), size=tuple(x.shape[-2:])))


class BrushworkPass:
    """A style's patch-texture model (:class:`imgen.models.patch_texture.PatchTexture`) as a pass over float
    (h, w, 3) RGB on the 0..255 scale; PyTorch (its sorts and lookups have no ONNX Runtime path here)."""

    backend = "PyTorch"

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.device = module.span.device

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = self.module(ModelRunner.image_tensor(rgb).to(self.device)).float().cpu()
        return ModelRunner.image_array(y)


_STYLIZERS = RunnerCache(NetworkStylizer, "style model")
_BRUSHWORK = RunnerCache(BrushworkPass, "brushwork model")
BRUSHWORK_SUFFIX = "-texture"      # a style NAME's brushwork model is registered as NAME-texture


def brushwork_amount(strength: float) -> float:
    """How much of the brushwork pass a strength keeps: all of it from 50 % up, fading to none at 0 %.
    (A pixel blend of a painted texture with the photo's is mostly the photo's fine detail again, so the
    brushwork does not fade linearly with the colour and light change.)"""
    return min(1.0, 2.0 * strength)


def get_stylizer(model: Any, device: str | None = None):
    """A callable ``uint8 (h, w, 3) -> float (h, w, 3)`` for a registered model name, a loaded module, or a
    stylizer object / callable (returned as it is)."""
    return _STYLIZERS.get(model, device)


def get_brushwork(style: Any, device: str | None = None):
    """The brushwork pass registered for a style name (``NAME-texture``, task "stylize-texture"), or None."""
    if not isinstance(style, str):
        return None
    from ..store import StoreError, entries_for_task
    try:
        names = {e.name for e in entries_for_task("stylize-texture")}
    except StoreError:
        return None
    name = style + BRUSHWORK_SUFFIX
    return _BRUSHWORK.get(name, device) if name in names else None


def trained_styles() -> list[str]:
    """Names of the registered stylize models (task "stylize"), registry order; [] if none or unreadable."""
    from ..store import StoreError, entries_for_task
    try:
        return [e.name for e in entries_for_task("stylize")]
    except StoreError:
        return []


def default_style() -> str:
    """The first trained style, or "reference" when none is registered."""
    names = trained_styles()
    return names[0] if names else REFERENCE


# ------------------------------------------------------------------------------------ colour transfer
def _small(rgb: np.ndarray, side: int = STATS_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _weights_small(alpha: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Which pixels count for colour statistics: opaque ones (alpha > 0); None = all."""
    if alpha is None:
        return None
    a = alpha if alpha.shape == shape else cv2.resize(alpha, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    keep = a > 0
    return keep if keep.any() else None


def _lab(rgb_u8: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIE Lab (L 0..100, a/b about -128..127), OpenCV's D65 conversion."""
    return cv2.cvtColor(rgb_u8.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)


def lab_stats(rgb_u8: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation in Lab (over ``keep`` pixels if given)."""
    lab = _lab(rgb_u8).reshape(-1, 3)
    if keep is not None:
        lab = lab[keep.reshape(-1)]
    return lab.mean(0), lab.std(0)


def _apply_bands(rgb: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], strength: float) -> np.ndarray:
    """``rgb + strength * (fn(rgb) - rgb)`` band by band (bounded memory), rounded to uint8."""
    out = np.empty_like(rgb)
    for y0 in range(0, rgb.shape[0], BAND_ROWS):
        checkpoint()
        band = rgb[y0:y0 + BAND_ROWS]
        mapped = fn(band)
        if strength < 1:
            src = band.astype(np.float32)
            mapped = src + np.float32(strength) * (mapped - src)
        out[y0:y0 + BAND_ROWS] = np.clip(np.rint(mapped), 0, 255).astype(np.uint8)
    return out


def reinhard_map(src_stats, ref_stats) -> Callable[[np.ndarray], np.ndarray]:
    """The Lab mean/std transfer of Reinhard et al. (2001) as a function uint8 RGB -> float RGB 0..255."""
    (ms, ss), (mr, sr) = src_stats, ref_stats
    gain = np.clip(sr / np.maximum(ss, 1e-3), 0.0, 10.0).astype(np.float32)   # a flat channel: no blow-up
    offset = (mr - ms * gain).astype(np.float32)

    def fn(band: np.ndarray) -> np.ndarray:
        lab = _lab(band)
        lab *= gain
        lab += offset
        lab[..., 0] = np.clip(lab[..., 0], 0, 100)
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1) * 255.0
    return fn


def histogram_luts(src: np.ndarray, ref: np.ndarray, keep_src: np.ndarray | None = None,
                   keep_ref: np.ndarray | None = None) -> np.ndarray:
    """(3, 256) float lookup tables mapping each uint8 RGB channel of ``src`` onto ``ref``'s cumulative
    histogram (the algorithm of ``skimage.exposure.match_histograms``, restricted to ``keep`` pixels)."""
    luts = np.empty((3, 256), np.float64)
    for c in range(3):
        s = src[..., c] if keep_src is None else src[..., c][keep_src]
        r = ref[..., c] if keep_ref is None else ref[..., c][keep_ref]
        s_counts = np.bincount(s.reshape(-1), minlength=256)
        r_counts = np.bincount(r.reshape(-1), minlength=256)
        r_values = np.nonzero(r_counts)[0]
        s_q = np.cumsum(s_counts) / max(1, s.size)
        r_q = np.cumsum(r_counts[r_values]) / max(1, r.size)
        luts[c] = np.interp(s_q, r_q, r_values)
    return luts


def histogram_map(luts: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    lut = luts.astype(np.float32)

    def fn(band: np.ndarray) -> np.ndarray:
        return np.stack([lut[c][band[..., c]] for c in range(3)], axis=-1)
    return fn


def transfer_colours(rgb: np.ndarray, ref_rgb: np.ndarray, method: str = "reinhard", strength: float = 1.0,
                     alpha: np.ndarray | None = None, ref_alpha: np.ndarray | None = None) -> np.ndarray:
    """Colour/tone transfer of uint8 RGB ``rgb`` towards ``ref_rgb`` (both (h, w, 3)), blended by ``strength``.

    Statistics ignore fully transparent pixels of either image (``alpha``/``ref_alpha`` = 0).
    """
    if method == "reinhard":
        s_small = _small(rgb)
        r_small = _small(ref_rgb)
        fn = reinhard_map(lab_stats(s_small, _weights_small(alpha, s_small.shape[:2])),
                          lab_stats(r_small, _weights_small(ref_alpha, r_small.shape[:2])))
    elif method == "histogram":
        keep_s = None if alpha is None or not (alpha > 0).any() else alpha > 0
        keep_r = None if ref_alpha is None or not (ref_alpha > 0).any() else ref_alpha > 0
        fn = histogram_map(histogram_luts(rgb, ref_rgb, keep_s, keep_r))
    else:
        raise ValueError(f"The colour transfer method must be one of {', '.join(COLOUR_METHODS)}, not {method!r}.")
    return _apply_bands(rgb, fn, strength)


# ------------------------------------------------------------------------------------------------ task
def add_change(rgb: np.ndarray, small: np.ndarray, out_small: np.ndarray, strength: float) -> np.ndarray:
    """``rgb + strength * upsample(out_small - small)`` as uint8, the full-size result of a change made at a
    smaller size (bilinear upsampling of the change; the photo's full-resolution detail is kept)."""
    h, w = rgb.shape[:2]
    delta = out_small.astype(np.float32, copy=False) - small.astype(np.float32)
    if delta.shape[:2] != (h, w):
        delta = cv2.resize(delta, (w, h), interpolation=cv2.INTER_LINEAR)
    if strength != 1:
        delta *= np.float32(strength)
    np.add(delta, rgb, out=delta)
    np.rint(delta, out=delta)
    np.clip(delta, 0, 255, out=delta)
    return delta.astype(np.uint8)


@dataclass
class StylizeResult:
    image: Image.Image               # the input's size; gray stays gray, alpha kept exactly
    style: str                       # the model name, or "reference"
    seconds: float                   # end to end (decoding excluded; model loading excluded)
    backend: str = ""
    processed_size: tuple[int, int] | None = None   # (w, h) the network ran at; None for reference / strength 0
    notes: list[str] = field(default_factory=list)


def stylize_image(image, style: Any = None, reference=None, strength: float = DEFAULT_STRENGTH,
                  max_side: int = DEFAULT_MAX_SIDE, method: str = "texture", progress: Progress | None = None,
                  device: str | None = None, brushwork: bool = True) -> StylizeResult:
    """Stylize ``image`` (path, bytes, PIL or array).

    ``style``: a registered stylize model's name (None: the first registered one, or "reference" if there
    is none), a loaded generator module, or ``"reference"`` (the style of ``reference``, an image
    in any form ``image`` accepts, by ``method`` "texture", "reinhard" or "histogram"). ``strength`` 0..1 blends with
    the original (0: the input's pixels unchanged). ``max_side``: the network's processing size (long side).
    ``brushwork``: after the network, run the style's brushwork pass (its paintings' patch texture, when one is
    registered as ``NAME-texture``) on the blended result, in full from strength 0.5 up
    (:func:`brushwork_amount`).
    """
    strength = finite_number(strength, "The strength")
    if not 0 <= strength <= 1:
        raise ValueError(f"The strength must be between 0 and 1 (0-100 %), not {strength:g}.")
    max_side = int(finite_number(max_side, "The processing size (max side)"))
    if max_side < 16:
        raise ValueError("The processing size (max side) must be at least 16 px.")
    notes: list[str] = []
    if max_side > MAX_PROCESSING_SIDE:
        notes.append(f"The processing size {max_side} px was capped at {MAX_PROCESSING_SIDE} px.")
        max_side = MAX_PROCESSING_SIDE
    if style is None or (isinstance(style, str) and not style.strip()):
        style = REFERENCE if reference is not None else default_style()
    is_ref = isinstance(style, str) and style.strip().lower() == REFERENCE
    if is_ref and method not in METHODS:
        raise ValueError(f"The reference method must be one of {', '.join(METHODS)}, not {method!r}.")
    if is_ref and reference is None:
        raise ValueError("Colours from a reference need a reference image: upload one.")
    img = open_image(image)
    base, alpha = split_alpha(img)
    gray = base.mode == "L"
    ref_img = open_image(reference) if is_ref else None
    stylizer = None if is_ref else get_stylizer(style, device)
    name = REFERENCE if is_ref else (style if isinstance(style, str) else type(style).__name__)

    t0 = time.perf_counter()
    if strength == 0:
        if progress:
            progress(1, 1)
        return StylizeResult(join_alpha(base, alpha), name, time.perf_counter() - t0,
                             "none (strength 0)", None, ["Strength 0 %: the image is returned unchanged."])
    rgb = np.asarray(base.convert("RGB") if gray else base)
    a = np.asarray(alpha) if alpha is not None else None
    h, w = rgb.shape[:2]
    processed = None
    if is_ref and method == "texture":
        from .texture_transfer import transfer_texture
        ref_base, ref_alpha = split_alpha(ref_img)
        ref_rgb = np.asarray(ref_base.convert("RGB"))
        scale = min(1.0, max_side / max(h, w))
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = rgb if scale == 1 else cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
        a_small = a if a is None or scale == 1 else cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
        styled = transfer_texture(small, ref_rgb, a_small, np.asarray(ref_alpha) if ref_alpha is not None else None)
        out = add_change(rgb, small, styled, strength)
        processed = (sw, sh)
        backend = "patch texture transfer (sliced optimal transport, NumPy/torch)"
        if scale < 1:
            notes.append(f"The texture transfer ran at {sw}×{sh} px (max side {max_side}); its changes were "
                         f"brought to the full {w}×{h} px.")
    elif is_ref:
        ref_base, ref_alpha = split_alpha(ref_img)
        ref_rgb = np.asarray(ref_base.convert("RGB"))
        out = transfer_colours(rgb, ref_rgb, method, strength, a,
                               np.asarray(ref_alpha) if ref_alpha is not None else None)
        backend = f"{'Reinhard Lab transfer' if method == 'reinhard' else 'histogram matching'} (NumPy/OpenCV)"
    else:
        scale = min(1.0, max_side / max(h, w))
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = rgb if scale == 1 else cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
        checkpoint()
        out_small = stylizer(small)
        checkpoint()
        backend = getattr(stylizer, "backend", "custom")
        brush = get_brushwork(style, device) if brushwork else None
        if brush is not None:
            if progress:
                progress(1, 2)
            src = small.astype(np.float32)
            blended = src + np.float32(strength) * (out_small - src)
            blended += np.float32(brushwork_amount(strength)) * (brush(blended) - blended)
            out_small, strength = blended, 1.0
            backend += f" + brushwork pass ({brush.backend})"
            checkpoint()
        if progress:
            progress(1, 1)
        out = add_change(rgb, small, out_small, strength)
        processed = (sw, sh)
        if scale < 1:
            notes.append(f"The painting model ran at {sw}×{sh} px (max side {max_side}); its changes were "
                         f"brought to the full {w}×{h} px, which keeps the photo's fine detail.")
    result = Image.fromarray(out, "RGB")
    if gray:
        result = result.convert("L")
    if progress and is_ref:
        progress(1, 1)
    seconds = time.perf_counter() - t0
    return StylizeResult(join_alpha(result, alpha), name, seconds, backend, processed, notes)

