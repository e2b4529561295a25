"""Tint: does a fill keep the colour of a smooth surround? A set of synthetic skies, where the truth under an
object-shaped hole is known.

Each picture is a smooth sky-like gradient (clear blue, hazy, dusk, overcast; mostly vertical, slightly curved)
with faint sensor-like noise on top (sigma 1.5 per channel, slightly correlated), and an object silhouette
(:func:`imgen.datasets.masks.object_mask`) as the hole. The measure is CIE Lab ΔE (CIE76, the Euclidean distance
in L*a*b*) between the fill blurred by 3 px (Gaussian sigma) and the noiseless sky, over the hole's pixels of
the whole set: the mean and the 99th percentile. A fill that copies the noise of the sky scores near 0; one that
darkens or greens the hole scores its colour shift.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from skimage.color import rgb2lab

from ..datasets.masks import object_mask

SEED = 28
BLUR = 3.0              # px, Gaussian sigma applied to the fill before it is compared
NOISE = 1.5             # per-channel sigma of the sky's noise, in 0-255 units
# (top, horizon) colours of a few skies, sRGB 0-255
PALETTES = (
    ((38, 92, 176), (150, 196, 235)),     # clear blue
    ((70, 130, 200), (200, 220, 236)),    # hazy blue
    ((58, 72, 140), (240, 170, 120)),     # dusk
    ((120, 128, 140), (196, 200, 206)),   # overcast
    ((20, 60, 140), (110, 170, 220)),     # deep blue
)


def sky(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A noiseless sky gradient, float32 (h, w, 3) in 0-255: two palette colours (jittered) blended along a
    direction within 30 degrees of vertical, with a gentle curve."""
    top, bottom = (np.float32(c) + rng.uniform(-12, 12, 3) for c in PALETTES[int(rng.integers(len(PALETTES)))])
    a = np.deg2rad(rng.uniform(-30, 30))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = ((yy - h / 2) * np.cos(a) + (xx - w / 2) * np.sin(a)) / max(h, w) + 0.5
    t = np.clip(t, 0, 1) ** rng.uniform(0.7, 1.5)
    return np.clip(top + (bottom - top) * t[:, :, None], 0, 255).astype(np.float32)


def tint_set(n: int = 24, h: int = 320, w: int = 480, seed: int = SEED):
    """``n`` (noisy sky uint8 (h, w, 3), noiseless sky float32, hole bool) triples, fixed by ``seed``."""
    import cv2
    out = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        clean = sky(h, w, rng)
        noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 0.6)
        noise *= NOISE / max(float(noise.std()), 1e-6)
        photo = np.clip(np.round(clean + noise), 0, 255).astype(np.uint8)
        out.append((photo, clean, object_mask(h, w, rng)))
    return out


def delta_e(fill: np.ndarray, truth: np.ndarray, hole: np.ndarray, blur: float = BLUR) -> np.ndarray:
    """CIE76 ΔE per hole pixel between ``fill`` blurred by ``blur`` px and ``truth`` (RGB, 0-255)."""
    import cv2
    f = cv2.GaussianBlur(np.asarray(fill, np.float32), (0, 0), blur) if blur > 0 else np.asarray(fill, np.float32)
    lab_f = rgb2lab(np.clip(f, 0, 255) / 255.0)
    lab_t = rgb2lab(np.clip(np.asarray(truth, np.float32), 0, 255) / 255.0)
    return np.sqrt(((lab_f - lab_t) ** 2).sum(axis=2))[np.asarray(hole, bool)]


def summarise(errors: list[np.ndarray]) -> dict:
    """Mean and 99th percentile of ΔE over every hole pixel of the set."""
    e = np.concatenate(errors) if errors else np.zeros(0)
    return {"delta_e_mean": round(float(e.mean()), 3) if e.size else None,
            "delta_e_p99": round(float(np.percentile(e, 99)), 3) if e.size else None, "pixels": int(e.size)}


def evaluate_tint(model: Any = "context-fill", n: int = 24, device: str | None = None) -> dict:
    """Every picture of :func:`tint_set` filled by ``model`` (a name, module or inpainter; the whole picture at its
    own size, no grow or feather), ΔE pooled over the set (:func:`summarise`) and per picture."""
    from ..tasks.inpaint import get_inpainter, inpaint_image
    inpainter = get_inpainter(model, device)
    errors, per = [], []
    for k, (photo, clean, hole) in enumerate(tint_set(n)):
        out = np.asarray(inpaint_image(photo, hole, model=inpainter, mode="resize", max_side=max(photo.shape)).image)
        if not np.array_equal(out[~hole], photo[~hole]):
            raise RuntimeError(f"sky {k}: pixels outside the hole changed")
        e = delta_e(out, clean, hole)
        errors.append(e)
        per.append({"sky": k, "hole_ratio": round(float(hole.mean()), 4), "delta_e_mean": round(float(e.mean()), 3),
                    "delta_e_p99": round(float(np.percentile(e, 99)), 3)})
    name = model if isinstance(model, str) else type(model).__name__
    return {"task": "inpaint-tint", "model": name, "backend": getattr(inpainter, "backend", ""), "n": n,
            "blur_px": BLUR, "noise": NOISE, "seed": SEED, **summarise(errors), "per_image": per}


def format_table(report: dict) -> str:
    return (f"inpaint tint · {report['model']} · {report['n']} synthetic skies with object holes "
            f"({report.get('backend', '')})\n"
            f"CIE76 ΔE of the fill (blurred {report['blur_px']:g} px) against the noiseless sky, over "
            f"{report['pixels']} hole pixels: mean {report['delta_e_mean']:.3f}, p99 {report['delta_e_p99']:.3f}")
