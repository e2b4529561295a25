"""Free-form hole masks for inpainting training, drawn on the fly (after LaMa's ``training/data/masks.py``).

Three stroke families (thin / medium / thick polylines drawn with ``cv2.line`` of random width, length and
angle), random boxes, and a mixture. LaMa's parameters are given for 256 px images; here they scale with
the image size. The hole ratio is kept within ``[min_ratio, max_ratio]`` (default 5-50 % of the area) by
redrawing, then by trimming or topping up. Deterministic: the same ``numpy.random.Generator`` state gives
the same mask.
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


def hole_ratio(mask: np.ndarray) -> float:
    return float(np.asarray(mask, bool).mean())
