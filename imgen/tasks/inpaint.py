"""Inpaint: fill the masked part of a user's image (any mode, any size) and leave every other pixel alone.

The mask (white / painted = hole) comes from a file, an array, or a Gradio ImageEditor value. It is
thresholded at 50 %, resized (nearest neighbour) to the photo if needed, optionally inverted, grown or
shrunk, and feathered. Two ways to run a model:

- ``mode="crop"`` (default): every group of masked regions is cut out with generous context around it,
  scaled down to at most ``max_side`` px if larger, filled, scaled back and pasted in. Cost follows the
  mask, not the photo: a brush stroke on a 12 MP photo takes well under a second or two.
- ``mode="resize"``: the whole image is scaled so its long side is at most ``max_side``, filled, scaled back.

Either way only pixels with a blend weight > 0 (the hole, plus ``feather`` px around it) change; all others
are bit-identical to the input. Every method's prediction outside the hole is the photo itself; the feather
fades the fill's colour step at the hole's edge out into the surroundings (the photo's own detail is kept). Alpha is kept exactly; gray images stay gray. Methods:

- "context-fill" (default): the object is rebuilt from its surroundings: PatchMatch completion with EM voting
  (the `pypatchmatch` library's compiled core) from sources near the hole, the coarse colour from the hole's
  boundary, and smooth surroundings (skies) carried on smoothly (:mod:`imgen.tasks.context_fill`);
- "pypatchmatch": the library's fill alone (7x7 patches, sources anywhere), for comparison;
- "net-patchmatch": the trained network decides layout and colour, the photo's own texture is laid on
  top (a PatchMatch field from the hole to the known pixels, guided by the network's fill; detail copied at
  the crop's full resolution in crop mode; :mod:`imgen.tasks.patchmatch`);
- "inpaint-net": the trained network alone (through ONNX Runtime on CPU);
- classical: "patchmatch" (exemplar: the photo's own pixels copied in, laid out by Telea's fill), OpenCV's
  "telea" and "ns" (Navier-Stokes).
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
from ..image_io import fit_max_side, join_alpha, open_image, split_alpha, to_uint8
from ..runtime import ModelRunner, RunnerCache
from .numbers import finite_number
from .context_fill import ContextFill, LibraryPatchMatch, patchmatch_available
from .patchmatch import exemplar_fill

NETWORK = "inpaint-net"
DEFAULT_MODEL = "context-fill"
FROM_THE_PHOTO = {"context-fill": ContextFill, "pypatchmatch": LibraryPatchMatch}   # no network needed
FROM_THE_PHOTO_READY = patchmatch_available()   # the library's compiled core loads on this machine
CLASSICAL = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
TEXTURED = {"net-patchmatch": (NETWORK, "detail"), "patchmatch": ("telea", "copy")}   # name: (guide, output)
TEXTURE_MAX_SIDE = 2048              # crop mode: texture at the crop's full resolution up to this size
CLASSICAL_RADIUS = 5                 # px; Telea r=5 reproduces the shared benchmark's reference numbers
MODES = ("crop", "resize")
MAX_SIDE = 512
MIN_CONTEXT = 64                     # px of context at least on each side of a masked region (crop mode)
CONTEXT = 1.0                        # ... or this times the region's box size, whichever is larger
MAX_REGIONS = 48                     # more separate regions than this: one crop around all of them
MAX_FEATHER = 256                    # px; the app's slider goes to 32
DEFAULT_GROW, DEFAULT_FEATHER = 4, 3  # px: the app's defaults; together they cover an object's soft edge of up to
                                      # 3 px just outside a mask drawn at its hard edge (no ghost comes back)
MIN_NETWORK_SIDE = 32                # px; thinner inputs are padded for the network (reflection padding inside it)

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------- masks
def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bool mask to (width, height) by nearest neighbour."""
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)


def load_mask(mask: Any, size: tuple[int, int] | None = None) -> tuple[np.ndarray, list[str]]:
    """A mask (path, bytes, PIL image, array; any mode) as a bool hole array, thresholded at 50 %.

    White / opaque = hole. Masks with alpha: if the visible colour is dark everywhere (e.g. a black brush
    layer, or an alpha-only mask), the alpha channel is the mask; otherwise luminance x alpha. Bool arrays
    are used as they are. ``size`` = the photo's (width, height): a mask of another size is resized
    (nearest neighbour) and a note says so. Returns (mask, notes).
    """
    notes: list[str] = []
    if isinstance(mask, np.ndarray) and mask.dtype == bool:
        hole = mask if mask.ndim == 2 else np.any(mask, axis=2)
    else:
        img = open_image(mask)
        base, alpha = split_alpha(img)
        lum = np.asarray(base.convert("L"), np.float32)
        if alpha is not None:
            a = np.asarray(alpha, np.float32)
            visible = a > 0
            dark = not visible.any() or float(lum[visible].max()) < 128
            value = a if dark else lum * (a / 255.0)
        else:
            value = lum
        hole = value >= 127.5
    if size is not None and (hole.shape[1], hole.shape[0]) != tuple(size):
        notes.append(f"The mask is {hole.shape[1]}×{hole.shape[0]} px and the photo {size[0]}×{size[1]} px: "
                     "the mask was resized (nearest neighbour) to fit.")
        hole = resize_mask(hole, tuple(size))
    return np.ascontiguousarray(hole, dtype=bool), notes


def merge_masks(masks: Any, size: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """One mask or a list/tuple of masks (each as :func:`load_mask` takes it; None entries skipped) as one bool
    hole of ``size`` (width, height): their union. Returns (hole, notes)."""
    sources = [m for m in masks if m is not None] if isinstance(masks, (list, tuple)) else [masks]
    hole, notes = np.zeros((size[1], size[0]), bool), []
    for m in sources:
        part, more = load_mask(m, size=size)
        hole |= part
        notes += [n for n in more if n not in notes]
    return hole, notes


def _bbox(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the True pixels, widened by ``margin`` and clipped; None if there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    h, w = mask.shape
    return (max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin),
            max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin))


def _ellipse(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def prepare_mask(hole: np.ndarray, grow: int = 0, invert: bool = False) -> np.ndarray:
    """Invert (optional), then grow (``grow`` > 0, dilation) or shrink (< 0, erosion) by ``|grow|`` px with an
    elliptical kernel. Works only around the hole, so it stays cheap on large photos."""
    hole = np.asarray(hole, bool)
    if invert:
        hole = ~hole
    g = int(round(grow))
    if g == 0:
        return hole.copy() if not invert else hole
    if abs(g) >= hole.shape[0] + hole.shape[1]:  # farther than any two pixels are apart: all or nothing
        # (a kernel that large would not fit in memory; -1e9 once crashed OpenCV with a 4 EB allocation)
        return np.full_like(hole, hole.any() if g > 0 else hole.all())
    box = _bbox(hole, abs(g) + 1)
    out = np.zeros_like(hole)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    sub = hole[y0:y1, x0:x1].astype(np.uint8)
    op = cv2.dilate if g > 0 else cv2.erode
    # erosion: pixels outside the image count as hole (a hole touching the border stays there)
    res = op(sub, _ellipse(abs(g)), borderType=cv2.BORDER_CONSTANT, borderValue=0 if g > 0 else 1)
    out[y0:y1, x0:x1] = res.astype(bool)
    return out


def feather_weight(hole: np.ndarray, feather: float = 0) -> np.ndarray:
    """Blend weight (float32, same shape): 1 in the hole, falling smoothly (smoothstep of the Euclidean
    distance) to 0 at ``feather`` px outside it, 0 beyond. ``feather`` = 0: the hole as 0/1."""
    hole = np.asarray(hole, bool)
    f = float(feather)
    if f <= 0:
        return hole.astype(np.float32)
    out = np.zeros(hole.shape, np.float32)
    box = _bbox(hole, int(np.ceil(f)) + 2)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    sub = hole[y0:y1, x0:x1]
    d = cv2.distanceTransform((~sub).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip(1.0 - d / f, 0.0, 1.0)
    out[y0:y1, x0:x1] = t * t * (3.0 - 2.0 * t)
    return out


def mask_to_image(mask: np.ndarray) -> Image.Image:
    """A bool mask or [0, 1] weight map as an "L" image (255 = hole)."""
    m = np.asarray(mask)
    a = m.astype(np.uint8) * 255 if m.dtype == bool else to_uint8(m * 255.0)
    return Image.fromarray(a, "L")


# -------------------------------------------------------------------------------------------- methods
class NetworkInpainter(ModelRunner):
    """Runs an inpainting module on uint8 (h, w, 3) + bool (h, w): ONNX Runtime on CPU, PyTorch elsewhere."""

    input_names, what, default_multiple, default_min_side = ("image", "mask"), "inpainting network", 8, MIN_NETWORK_SIDE

    def example_inputs(self):
        return torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)

    def __call__(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The network's fill inside ``hole``; the input everywhere else (the network's own redraw of the known
        pixels is not the photo: blended in by the feather, it drew a dotted bright line along the mask)."""
        rgb = np.asarray(rgb, np.float32)
        hole = np.asarray(hole, bool)
        return np.where(hole[:, :, None], self._run(rgb, hole), rgb)

    def _run(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        x, m = self.image_tensor(rgb), self.image_tensor(hole, scale=1.0)
        return self.image_array(self.run(self.pad(x), self.pad(m), size=rgb.shape[:2]))


class ClassicalInpainter:
    """OpenCV ``cv2.inpaint`` (Telea's fast marching or Navier-Stokes) on uint8 gray or RGB."""

    def __init__(self, name: str, radius: float = CLASSICAL_RADIUS):
        self.name, self.flag, self.radius = name, CLASSICAL[name], radius
        self.backend = f"OpenCV {'Telea' if name == 'telea' else 'Navier-Stokes'}"
        self.multiple = 1

    def __call__(self, arr: np.ndarray, hole: np.ndarray) -> np.ndarray:
        u8 = np.ascontiguousarray(to_uint8(arr))
        if hole.all():  # nothing to propagate from
            return np.full(arr.shape, 128.0, np.float32)
        return cv2.inpaint(u8, hole.astype(np.uint8) * 255, self.radius, self.flag).astype(np.float32)


class TextureInpainter:
    """The photo's own texture laid out by a smooth ``guide`` inpainter (:func:`exemplar_fill`).

    ``output="detail"``: the guide's low frequencies plus the photo's detail copied in (the guide keeps
    structure and colour); ``"copy"``: the photo's pixels copied in (plain exemplar inpainting). Called with
    ``max_side``, it runs the guide at most that size and lays the texture at the array's own resolution.
    """

    full_resolution = True

    def __init__(self, guide, output: str = "detail", name: str | None = None):
        if output not in ("detail", "copy"):
            raise ValueError(f"output must be 'detail' or 'copy', not {output!r}")
        self.guide, self.output = guide, output
        self.name = name or ("net-patchmatch" if output == "detail" else "patchmatch")
        self.multiple = 1

    @property
    def backend(self) -> str:
        what = "photo texture (PatchMatch) over" if self.output == "detail" else "PatchMatch exemplar copy guided by"
        return f"{what} {getattr(self.guide, 'backend', type(self.guide).__name__)}"

    def __call__(self, arr: np.ndarray, hole: np.ndarray, max_side: int | None = None) -> np.ndarray:
        if hole.all():                       # nothing to copy from: the guide's guess
            return np.asarray(self.guide(arr, hole), np.float32)
        guide = _fill_box(arr, hole, self.guide, max_side or max(hole.shape))
        return exemplar_fill(arr, hole, guide, output=self.output)


_INPAINTERS = RunnerCache(NetworkInpainter, "inpainting model")


def get_inpainter(model: Any = DEFAULT_MODEL, device: str | None = None):
    """A callable ``(array, bool hole) -> float array`` for a model name ("context-fill", "pypatchmatch",
    "net-patchmatch", "inpaint-net", "patchmatch", "telea", "ns"), a loaded ``nn.Module``, or an inpainter object (returned as it is)."""
    if isinstance(model, str) and model.lower() in CLASSICAL:
        return ClassicalInpainter(model.lower())
    if isinstance(model, str) and model.lower() in FROM_THE_PHOTO:
        if not FROM_THE_PHOTO_READY:
            raise ValueError(f"{model} needs the pypatchmatch library (pip install pypatchmatch), which is not "
                             "available here; choose net-patchmatch, patchmatch or telea instead.")
        return FROM_THE_PHOTO[model.lower()]()
    if isinstance(model, str) and model.lower() in TEXTURED:
        guide, output = TEXTURED[model.lower()]
        return TextureInpainter(get_inpainter(guide, device), output, model.lower())
    return _INPAINTERS.get(model, device)


# ------------------------------------------------------------------------------------------- regions
def _square(y0: int, y1: int, x0: int, x1: int, h: int, w: int) -> tuple[int, int, int, int]:
    """Grow the shorter side of a box towards the longer one (centred, shifted inside the image)."""
    bh, bw = y1 - y0, x1 - x0
    if bh < bw:
        n = min(bw, h)
        y0 = min(max(0, y0 - (n - bh) // 2), h - n)
        y1 = y0 + n
    elif bw < bh:
        n = min(bh, w)
        x0 = min(max(0, x0 - (n - bw) // 2), w - n)
        x1 = x0 + n
    return y0, y1, x0, x1


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def crop_regions(hole: np.ndarray, feather: float = 0, min_context: int = MIN_CONTEXT,
                 context: float = CONTEXT) -> list[tuple[int, int, int, int]]:
    """Disjoint boxes (y0, y1, x0, x1) covering every hole pixel with context around it.

    Per connected region: its bounding box, padded on each side by max(``min_context``, ``context`` x the
    box's longer side) + the feather width, made square-ish, clipped; overlapping boxes are merged until
    none overlap (so nearby regions are filled together, and each hole pixel is in exactly one box).
    """
    h, w = hole.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    boxes = []
    for x, y, bw, bh, _area in stats[1:]:
        pad = int(max(min_context, context * max(bw, bh)) + np.ceil(feather) + 1)
        b = (max(0, y - pad), min(h, y + bh + pad), max(0, x - pad), min(w, x + bw + pad))
        boxes.append(_square(*b, h, w))
    if len(boxes) > MAX_REGIONS * 4:  # a speckled mask: merging pairwise would be slow; one box around all
        y0, y1, x0, x1 = zip(*boxes)
        return [(min(y0), max(y1), min(x0), max(x1))]
    merged = True
    while merged:
        merged = False
        out: list[tuple[int, int, int, int]] = []
        for b in boxes:
            for i, o in enumerate(out):
                if _overlap(b, o):
                    out[i] = (min(b[0], o[0]), max(b[1], o[1]), min(b[2], o[2]), max(b[3], o[3]))
                    merged = True
                    break
            else:
                out.append(b)
        boxes = out
    if len(boxes) > MAX_REGIONS:
        y0, y1, x0, x1 = zip(*boxes)
        return [(min(y0), max(y1), min(x0), max(x1))]
    return sorted(boxes)


def _fill_box(arr: np.ndarray, hole: np.ndarray, inpainter, max_side: int, full_res: bool = False) -> np.ndarray:
    """Fill one crop: scale down to ``max_side`` if larger, run, scale the prediction back. uint8 output.

    ``full_res``: an inpainter with ``full_resolution`` (texture) gets the crop at up to ``TEXTURE_MAX_SIDE``
    px and ``max_side`` for its own guide."""
    h, w = hole.shape
    if full_res and getattr(inpainter, "full_resolution", False):
        limit = max(max_side, TEXTURE_MAX_SIDE)
        if max(h, w) <= limit:
            return to_uint8(inpainter(arr, hole, max_side=max_side))
        return _fill_box(arr, hole, lambda a, m: inpainter(a, m, max_side=max_side), limit)
    if max(h, w) > max_side:
        small = fit_max_side(arr, max_side)
        # a low-resolution pixel that covers any hole pixel is a hole (the object must not leak in)
        small_hole = fit_max_side(hole.astype(np.float32), max_side) > 0
        pred = cv2.resize(to_uint8(inpainter(small, small_hole)), (w, h), interpolation=cv2.INTER_CUBIC)
        if pred.ndim == 2 and arr.ndim == 3:
            pred = pred[:, :, None]
        # outside the hole the prediction is the photo at full resolution, not its blurred down-and-up copy
        return np.where(hole[:, :, None] if pred.ndim == 3 else hole, pred, to_uint8(arr))
    return to_uint8(inpainter(arr, hole))


def _spread_step(pred: np.ndarray, src: np.ndarray, hole: np.ndarray, feather: float) -> np.ndarray:
    """``pred`` (the photo outside ``hole``) with the fill's colour step at the hole's edge carried outwards: outside,
    the photo plus the difference between the fill's and the photo's local means (normalised Gaussian averages,
    sigma = feather / 2), which the feather weight then fades out. The photo's own detail is kept; nothing of
    the fill's texture or of the network's redraw of known pixels reaches the surroundings."""
    sigma = max(float(feather) / 2.0, 1.0)
    inside = hole.astype(np.float32)
    p, q = pred.astype(np.float32), src.astype(np.float32)
    if p.ndim == 3:
        inside = inside[:, :, None]

    def mean(a, m):
        num = cv2.GaussianBlur(a * m, (0, 0), sigma)
        den = cv2.GaussianBlur(np.ascontiguousarray(m[..., 0] if m.ndim == 3 else m), (0, 0), sigma)
        den = den[:, :, None] if a.ndim == 3 else den
        return num / np.maximum(den, 1e-3), den
    fill_mean, reach = mean(p, inside)
    photo_mean, _ = mean(q, 1.0 - inside)
    step = np.where(reach > 1e-2, fill_mean - photo_mean, 0.0)
    return np.where(inside > 0, p, q + step)


# ------------------------------------------------------------------------------------------------ task
@dataclass
class InpaintResult:
    image: Image.Image                 # same size as the input; same mode family (gray stays gray, alpha kept)
    mask_used: Image.Image             # "L": 255 = filled; the feathered blend weight when feather > 0
    seconds: float                     # end to end (mask preparation included), model loading excluded
    notes: list[str] = field(default_factory=list)
    backend: str = ""
    regions: int = 0                   # crops the model ran on


def inpaint_image(image, mask, model: Any = DEFAULT_MODEL, mode: str = "crop", max_side: int = MAX_SIDE,
                  grow: int = 0, feather: float = 0, invert: bool = False, progress: Progress | None = None,
                  device: str | None = None) -> InpaintResult:
    """Fill the hole of ``image`` (path, bytes, PIL or array) given by ``mask``: one mask (white = hole: path,
    bytes, PIL, array, bool array) or a list of them, merged (:func:`merge_masks`). ``model``: "context-fill" (default), "pypatchmatch", "net-patchmatch", "inpaint-net",
    "patchmatch", "telea", "ns", a module or inpainter.

    Only pixels whose blend weight is > 0 change; the rest are bit-identical to the input.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
    max_side = int(finite_number(max_side, "The processing size (max side)"))
    if max_side < 16:
        raise ValueError("The processing size (max side) must be at least 16 px.")
    grow, feather = finite_number(grow, "Grow"), finite_number(feather, "Feather")
    if feather < 0:
        raise ValueError(f"Feather must be 0 or more px, not {feather:g}.")
    if feather > MAX_FEATHER:
        raise ValueError(f"Feather must be at most {MAX_FEATHER} px, not {feather:g}.")
    t0 = time.perf_counter()
    img = open_image(image)
    base, alpha = split_alpha(img)
    arr = np.asarray(base)
    h, w = arr.shape[:2]
    notes: list[str] = []
    hole, more = merge_masks(mask, size=(w, h))
    notes += more
    hole = prepare_mask(hole, grow=grow, invert=invert)
    if not hole.any():
        notes.append("The mask is empty: there is nothing to fill, so the image is returned unchanged.")
        return InpaintResult(img.copy(), mask_to_image(hole), time.perf_counter() - t0, notes, "none", 0)

    t_load = time.perf_counter()
    inpainter = get_inpainter(model, device)
    t_load = time.perf_counter() - t_load
    if t_load > 1.0:
        notes.append(f"Loading the model took {t_load:.1f} s (first use; not included in the time).")
    classical = isinstance(inpainter, ClassicalInpainter)
    gray = arr.ndim == 2
    work = arr if (classical or not gray) else np.repeat(arr[:, :, None], 3, axis=2)
    if hole.all():
        notes.append("The whole image is masked: there is no context to fill from, so the result is only a "
                     "guess" + (" (classical methods give flat gray)." if classical else " of the model."))
        boxes = [(0, h, 0, w)]
    elif mode == "resize":
        boxes = [(0, h, 0, w)]
    else:
        boxes = crop_regions(hole, feather)
    if mode == "resize" and max(h, w) > max_side:
        notes.append(f"Whole image processed at {max_side} px on the long side, then scaled back "
                     f"(only the filled pixels changed).")
    elif mode == "crop":
        big = sum(max(b[1] - b[0], b[3] - b[2]) > max_side for b in boxes)
        if big:
            notes.append(f"{big} of {len(boxes)} masked area(s) needed more than {max_side} px of context and "
                         "were processed at a reduced scale.")
    out = arr.copy()
    used = hole.astype(np.float32) if feather > 0 else None
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        checkpoint()  # a cancelled request stops between crops
        sub_hole = hole[y0:y1, x0:x1]
        src = arr[y0:y1, x0:x1]
        pred = _fill_box(np.ascontiguousarray(work[y0:y1, x0:x1]), sub_hole, inpainter, max_side,
                         full_res=mode == "crop")
        if gray and pred.ndim == 3:
            pred = pred.mean(axis=2)
        weight = feather_weight(sub_hole, feather)
        if feather > 0:
            pred = _spread_step(pred, src, sub_hole, feather)
        if used is not None:
            used[y0:y1, x0:x1] = weight
        # blend only inside the bounding box of weight > 0 (the rest of the crop stays as it is)
        ry0, ry1, rx0, rx1 = _bbox(weight > 0)
        wgt, s, p = weight[ry0:ry1, rx0:rx1], src[ry0:ry1, rx0:rx1], pred[ry0:ry1, rx0:rx1]
        if s.ndim == 3:
            wgt = wgt[:, :, None]
        blended = to_uint8(wgt * p.astype(np.float32) + (1.0 - wgt) * s.astype(np.float32))
        out[y0 + ry0:y0 + ry1, x0 + rx0:x0 + rx1] = np.where(wgt > 0, blended, s)
        if progress:
            progress(i + 1, len(boxes))
    result = join_alpha(Image.fromarray(out, "L" if gray else "RGB"), alpha)
    mask_img = mask_to_image(used if used is not None else hole)
    return InpaintResult(result, mask_img, time.perf_counter() - t0 - t_load, notes,
                         getattr(inpainter, "backend", type(inpainter).__name__), len(boxes))
