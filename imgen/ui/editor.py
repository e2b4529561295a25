"""The Inpaint editor's value format (Gradio's ImageEditor / ImageMask: ``{"background", "layers",
"composite"}``) turned into plain masks for :mod:`imgen.tasks.inpaint`, and the other way round for the tab's
pre-drawn example masks. No Gradio import: the values are plain dicts of arrays, images or file paths."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..image_io import ImageInputError
from ..tasks.inpaint import load_mask, resize_mask


def _entry_to_array(entry: Any) -> np.ndarray | None:
    """An ImageEditor entry (numpy array, PIL image, path, or a FileData-like dict) as an array, or None."""
    if entry is None:
        return None
    if isinstance(entry, dict):
        entry = entry.get("path") or entry.get("url")
        if entry is None:
            return None
    if isinstance(entry, np.ndarray):
        return entry
    if isinstance(entry, Image.Image):
        return np.asarray(entry)
    if isinstance(entry, (str, Path)):
        with Image.open(entry) as im:
            im.load()
            return np.asarray(im)
    raise ImageInputError(f"Cannot read an editor image from a {type(entry).__name__}.")


def _painted(layer: np.ndarray) -> np.ndarray:
    """Where a layer was painted: alpha > 0 (layers with no alpha channel: any non-zero pixel)."""
    if layer.ndim == 3 and layer.shape[2] in (2, 4):
        return layer[:, :, -1] > 0
    if layer.ndim == 3:
        return np.any(layer != 0, axis=2)
    return layer != 0


def mask_from_editor(value: Any, notes: list[str] | None = None) -> np.ndarray:
    """The hole painted in a Gradio ImageEditor / ImageMask value, as a bool (H, W) array of the background's size.

    ``value`` is ``{"background", "layers", "composite"}`` with numpy arrays, PIL images or file paths (any
    Gradio version; ``layers`` may be ``[]`` or missing and ``composite`` None). The mask is the union of the
    layers' alpha > 0; when the layers hold nothing, it falls back to where the composite differs from the
    background. A layer of another size is resized (nearest neighbour) to the background, and a note saying
    so is appended to ``notes`` if given.
    """
    if value is None:
        raise ImageInputError("Upload a photo first.")
    if not isinstance(value, dict):  # a plain image: treat it as a mask image
        return load_mask(value)[0]
    bg = _entry_to_array(value.get("background"))
    layers = [a for a in (_entry_to_array(e) for e in (value.get("layers") or [])) if a is not None]
    comp = _entry_to_array(value.get("composite"))
    ref = bg if bg is not None else (layers[0] if layers else comp)
    if ref is None:
        raise ImageInputError("Upload a photo first.")
    h, w = ref.shape[:2]
    mask = np.zeros((h, w), bool)
    for layer in layers:
        p = _painted(layer)
        if p.shape != (h, w):
            if notes is not None:
                notes.append(f"The painted mask is {p.shape[1]}×{p.shape[0]} px and the photo {w}×{h} px: "
                             "the mask was resized (nearest neighbour) to fit.")
                notes = None  # one note is enough
            p = resize_mask(p, (w, h))
        mask |= p
    if not mask.any() and comp is not None and bg is not None and comp.shape[:2] == (h, w):
        a, b = np.asarray(comp), np.asarray(bg)
        a = a[:, :, None] if a.ndim == 2 else a
        b = b[:, :, None] if b.ndim == 2 else b
        c = min(a.shape[2], b.shape[2], 3)  # compare colour; a flattened composite has no alpha
        if a.shape[2] == 4 and b.shape[2] == 4:
            c = 4
        mask = np.any(a[:, :, :c].astype(np.int16) != b[:, :, :c].astype(np.int16), axis=2)
    return mask


def editor_layer(mask: np.ndarray, colour: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """An ImageEditor layer (RGBA, painted = opaque ``colour``, elsewhere transparent) from a bool mask."""
    m = np.asarray(mask, bool)
    rgba = np.zeros(m.shape + (4,), np.uint8)
    rgba[m, :3] = colour
    rgba[m, 3] = 255
    return Image.fromarray(rgba, "RGBA")


def make_example_masks(folder: str | Path, examples: dict[str, tuple[str, list[tuple]]]) -> dict[str, tuple[str, str]]:
    """Write pre-drawn example masks as ImageEditor layers (RGBA, painted = opaque black) into ``folder``.

    ``examples``: name -> (photo path, shapes), shapes as ("line", x0, y0, x1, y1, width) / ("box", x0, y0,
    x1, y1) / ("ellipse", cx, cy, rx, ry) in pixels of the photo. Returns name -> (photo path, layer path).
    Existing files are kept (the folder is a cache; file names carry a hash of the photo and shapes).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (photo, shapes) in examples.items():
        key = hashlib.sha1(json.dumps([str(photo), shapes]).encode()).hexdigest()[:10]
        layer_path = folder / f"{name}-{key}-mask-layer.png"
        if not layer_path.exists():
            with Image.open(photo) as im:
                w, h = im.size
            m = np.zeros((h, w), np.uint8)
            for s in shapes:
                if s[0] == "line":
                    cv2.line(m, (int(s[1]), int(s[2])), (int(s[3]), int(s[4])), 1, int(s[5]))
                elif s[0] == "box":
                    cv2.rectangle(m, (int(s[1]), int(s[2])), (int(s[3]), int(s[4])), 1, -1)
                elif s[0] == "ellipse":
                    cv2.ellipse(m, (int(s[1]), int(s[2])), (int(s[3]), int(s[4])), 0, 0, 360, 1, -1)
                else:
                    raise ValueError(f"unknown shape {s[0]!r}")
            tmp = layer_path.with_suffix(".tmp.png")
            editor_layer(m.astype(bool)).save(tmp)
            tmp.replace(layer_path)
        out[name] = (str(photo), str(layer_path))
    return out
