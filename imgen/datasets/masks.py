"""Free-form hole masks for inpainting training, drawn on the fly (after LaMa's ``training/data/masks.py``).

Three stroke families (thin / medium / thick polylines drawn with ``cv2.line`` of random width, length and
angle), random boxes, and a mixture. LaMa's parameters are given for 256 px images; here they scale with
the image size. The hole ratio is kept within ``[min_ratio, max_ratio]`` (default 5-50 % of the area) by
redrawing, then by trimming or topping up. Deterministic: the same ``numpy.random.Generator`` state gives
the same mask.

Also object silhouettes (:func:`object_mask`): what a person paints to remove a thing from a photo (people,
quadrupeds, birds in flight, poles and signs, billboards and cars, generic blobs), at 5-30 % of the area, some
cut off by the photo's border, and the fixed object-mask set built from them on evaluation photos
(:func:`object_dev_mask`).
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


def _blob(rng: np.random.Generator, n: int) -> np.ndarray:
    """A generic thing: a body ellipse, a head, 1-4 limbs (ellipses or tapering polygons), sometimes a second
    part, all rotated together. uint8 (n, n), 1 = object."""
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
        _limb(m, (x0, y0), (x1, y1), rng.uniform(0.03, 0.08) * n, rng)
    if rng.random() < 0.3:                                              # a second part (a rider, a bag ...)
        cv2.ellipse(m, (int(c + rng.uniform(-1, 1) * bw), int(c + rng.uniform(-1, 1) * bh)),
                    (int(0.6 * bw), int(0.5 * bh)), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    rot = cv2.getRotationMatrix2D((c, c), float(rng.uniform(-30, 30)), 1.0)
    return cv2.warpAffine(m, rot, (n, n), flags=cv2.INTER_NEAREST)


def _limb(m: np.ndarray, p0, p1, width: float, rng: np.random.Generator) -> None:
    """A thick line or a tapering polygon from p0 to p1, drawn into ``m``."""
    (x0, y0), (x1, y1) = p0, p1
    if rng.random() < 0.5:
        cv2.line(m, (int(x0), int(y0)), (int(x1), int(y1)), 1, max(2, int(width)))
        return
    nx, ny = -(y1 - y0), x1 - x0
    k = width / max(1e-6, np.hypot(nx, ny))
    pts = np.array([[x0 + nx * k, y0 + ny * k], [x1 + 0.3 * nx * k, y1 + 0.3 * ny * k],
                    [x1 - 0.3 * nx * k, y1 - 0.3 * ny * k], [x0 - nx * k, y0 - ny * k]], np.int32)
    cv2.fillPoly(m, [pts], 1)


def _person(rng: np.random.Generator, n: int) -> np.ndarray:
    """Upright: head, torso, two legs apart, two arms (one sometimes raised), sometimes a bag or a board."""
    m = np.zeros((n, n), np.uint8)
    u = n / 8.0                                                          # a head's height
    cx, top = n / 2, 0.5 * u
    cv2.ellipse(m, (int(cx), int(top + 0.5 * u)), (int(0.38 * u), int(0.5 * u)), 0, 0, 360, 1, -1)
    sw = rng.uniform(0.8, 1.1) * u                                       # shoulders half-width
    torso = np.array([[cx - sw, top + 1.2 * u], [cx + sw, top + 1.2 * u], [cx + 0.75 * sw, top + 4 * u],
                      [cx - 0.75 * sw, top + 4 * u]], np.int32)
    cv2.fillPoly(m, [torso], 1)
    stride = rng.uniform(0.1, 0.9) * u
    for side in (-1, 1):
        _limb(m, (cx + side * 0.4 * sw, top + 3.8 * u), (cx + side * (0.4 * sw + stride), top + 7.4 * u),
              0.35 * u, rng)
        raised = side == 1 and rng.random() < 0.3
        end = (cx + side * 1.6 * sw, top + 0.2 * u) if raised else (cx + side * (sw + rng.uniform(0, 0.8) * u), top + 4.2 * u)
        _limb(m, (cx + side * sw, top + 1.4 * u), end, 0.28 * u, rng)
    if rng.random() < 0.3:                                               # a bag, a surfboard, a child
        cv2.ellipse(m, (int(cx + rng.choice([-1, 1]) * 1.5 * sw), int(top + 4 * u)),
                    (int(rng.uniform(0.5, 1.2) * u), int(rng.uniform(0.8, 3) * u)), float(rng.uniform(-20, 20)),
                    0, 360, 1, -1)
    return m


def _animal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Side view of a quadruped: a long body, four legs, a neck and head (raised or grazing), a tail."""
    m = np.zeros((n, n), np.uint8)
    c = n / 2
    bw, bh = rng.uniform(0.22, 0.32) * n, rng.uniform(0.1, 0.16) * n
    cv2.ellipse(m, (int(c), int(c)), (int(bw), int(bh)), 0, 0, 360, 1, -1)
    leg = rng.uniform(0.12, 0.3) * n
    for x in (-0.75, -0.5, 0.5, 0.75):
        x0 = c + x * bw
        _limb(m, (x0, c + 0.5 * bh), (x0 + rng.uniform(-0.05, 0.05) * n, c + bh + leg), 0.035 * n, rng)
    side = rng.choice([-1, 1])
    neck_up = rng.uniform(-0.2, 0.35) * n                                # < 0: grazing
    hx, hy = c + side * (bw + 0.08 * n), c - neck_up
    _limb(m, (c + side * 0.8 * bw, c - 0.3 * bh), (hx, hy), 0.06 * n, rng)
    cv2.ellipse(m, (int(hx + side * 0.04 * n), int(hy)), (int(0.07 * n), int(0.045 * n)),
                float(rng.uniform(-30, 30)), 0, 360, 1, -1)
    cv2.line(m, (int(c - side * bw), int(c - 0.2 * bh)), (int(c - side * (bw + 0.08 * n)), int(c + 0.4 * bh)), 1,
             max(2, int(0.02 * n)))
    return m


def _bird(rng: np.random.Generator, n: int) -> np.ndarray:
    """A bird in flight: a small body and two long wings (an eagle on the sky)."""
    m = np.zeros((n, n), np.uint8)
    c = n / 2
    span, chord = rng.uniform(0.35, 0.48) * n, rng.uniform(0.06, 0.12) * n
    lift = rng.uniform(-0.15, 0.2) * n
    for side in (-1, 1):
        wing = np.array([[c, c - chord], [c + side * 0.5 * span, c - lift - chord], [c + side * span, c - lift * 1.3],
                         [c + side * 0.55 * span, c - lift + chord * 0.6], [c, c + chord]], np.int32)
        cv2.fillPoly(m, [wing], 1)
    cv2.ellipse(m, (int(c), int(c)), (int(0.05 * n), int(0.16 * n)), 0, 0, 360, 1, -1)
    cv2.ellipse(m, (int(c), int(c - 0.18 * n)), (int(0.035 * n), int(0.045 * n)), 0, 0, 360, 1, -1)
    tail = np.array([[c - 0.04 * n, c + 0.12 * n], [c + 0.04 * n, c + 0.12 * n], [c + 0.07 * n, c + 0.26 * n],
                     [c - 0.07 * n, c + 0.26 * n]], np.int32)
    cv2.fillPoly(m, [tail], 1)
    return m


def _pole(rng: np.random.Generator, n: int) -> np.ndarray:
    """A post, a lamp post or a street sign: a tall thin pole with a sign, a lamp or a board on top."""
    m = np.zeros((n, n), np.uint8)
    c, w = n / 2, rng.uniform(0.015, 0.04) * n
    top = rng.uniform(0.05, 0.3) * n
    m[int(top):, int(c - w):int(c + w) + 1] = 1
    kind = rng.integers(4)
    s = rng.uniform(0.12, 0.3) * n
    if kind == 0:                                                        # a rectangular sign
        cv2.rectangle(m, (int(c - s), int(top)), (int(c + s), int(top + rng.uniform(0.4, 1.0) * s)), 1, -1)
    elif kind == 1:                                                      # a round sign
        cv2.circle(m, (int(c), int(top + 0.5 * s)), int(0.5 * s), 1, -1)
    elif kind == 2:                                                      # a lamp on an arm
        side = rng.choice([-1, 1])
        cv2.line(m, (int(c), int(top)), (int(c + side * s), int(top - 0.1 * s)), 1, max(2, int(w)))
        cv2.ellipse(m, (int(c + side * s), int(top)), (int(0.3 * s), int(0.15 * s)), 0, 0, 360, 1, -1)
    else:                                                                # a triangle, point up
        tri = np.array([[c, top - 0.3 * s], [c - 0.6 * s, top + 0.7 * s], [c + 0.6 * s, top + 0.7 * s]], np.int32)
        cv2.fillPoly(m, [np.clip(tri, 0, n - 1)], 1)
    return m


def _board(rng: np.random.Generator, n: int) -> np.ndarray:
    """A billboard or a shop sign on two legs, or a parked vehicle's box-and-wheels outline."""
    m = np.zeros((n, n), np.uint8)
    c = n / 2
    bw, bh = rng.uniform(0.25, 0.45) * n, rng.uniform(0.1, 0.25) * n
    y0 = c - bh
    if rng.random() < 0.5:
        cv2.rectangle(m, (int(c - bw), int(y0)), (int(c + bw), int(c + bh)), 1, -1)
        for x in (-0.6, 0.6):
            m[int(c + bh):int(c + bh + rng.uniform(0.1, 0.3) * n), int(c + x * bw - 0.02 * n):int(c + x * bw + 0.02 * n)] = 1
    else:                                                                # a car: body, cabin, wheels
        cv2.rectangle(m, (int(c - bw), int(c - 0.3 * bh)), (int(c + bw), int(c + 0.6 * bh)), 1, -1)
        cab = np.array([[c - 0.6 * bw, c - 0.3 * bh], [c - 0.35 * bw, c - bh], [c + 0.4 * bw, c - bh],
                        [c + 0.65 * bw, c - 0.3 * bh]], np.int32)
        cv2.fillPoly(m, [cab], 1)
        for x in (-0.65, 0.65):
            cv2.circle(m, (int(c + x * bw), int(c + 0.6 * bh)), int(0.32 * bh), 1, -1)
    return m


SILHOUETTES = {"person": _person, "animal": _animal, "bird": _bird, "pole": _pole, "board": _board, "thing": _blob}
BORDER_SHARE = 0.3     # of object masks that run into the photo's border (cut off by the frame)


def _silhouette(rng: np.random.Generator, n: int = 256, kind: str | None = None) -> np.ndarray:
    """An object-like shape of ``kind`` (random if None) on an n x n canvas, sometimes mirrored and slightly
    tilted. uint8, 1 = object."""
    kind = kind or list(SILHOUETTES)[int(rng.integers(len(SILHOUETTES)))]
    m = SILHOUETTES[kind](rng, n)
    if rng.random() < 0.5:
        m = np.ascontiguousarray(m[:, ::-1])
    if kind != "thing":
        rot = cv2.getRotationMatrix2D((n / 2, n / 2), float(rng.uniform(-8, 8)), 1.0)
        m = cv2.warpAffine(m, rot, (n, n), flags=cv2.INTER_NEAREST)
    return m


def object_mask(h: int, w: int, rng: np.random.Generator, min_ratio: float = 0.05, max_ratio: float = 0.3,
                kind: str | None = None, border: float = BORDER_SHARE) -> np.ndarray:
    """One object silhouette (a person, an animal, a bird, a pole or sign, a board or car, or a generic thing;
    ``kind`` picks one) covering a share of the area drawn uniformly from [min_ratio, max_ratio] (within a few
    %), placed at random. With chance ``border`` it runs into the photo's border (a person or pole standing on
    the bottom edge, anything else on a random side) and is cut off there, as objects in photos are; otherwise
    it lies wholly inside. bool (h, w), True = hole."""
    target = rng.uniform(min_ratio, max_ratio) * h * w
    shape = _silhouette(rng, kind=kind)
    ys, xs = np.nonzero(shape)
    shape = shape[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    cut = rng.uniform(0.1, 0.35) if rng.random() < border else 0.0     # the share of the object beyond the border
    scale = np.sqrt(target / max(1, shape.sum()) / (1.0 - cut))
    sh, sw = shape.shape
    scale = min(scale, h / sh, w / sw)                                   # must fit
    nh, nw = max(1, int(round(sh * scale))), max(1, int(round(sw * scale)))
    obj = cv2.resize(shape, (nw, nh), interpolation=cv2.INTER_NEAREST) > 0
    y, x = int(rng.integers(0, h - nh + 1)), int(rng.integers(0, w - nw + 1))
    if cut:
        side = 0 if kind in ("person", "pole") or rng.random() < 0.4 else int(rng.integers(4))
        over = (int(cut * nh), int(cut * nw))
        y, x = ((h - nh + over[0], x), (y, w - nw + over[1]), (-over[0], x), (y, -over[1]))[side]
    mask = np.zeros((h, w), bool)
    ty0, tx0 = max(0, y), max(0, x)
    ty1, tx1 = min(h, y + nh), min(w, x + nw)
    mask[ty0:ty1, tx0:tx1] = obj[ty0 - y:ty1 - y, tx0 - x:tx1 - x]
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    for _ in range(64):          # a tall pole that the frame stopped short of its area: drawn more loosely
        if mask.mean() >= min_ratio:
            break
        mask = cv2.dilate(mask.astype(np.uint8), k).astype(bool)
    return mask


OBJECT_DEV_SEED = 16


def object_dev_mask(index: int, h: int, w: int, seed: int = OBJECT_DEV_SEED) -> np.ndarray:
    """The object-mask set: the mask of the ``index``-th photo (sorted file-name order, from 0) of an evaluation
    folder, drawn by :func:`object_mask` (5-30 %, a third cut by the border) with
    ``numpy.random.default_rng([seed, index])``."""
    return object_mask(h, w, np.random.default_rng([seed, index]))


def hole_ratio(mask: np.ndarray) -> float:
    return float(np.asarray(mask, bool).mean())
