"""Free-form hole masks for inpainting training, drawn on the fly (after LaMa's ``training/data/masks.py``).

Three stroke families (thin / medium / thick polylines drawn with ``cv2.line`` of random width, length and
angle), random boxes, and a mixture. LaMa's parameters are given for 256 px images; here they scale with
the image size. The hole ratio is kept within ``[min_ratio, max_ratio]`` (default 5-50 % of the area) by
redrawing, then by trimming or topping up. Deterministic: the same ``numpy.random.Generator`` state gives
the same mask.

Also object silhouettes (:func:`object_mask`): what a person paints to remove a thing, a body with a head and
limbs made of a union of ellipses and polygons, at 5-25 % of the area, and the fixed object-mask development
set built from them on the evaluation photos (:func:`object_dev_mask`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# LaMa's presets at 256 px: (min strokes, max strokes, max width, max length, box probability, box min, box max)
PRESETS = {
    "thin": dict(min_times=4, max_times=50, max_width=10, max_len=40, box_p=0.0, box_min=10, box_max=30),
    "medium": dict(min_times=4, max_times=5, max_width=50, max_len=100, box_p=0.3, box_min=10, box_max=50),
    "thick": dict(min_times=1, max_times=5, max_width=100, max_len=200, box_p=0.3, box_min=30, box_max=150),
}
KINDS = ("thin", "medium", "thick", "box")
MIXTURE = {"thin": 0.2, "medium": 0.3, "thick": 0.3, "box": 0.2}


def draw_strokes(mask: np.ndarray, rng: np.random.Generator, min_times: int, max_times: int, max_width: float,
                 max_len: float, max_angle: int = 4) -> None:
    """LaMa's random polylines: per stroke 1-5 segments, angle 0.01 + randint(max_angle) (radians, so the
    direction wanders), length 10 + randint(max_len), width 5 + randint(max_width). Drawn into ``mask`` (uint8)."""
    h, w = mask.shape
    for _ in range(int(rng.integers(min_times, max_times + 1))):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(max_angle))
            if rng.random() < 0.5:
                angle = 2 * np.pi - angle
            length = 10 + int(rng.integers(max(1, int(max_len))))
            width = 5 + int(rng.integers(max(1, int(max_width))))
            x2 = int(np.clip(x + length * np.sin(angle), 0, w - 1))
            y2 = int(np.clip(y + length * np.cos(angle), 0, h - 1))
            cv2.line(mask, (x, y), (x2, y2), 1, width)
            x, y = x2, y2


def draw_boxes(mask: np.ndarray, rng: np.random.Generator, n: int, min_size: float, max_size: float) -> None:
    h, w = mask.shape
    for _ in range(n):
        bw = int(rng.integers(int(min_size), max(int(min_size) + 1, int(min(max_size, w - 1)))))
        bh = int(rng.integers(int(min_size), max(int(min_size) + 1, int(min(max_size, h - 1)))))
        x, y = int(rng.integers(max(1, w - bw))), int(rng.integers(max(1, h - bh)))
        mask[y:y + bh, x:x + bw] = 1


@dataclass
class MaskGenerator:
    """``MaskGenerator()(h, w, rng) -> bool (h, w)``, True = hole.

    ``kind``: "thin", "medium", "thick", "box" or "mixed" (the default: 20/30/30/20 %).
    """

    kind: str = "mixed"
    min_ratio: float = 0.05
    max_ratio: float = 0.5
    tries: int = 8

    def __post_init__(self):
        if self.kind not in KINDS + ("mixed",):
            raise ValueError(f"unknown mask kind {self.kind!r}; choose from {', '.join(KINDS + ('mixed',))}")
        if not 0 <= self.min_ratio < self.max_ratio <= 1:
            raise ValueError("need 0 <= min_ratio < max_ratio <= 1")

    def _draw(self, h: int, w: int, kind: str, rng: np.random.Generator) -> np.ndarray:
        mask = np.zeros((h, w), np.uint8)
        s = min(h, w) / 256.0
        if kind == "box":
            draw_boxes(mask, rng, 1 + int(rng.integers(3)), 30 * s, 0.6 * min(h, w))
            return mask
        p = PRESETS[kind]
        draw_strokes(mask, rng, p["min_times"], p["max_times"], p["max_width"] * s, p["max_len"] * s)
        if p["box_p"] and rng.random() < p["box_p"]:
            draw_boxes(mask, rng, 1 + int(rng.integers(3)), p["box_min"] * s, p["box_max"] * s)
        return mask

    def __call__(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        kinds = list(MIXTURE)
        probs = np.array([MIXTURE[k] for k in kinds])
        mask = None
        for _ in range(self.tries):
            kind = self.kind if self.kind != "mixed" else kinds[int(rng.choice(len(kinds), p=probs))]
            mask = self._draw(h, w, kind, rng)
            r = mask.mean()
            if self.min_ratio <= r <= self.max_ratio:
                return mask.astype(bool)
        return self._fit(mask, rng)

    def _fit(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Bring the last draw into range: erode a too-large hole, add thick strokes to a too-small one."""
        h, w = mask.shape
        s = min(h, w) / 256.0
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        for _ in range(64):
            r = mask.mean()
            if r > self.max_ratio:
                mask = cv2.erode(mask, k)
            elif r < self.min_ratio:
                draw_strokes(mask, rng, 1, 1, 40 * s, 100 * s)
            else:
                break
        if mask.mean() > self.max_ratio:  # still too big (tiny images): keep a band of rows
            rows = max(1, int(self.max_ratio * h))
            mask[rows:] = 0
        if mask.mean() < self.min_ratio:  # still too small: a centred box of the minimum area
            bh = min(h, int(np.ceil(np.sqrt(self.min_ratio) * h)) + 1)
            bw = min(w, int(np.ceil(self.min_ratio * h * w / bh)) + 1)
            y, x = (h - bh) // 2, (w - bw) // 2
            mask[y:y + bh, x:x + bw] = 1
        return mask.astype(bool)


def _silhouette(rng: np.random.Generator, n: int = 256) -> np.ndarray:
    """An object-like shape on an n x n canvas: a body ellipse, a head, 1-4 limbs (ellipses or thick polygons),
    sometimes a ground shadow / second part, all rotated together. uint8, 1 = object."""
    m = np.zeros((n, n), np.uint8)
    c = n / 2
    bw, bh = rng.uniform(0.12, 0.3) * n, rng.uniform(0.12, 0.3) * n
    cv2.ellipse(m, (int(c), int(c)), (int(bw), int(bh)), 0, 0, 360, 1, -1)
    a = rng.uniform(0, 2 * np.pi)                                        # head
    r = rng.uniform(0.3, 0.7) * min(bw, bh)
    hx, hy = c + (bw + 0.4 * r) * np.cos(a), c + (bh + 0.4 * r) * np.sin(a)
    cv2.ellipse(m, (int(hx), int(hy)), (int(r), int(r * rng.uniform(0.7, 1.3))), float(np.degrees(a)), 0, 360, 1, -1)
    for _ in range(int(rng.integers(1, 5))):                            # limbs / branches / handles
        a = rng.uniform(0, 2 * np.pi)
        x0, y0 = c + 0.7 * bw * np.cos(a), c + 0.7 * bh * np.sin(a)
        length = rng.uniform(0.15, 0.35) * n
        x1, y1 = x0 + length * np.cos(a + rng.uniform(-0.6, 0.6)), y0 + length * np.sin(a + rng.uniform(-0.6, 0.6))
        width = rng.uniform(0.03, 0.08) * n
        if rng.random() < 0.5:
            cv2.line(m, (int(x0), int(y0)), (int(x1), int(y1)), 1, max(2, int(width)))
        else:                                                            # a tapering polygon
            nx, ny = -(y1 - y0), x1 - x0
            k = width / max(1e-6, np.hypot(nx, ny))
            pts = np.array([[x0 + nx * k, y0 + ny * k], [x1 + 0.3 * nx * k, y1 + 0.3 * ny * k],
                            [x1 - 0.3 * nx * k, y1 - 0.3 * ny * k], [x0 - nx * k, y0 - ny * k]], np.int32)
            cv2.fillPoly(m, [pts], 1)
    if rng.random() < 0.3:                                              # a second part (a rider, a bag ...)
        cv2.ellipse(m, (int(c + rng.uniform(-1, 1) * bw), int(c + rng.uniform(-1, 1) * bh)),
                    (int(0.6 * bw), int(0.5 * bh)), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    rot = cv2.getRotationMatrix2D((c, c), float(rng.uniform(-30, 30)), 1.0)
    return cv2.warpAffine(m, rot, (n, n), flags=cv2.INTER_NEAREST)


def object_mask(h: int, w: int, rng: np.random.Generator, min_ratio: float = 0.05,
                max_ratio: float = 0.25) -> np.ndarray:
    """One object silhouette covering a share of the area drawn uniformly from [min_ratio, max_ratio], scaled
    to that area (within a few %), placed at random wholly inside the image. bool (h, w), True = hole."""
    target = rng.uniform(min_ratio, max_ratio) * h * w
    shape = _silhouette(rng)
    ys, xs = np.nonzero(shape)
    shape = shape[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    scale = np.sqrt(target / max(1, shape.sum()))
    sh, sw = shape.shape
    scale = min(scale, h / sh, w / sw)                                   # must fit
    nh, nw = max(1, int(round(sh * scale))), max(1, int(round(sw * scale)))
    obj = cv2.resize(shape, (nw, nh), interpolation=cv2.INTER_NEAREST)
    y, x = int(rng.integers(0, h - nh + 1)), int(rng.integers(0, w - nw + 1))
    mask = np.zeros((h, w), bool)
    mask[y:y + nh, x:x + nw] = obj > 0
    return mask


OBJECT_DEV_SEED = 16


def object_dev_mask(index: int, h: int, w: int, seed: int = OBJECT_DEV_SEED) -> np.ndarray:
    """The object-mask development set: the mask of the ``index``-th photo (sorted file-name order, from 0) of
    an evaluation folder, drawn by :func:`object_mask` (5-25 %) with ``numpy.random.default_rng([seed, index])``."""
    return object_mask(h, w, np.random.default_rng([seed, index]))


def hole_ratio(mask: np.ndarray) -> float:
    return float(np.asarray(mask, bool).mean())
