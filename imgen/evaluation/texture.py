"""Texture measures for inpainting, inside the hole only (whole-image PSNR rewards blur; these do not).

- **gradient ratio**: mean Sobel gradient magnitude (of the luminance) of the result inside the hole eroded by
  3 px, over the same for the photo. 1.0 = as much detail as the photo; a blur scores well below 1.
- **texture SWD**: sliced Wasserstein distance (Karras et al. 2018, "Progressive growing of GANs", appendix D)
  between 7x7 patches of a 3-level Laplacian pyramid (band-pass levels at full, 1/2 and 1/4 scale; OpenCV's
  5-tap pyrDown/pyrUp) of the result and of the photo, taken at the hole's pixels of each level (at most
  4096 per image and level, same positions in both, fixed seed), pooled over a whole set, each set of patch
  descriptors normalised per channel by its own mean and std, 256 random unit directions; reported x10^3
  and averaged over the levels (lower = closer).

The gradient ratio of a set is the mean of the per-image ratios. On places2_512_freeform these reproduce the
figures of ../shared/notes/inpaint-texture.md within a few units (Telea 0.229 / 155, inpaint-net 0.216 / 186,
the photo blurred by 2 px 0.392 / 67).

Use :class:`TextureStats`: ``add(reference, result, hole)`` per image, then ``grad_ratio()`` / ``swd()``.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..metrics.swd import normalise_patches, sliced_wasserstein

LEVELS = 3
PATCH = 7
ERODE = 3
DIRECTIONS = 256
PATCHES_PER_IMAGE = 4096       # per level; sampled (same positions for result and photo) with a fixed seed
SEED = 0


def _gray(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    return a if a.ndim == 2 else a[:, :, :3] @ np.float32([0.299, 0.587, 0.114])


def gradient_energy(image: np.ndarray, region: np.ndarray) -> float:
    """Sum of the Sobel gradient magnitude of the luminance over ``region`` (bool)."""
    g = _gray(image)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return float(np.sqrt(gx * gx + gy * gy)[region].sum())


def _disc(px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))


def eroded(hole: np.ndarray, px: int = ERODE) -> np.ndarray:
    """The hole shrunk by ``px`` (the image border counts as hole, so a hole touching it stays there)."""
    return cv2.erode(np.asarray(hole, np.uint8), _disc(px), borderType=cv2.BORDER_CONSTANT, borderValue=1).astype(bool)


def laplacian_pyramid(image: np.ndarray, levels: int = LEVELS) -> list[np.ndarray]:
    """Band-pass levels at full, 1/2, 1/4 ... scale (the Gaussian residual is dropped); float32, channels last."""
    g = np.asarray(image, np.float32)
    if g.ndim == 2:
        g = g[:, :, None]
    out = []
    for _ in range(levels):
        down = cv2.pyrDown(g)
        down = down[:, :, None] if down.ndim == 2 else down
        up = cv2.pyrUp(down, dstsize=(g.shape[1], g.shape[0]))
        out.append(g - (up[:, :, None] if up.ndim == 2 else up))
        g = down
    return out


def _level_masks(hole: np.ndarray, levels: int = LEVELS) -> list[np.ndarray]:
    m = np.asarray(hole, np.float32)
    out = [m > 0.5]
    for _ in range(levels - 1):
        m = cv2.pyrDown(m)
        out.append(m > 0.5)
    return out


def patches_at(level: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int = PATCH) -> np.ndarray:
    """(n, size*size*c) patches centred at (ys, xs); the image is reflected at its border."""
    r = size // 2
    pad = cv2.copyMakeBorder(level, r, r, r, r, cv2.BORDER_REFLECT_101)
    pad = pad[:, :, None] if pad.ndim == 2 else pad
    dy, dx = np.mgrid[0:size, 0:size]
    return pad[ys[:, None] + dy.ravel()[None], xs[:, None] + dx.ravel()[None]].reshape(len(ys), -1)


class PatchSets:
    """Two pooled sets of 7x7 patches per Laplacian level (a result's, and what it is compared with) and their
    sliced Wasserstein distance: the shared part of :class:`TextureStats` and :class:`RingStats`."""

    def __init__(self, patches_per_image: int = PATCHES_PER_IMAGE, seed: int = SEED):
        self.per_image = patches_per_image
        self.rng = np.random.default_rng(seed)
        self.ratios: list[float] = []
        self.desc: list[tuple[list, list]] = [([], []) for _ in range(LEVELS)]
        self.channels = 3

    def grad_ratio(self) -> float | None:
        """The mean of the per-image ratios (images whose eroded hole is empty or flat are left out)."""
        return float(np.mean(self.ratios)) if self.ratios else None

    def swd_levels(self) -> list[float | None]:
        out = []
        for res, ref in self.desc:
            if not res:
                out.append(None)
                continue
            a = normalise_patches(np.concatenate(res), self.channels, channels_last=True)
            b = normalise_patches(np.concatenate(ref), self.channels, channels_last=True)
            out.append(1e3 * sliced_wasserstein(a, b, DIRECTIONS, np.random.default_rng(SEED)))
        return out

    def swd(self) -> tuple[float | None, list[float | None]]:
        """(mean over levels, per level), x10^3."""
        levels = self.swd_levels()
        vals = [v for v in levels if v is not None]
        return (float(np.mean(vals)) if vals else None), levels


class TextureStats(PatchSets):
    """Accumulates the two measures over a set of (photo, result, hole) triples."""

    def add(self, reference: np.ndarray, result: np.ndarray, hole: np.ndarray) -> float | None:
        """Adds one image; returns its own gradient ratio (None when the eroded hole is empty or flat)."""
        hole = np.asarray(hole, bool)
        inner = eroded(hole)
        gr, gp = gradient_energy(result, inner), gradient_energy(reference, inner)
        if gp > 0:
            self.ratios.append(gr / gp)
        ref_pyr, res_pyr = laplacian_pyramid(reference), laplacian_pyramid(result)
        self.channels = ref_pyr[0].shape[2]
        for k, m in enumerate(_level_masks(hole)):
            ys, xs = np.nonzero(m)
            if not len(ys):
                continue
            if len(ys) > self.per_image:
                pick = self.rng.choice(len(ys), self.per_image, replace=False)
                ys, xs = ys[pick], xs[pick]
            self.desc[k][0].append(patches_at(res_pyr[k], ys, xs))
            self.desc[k][1].append(patches_at(ref_pyr[k], ys, xs))
        return gr / gp if gp > 0 else None


# ------------------------------------------------------------------------------- object removal: the ring
RING_GAP = 3                   # px between the hole and its ring (the hole dilated by this is left out)
RING_MIN, RING_MAX = 16, 64    # px; the ring's width is clamp(sqrt(hole area) / 2, RING_MIN, RING_MAX)


def _dilated(hole: np.ndarray, px: int) -> np.ndarray:
    return cv2.dilate(np.asarray(hole, np.uint8), _disc(px), borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def ring_width(hole: np.ndarray) -> int:
    """clamp(sqrt(area) / 2, 16, 64) px."""
    return int(np.clip(np.sqrt(float(np.count_nonzero(hole))) / 2.0, RING_MIN, RING_MAX))


def ring(hole: np.ndarray) -> np.ndarray:
    """The known surroundings a fill is compared with: the hole dilated by :func:`ring_width` px, less the hole
    dilated by ``RING_GAP`` px (the pixels right at the edge, where a mask may leave a soft object edge)."""
    hole = np.asarray(hole, bool)
    return _dilated(hole, ring_width(hole)) & ~_dilated(hole, RING_GAP)


def _mean_gradient(image: np.ndarray, region: np.ndarray) -> float:
    n = int(np.count_nonzero(region))
    return gradient_energy(image, region) / n if n else 0.0


class RingStats(PatchSets):
    """Object removal, where the truth in the hole is the object itself: the fill against the same result's own
    surroundings (:func:`ring`), pooled over a set.

    - ``grad_ratio()``: the mean over images of mean |Sobel| in the hole eroded by 3 px over the same in the ring
      (1.0 = as much detail as the surroundings; a blur is far below).
    - ``swd()``: the multi-scale texture SWD of :class:`TextureStats` (7x7 patches, 3 Laplacian levels, x10^3)
      between patches of the eroded hole and patches of the ring, the same number from each per image and level.
    """

    def add(self, result: np.ndarray, hole: np.ndarray) -> float | None:
        """Adds one result; returns its gradient ratio (None when the eroded hole is empty or the ring flat)."""
        hole = np.asarray(hole, bool)
        inner, around = eroded(hole), ring(hole)
        g_in, g_ring = _mean_gradient(result, inner), _mean_gradient(result, around)
        ratio = g_in / g_ring if inner.any() and g_ring > 0 else None
        if ratio is not None:
            self.ratios.append(ratio)
        pyr = laplacian_pyramid(result)
        self.channels = pyr[0].shape[2]
        for k, (mi, mr) in enumerate(zip(_level_masks(inner), _level_masks(around))):
            (iy, ix), (ry, rx) = np.nonzero(mi), np.nonzero(mr)
            n = min(self.per_image, len(iy), len(ry))
            if n == 0:
                continue
            a = self.rng.choice(len(iy), n, replace=False)
            b = self.rng.choice(len(ry), n, replace=False)
            self.desc[k][0].append(patches_at(pyr[k], iy[a], ix[a]))
            self.desc[k][1].append(patches_at(pyr[k], ry[b], rx[b]))
        return ratio
