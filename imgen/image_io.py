"""Image I/O shared by every task: reading, colour modes, size limits, padding, tiling, tensors.

Tasks work on 8-bit RGB or L arrays; alpha is split off before a model runs and re-attached after.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .cancel import checkpoint

DEFAULT_MAX_PIXELS = 40_000_000
MAX_ASPECT = 100          # long side / short side: thinner images cost one model call per few pixels (refused)
MAX_JPEG_SCANS = 100      # progressive JPEGs: every scan is a pass over all the image's blocks (real ones use ~10);
SCAN_BUDGET = 20          # ... and scans x pixels may be at most this many times the pixel limit (20 scans at 40 MP)


class ImageInputError(ValueError):
    """An image the user gave cannot be used; the message is meant for the user."""


def max_pixels() -> int:
    """The pixel limit: ``IMGEN_MAX_PIXELS`` or 40 megapixels."""
    return int(os.environ.get("IMGEN_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def check_size(width: int, height: int, limit: int | None = None) -> None:
    """Refuse an image by its declared size, before decoding: empty, above the pixel limit, or thinner than
    1:``MAX_ASPECT`` (a 1x3,000,000 strip is tiny on disk but costs thousands of model calls)."""
    limit = max_pixels() if limit is None else limit
    if width <= 0 or height <= 0:
        raise ImageInputError("The image is empty (0 pixels).")
    if width * height > limit:
        raise ImageInputError(
            f"The image is {width}x{height} = {megapixels(width * height)} megapixels; the limit is "
            f"{megapixels(limit)} megapixels. Please downscale it first.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageInputError(
            f"The image is {width}x{height} px: sides more than {MAX_ASPECT} times as long as the other are not "
            "accepted (such strips cost far more to process than their size suggests). Please crop it first.")


def megapixels(pixels: int) -> str:
    """Pixels as megapixels for a message: 40.0, 0.0013."""
    return f"{pixels / 1e6:.1f}" if pixels >= 100_000 else f"{pixels / 1e6:.2g}"


def open_image(source: str | Path | bytes | Image.Image | np.ndarray, limit: int | None = None) -> Image.Image:
    """Open a Pillow-readable file (path, bytes, file object, PIL image or array), upright per EXIF, size-checked.

    The declared size is checked before any pixel is decoded. Animated images give their first frame.
    The returned image is fully loaded and holds no open file. Raises :class:`ImageInputError` with a
    user-facing message for anything that cannot be used (missing, empty, truncated, not an image, too big).
    """
    if isinstance(source, (np.ndarray, Image.Image)):
        img = array_to_pil(source) if isinstance(source, np.ndarray) else source
        check_size(*img.size, limit=limit)  # before a lazily opened image gets decoded
        try:
            return _upright(img)
        except Exception as e:
            raise ImageInputError(f"The image is not readable ({e.__class__.__name__}: {e}).") from None
    return _read(source, limit)


def _upright(img: Image.Image) -> Image.Image:
    """A loaded copy of ``img`` turned upright per its EXIF Orientation (a broken EXIF block is ignored)."""
    try:
        out = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make a readable image unusable
        out = None
    return img.copy() if out is None or out is img else out


def _read(source, limit: int | None) -> Image.Image:
    ours = True  # whether we own the file handle (and so close it)
    if isinstance(source, (bytes, bytearray, memoryview)):
        fp, name = io.BytesIO(bytes(source)), "The uploaded data"
        if not len(source):
            raise ImageInputError("The uploaded data is empty (0 bytes).")
    elif isinstance(source, (str, os.PathLike)):
        fp, name = source, Path(source).name
        try:
            empty = os.path.getsize(source) == 0
        except (OSError, ValueError):
            empty = False  # missing, unreadable, a bad name...: Pillow's error is reported below
        if empty:
            raise ImageInputError(f"{name} is empty (0 bytes).")
    elif hasattr(source, "read"):
        fp, name, ours = source, Path(str(getattr(source, "name", "") or "The uploaded file")).name, False
    else:
        raise ImageInputError(f"Cannot read an image from a {type(source).__name__}.")
    img = opened = None
    try:
        if ours and not isinstance(fp, io.BytesIO):
            fp = opened = open(fp, "rb")
        for size in _ico_sizes(fp):  # before Image.open, which decodes an ICO's image
            check_size(*size, limit=limit)
        img = Image.open(fp)  # reads the header only
        w, h = img.size
        check_size(w, h, limit=limit)
        bomb = Image.MAX_IMAGE_PIXELS
        if bomb and w * h > bomb:  # Pillow only warns between 1x and 2x its limit
            raise Image.DecompressionBombError(f"{w}x{h} pixels exceeds the limit of {bomb} pixels")
        _check_before_decoding(img, name, limit)
        first = getattr(img, "_min_frame", 0)  # PSD layers count from 1 (frame 1 = the merged image)
        if img.tell() != first:
            img.seek(first)
        img.load()
        return _upright(img)  # a copy: detached from the file
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageInputError(f"{name} is too large to open safely (decompression bomb check: {e}).") from None
    except FileNotFoundError:
        raise ImageInputError(f"File not found: {source}") from None
    except IsADirectoryError:
        raise ImageInputError(f"{source} is a folder, not an image file.") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{name} is not a readable image (unknown or unsupported file format).") from None
    except MemoryError:
        raise ImageInputError(f"{name} is too large to decode in the available memory.") from None
    except Exception as e:  # decoders raise OSError, SyntaxError, ValueError, EOFError, struct.error, ...
        raise ImageInputError(
            f"{name} is not a readable image; the file may be truncated or damaged ({e.__class__.__name__}: {e}).") from None
    finally:
        if img is not None and ours:
            img.close()
        if opened is not None:
            opened.close()


def declared_pixels(source: str | os.PathLike | bytes) -> int:
    """The pixels a file's header declares (the largest image inside an ICO), without decoding any; 0 when the
    header cannot be read (the decoder reports that properly later)."""
    try:
        fp = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    except (OSError, ValueError, TypeError):
        return 0
    try:
        ico = _ico_sizes(fp)
        if ico:
            return max(w * h for w, h in ico)
        with Image.open(fp) as im:
            return im.width * im.height
    except Exception:  # noqa: BLE001 - unreadable: reported when decoded
        return 0
    finally:
        fp.close()


def _check_before_decoding(img: Image.Image, name: str, limit: int | None) -> None:
    """Checks that need more than the declared size, still before any pixel is decoded: a JPEG's scans (their
    number, and whether there is enough coded data for the declared size: a 633-byte file declaring 6000x6000
    otherwise decodes as a plain grey picture, at full cost)."""
    if img.format in ("JPEG", "MPO"):
        info = _jpeg_info(img.fp)
        if info is None:
            return
        scans, coded, blocks, huffman = info
        allowed = min(MAX_JPEG_SCANS, max(1, SCAN_BUDGET * (max_pixels() if limit is None else limit)
                                         // max(1, img.width * img.height)))
        if scans > allowed:
            raise ImageInputError(f"{name} is a progressive JPEG with {scans} scans; at most {allowed} are accepted "
                                  f"at {img.width}x{img.height} px (each scan is a pass over the whole image). "
                                  "Please re-save it.")
        if huffman and coded * 8 < blocks:
            raise ImageInputError(f"{name} is not a readable image; the file is truncated: it holds {coded} bytes "
                                  f"of image data, and its {img.width}x{img.height} pixels need at least "
                                  f"{-(-blocks // 8)}.")


def _ico_sizes(fp) -> list[tuple[int, int]]:
    """The sizes of the images inside an ICO file, read from their own headers (PNG IHDR or BMP DIB header);
    [] for anything else. Pillow decodes an ICO's image as soon as it opens the file, so this runs first."""
    pos = fp.tell()
    out = []
    try:
        head = fp.read(6)
        if len(head) < 6 or head[:4] != b"\0\0\1\0":
            return []
        count = int.from_bytes(head[4:6], "little")
        entries = [fp.read(16) for _ in range(count)]
        for e in entries:
            if len(e) < 16:
                break
            fp.seek(pos + int.from_bytes(e[12:16], "little"))
            h = fp.read(24)
            if h[:8] == b"\x89PNG\r\n\x1a\n" and len(h) >= 24:
                out.append((int.from_bytes(h[16:20], "big"), int.from_bytes(h[20:24], "big")))
            elif len(h) >= 12:
                out.append((abs(int.from_bytes(h[4:8], "little", signed=True)),
                            abs(int.from_bytes(h[8:12], "little", signed=True)) // 2))  # height counts the mask
    finally:
        fp.seek(pos)
    return out


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_HUFFMAN_DCT = {0xC0, 0xC1, 0xC2}
_MARKER = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")   # a marker inside entropy-coded data (not stuffing or RST)


def _jpeg_info(fp) -> tuple[int, int, int, bool] | None:
    """(scans, bytes of entropy-coded data, 8x8 blocks the frame declares, Huffman-coded DCT?) from a JPEG's
    markers, or None when the stream does not parse (Pillow then reports the damage itself).

    Every block costs a Huffman-coded JPEG at least one bit (its DC difference), so fewer coded bytes than
    blocks / 8 means the data is missing: libjpeg would fill the rest with grey and say nothing.
    """
    pos0 = fp.tell()
    try:
        fp.seek(0)
        data = fp.read()
    finally:
        fp.seek(pos0)
    if data[:2] != b"\xff\xd8":
        return None
    pos, scans, coded, blocks, huffman = 2, 0, 0, 0, False
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        length = int.from_bytes(data[pos:pos + 2], "big")
        seg = data[pos + 2:pos + length]
        pos += length
        if marker in _SOF and len(seg) >= 6:
            h, w, ncomp = int.from_bytes(seg[1:3], "big"), int.from_bytes(seg[3:5], "big"), seg[5]
            comps = [(seg[7 + 3 * i] >> 4, seg[7 + 3 * i] & 15) for i in range(ncomp) if 8 + 3 * i <= len(seg)]
            if comps and h:
                hmax, vmax = max(c[0] for c in comps) or 1, max(c[1] for c in comps) or 1
                blocks = sum(-(-(-(-w * hs // hmax)) // 8) * -(-(-(-h * vs // vmax)) // 8) for hs, vs in comps)
            huffman = marker in _HUFFMAN_DCT
        elif marker == 0xDA:
            scans += 1
            m = _MARKER.search(data, pos)
            end = m.start() if m else n
            coded += end - pos
            pos = end
    return scans, coded, blocks, huffman


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Split a PIL image into an 8-bit colour image ("RGB" or "L") and an "L" alpha (or None).

    Handles 1, L, LA, La, P/PA (with or without transparency), RGB, RGBA, RGBa, CMYK, YCbCr, LAB, HSV, I;16, I
    and F; a ``transparency`` entry (PNG tRNS) on 1, L, RGB or P becomes an alpha channel. High bit depths
    are scaled to 8 bits: I;16 from 0..65535; I as 8-bit if within 0..255, else as 16-bit if within 0..65535,
    else from its value range; F as 0..1 if within it, as 0..255 if within that, else from its value range.
    """
    mode = img.mode
    trns = img.info.get("transparency") is not None
    if mode in ("P", "PA"):
        rgba = mode == "PA" or trns or (img.palette is not None and img.palette.mode == "RGBA")
        img = img.convert("RGBA" if rgba else "RGB")
    elif mode in ("1", "L") and trns:
        img = img.convert("LA")
    elif mode == "RGB" and trns:
        img = img.convert("RGBA")
    elif mode in ("RGBa", "La"):  # premultiplied: un-premultiply
        img = img.convert("RGBA" if mode == "RGBa" else "LA")
    mode = img.mode
    if mode in ("RGBA", "LA"):
        return img.convert("RGB" if mode == "RGBA" else "L"), img.getchannel("A")
    if mode in ("RGB", "L"):
        return img, None
    if mode == "1":
        return img.convert("L"), None
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img).astype(np.float64)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if mode.startswith("I;16"):
            arr = arr * (255.0 / 65535.0)
        elif lo >= 0 and hi <= (1.0 if mode == "F" else 255.0):
            arr = arr * 255.0 if mode == "F" else arr
        elif lo >= 0 and hi <= (255.0 if mode == "F" else 65535.0):
            arr = arr if mode == "F" else arr * (255.0 / 65535.0)
        else:
            arr = (arr - lo) * (255.0 / max(hi - lo, 1e-12))
        arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
        return Image.fromarray(to_uint8(arr), "L"), None
    return img.convert("RGB"), None  # CMYK, YCbCr, LAB, HSV, ...


def join_alpha(img: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """Re-attach an alpha channel split off by :func:`split_alpha` (resized to fit if needed)."""
    if alpha is None:
        return img
    if alpha.size != img.size:
        alpha = alpha.resize(img.size, Image.Resampling.BILINEAR)
    out = img.convert("LA" if img.mode in ("1", "L", "LA") else "RGBA")
    out.putalpha(alpha)
    return out


def load_image(source, mode: str | None = None, limit: int | None = None) -> Image.Image:
    """Open and convert to ``mode`` ("RGB", "L", "RGBA"...); alpha is composited on white for RGB/L."""
    img = open_image(source, limit=limit)
    base, alpha = split_alpha(img)
    if mode is None:
        return join_alpha(base, alpha)
    if alpha is not None and mode in ("RGB", "L"):
        white = Image.new(base.mode, base.size, 255 if base.mode == "L" else (255, 255, 255))
        base = Image.composite(base, white, alpha)
        return base.convert(mode)
    return join_alpha(base, alpha).convert(mode) if mode in ("RGBA", "LA") else base.convert(mode)


def fit_max_side(a: np.ndarray, side: int) -> np.ndarray:
    """An (H, W[, C]) array area-resized so its long side is at most ``side`` (as it is when it already fits):
    the one place where a task or a trainer shrinks an image to its processing size."""
    return a if max(a.shape[:2]) <= side else at_long_side(a, side)


def at_long_side(a: np.ndarray, side: int) -> np.ndarray:
    """An (H, W[, C]) array resized (area when shrinking, cubic when growing) so its long side is ``side`` px
    (as it is when it already is): the scale at which style statistics are compared and learnt."""
    h, w = a.shape[:2]
    if max(h, w) == side:
        return a
    import cv2
    s = side / max(h, w)
    return cv2.resize(np.ascontiguousarray(a), (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def to_uint8(a) -> np.ndarray:
    """Values on the 0..255 scale (any float or int array) rounded and clipped to uint8: the one place for it."""
    return np.clip(np.rint(np.asarray(a)), 0, 255).astype(np.uint8)


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """uint8/uint16/float array (H, W), (H, W, 1|2|3|4) to a PIL image (floats in [0, 1] are scaled)."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (2, 3, 4))) or a.size == 0:
        raise ImageInputError(f"An array of shape {a.shape} is not an image (expected H x W [x 1, 2, 3 or 4]).")
    if a.dtype.kind == "u" and a.dtype.itemsize == 2:
        a = a.astype(np.uint16)  # native byte order
        if a.ndim == 2:
            return Image.fromarray(a)  # "I;16"
        a = np.rint(a / 257.0).astype(np.uint8)  # as split_alpha scales I;16
    if a.dtype != np.uint8:
        a = np.asarray(a, np.float64)
        if a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0
        a = to_uint8(np.nan_to_num(a))
    if a.ndim == 2:
        return Image.fromarray(a, "L")
    return Image.fromarray(a, {2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]])


# ---------------------------------------------------------------------------------------------- tensors
def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image to a float tensor (1, C, H, W) in [0, 1]: RGB, L, RGBA and LA as they are; other modes
    (1, P, I;16, F, CMYK...) first go through :func:`split_alpha` (their alpha, if any, is dropped)."""
    if img.mode not in ("RGB", "L", "RGBA", "LA"):
        img, _ = split_alpha(img)
    a = np.asarray(img, dtype=np.float32) / 255.0
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).unsqueeze(0)


def tensor_to_array(t: torch.Tensor) -> np.ndarray:
    """A (1, C, H, W), (C, H, W) or (H, W) tensor in [0, 1] to uint8 (H, W[, C]): clipped and rounded (NaN -> 0)."""
    if t.dim() == 4:
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    t = torch.nan_to_num(t.detach().float().cpu(), nan=0.0)
    a = t.clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    return array_to_pil(tensor_to_array(t))


# ------------------------------------------------------------------------------------ padding and tiles
def pad_to_multiple(x: torch.Tensor, k: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) at the bottom/right so H and W are multiples of k; returns the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % k, (-w) % k
    if ph or pw:
        # reflect needs pad < size: fall back to replicate for tiny images
        m = mode if (mode != "reflect" or (ph < h and pw < w)) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=m)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


@dataclass(frozen=True)
class Tile:
    y0: int
    x0: int
    y1: int
    x1: int


def tile_grid(height: int, width: int, tile: int, overlap: int, align: int = 1) -> list[Tile]:
    """Tiles of at most ``tile`` px covering the image, neighbours overlapping by at least ``overlap`` px.

    Tile offsets are multiples of ``align``; the last tile in a row/column ends at the image border and is
    as large as that allows (at least ``tile - align + 1`` px when the image is larger than a tile).
    """
    if align < 1 or overlap < 0 or tile - overlap < align:
        raise ValueError(f"need 0 <= overlap <= tile - align, got tile={tile}, overlap={overlap}, align={align}")

    def starts(n: int) -> list[int]:
        out = [0]
        last = -(-(n - tile) // align) * align  # the first aligned start whose tile reaches the end
        while out[-1] + tile < n:
            out.append(min((out[-1] + tile - overlap) // align * align, last))
        return out
    return [Tile(y, x, min(y + tile, height), min(x + tile, width)) for y in starts(height) for x in starts(width)]


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blend weights of a tile: 0 for the outer quarter of the overlap at an inner edge (where a local op
    sees the tile border), a linear ramp over its middle half, 1 elsewhere. Image borders get full weight."""
    w = torch.ones(n)
    if overlap <= 0:
        return w
    margin = overlap // 4
    ramp = torch.zeros(overlap)
    ramp[margin:overlap - margin] = torch.linspace(0, 1, overlap - 2 * margin + 2)[1:-1]
    ramp[overlap - margin:] = 1
    if not at_start:
        w[:overlap] = ramp
    if not at_end:
        w[n - overlap:] = torch.minimum(w[n - overlap:], ramp.flip(0))
    return w


def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int = 512, overlap: int = 32,
              progress: Callable[[int, int], None] | None = None, align: int = 16) -> torch.Tensor:
    """Apply a same-size image->image ``fn`` to (N, C, H, W) tile by tile, blending overlaps linearly.

    Within ``overlap // 4`` px of a tile's inner edge the tile gets weight 0, so a local ``fn`` whose
    receptive-field radius is at most ``overlap // 4`` gives exactly the whole-image result; for a network
    with a larger field the blend hides the seams. Tile offsets are multiples of ``align``: a strided
    network (one that downsamples by a factor dividing ``align`` and pads its input to that multiple) then
    sees every tile on the same pixel grid, and the last tiles with the same border padding, as the whole
    image. ``progress(done, total)`` is called after each tile; a cancelled request stops before the next
    one (:func:`imgen.cancel.checkpoint`).
    """
    _, _, h, w = x.shape
    tiles = tile_grid(h, w, tile, overlap, align)
    if len(tiles) == 1:
        out = fn(x)
        if progress:
            progress(1, 1)
        return out
    out = weight = None
    for i, t in enumerate(tiles):
        checkpoint()
        y = fn(x[:, :, t.y0:t.y1, t.x0:t.x1])
        if out is None:
            out = torch.zeros(y.shape[0], y.shape[1], h, w, device=y.device, dtype=torch.float32)
            weight = torch.zeros(1, 1, h, w, device=y.device, dtype=torch.float32)
        wy = _ramp(t.y1 - t.y0, overlap, t.y0 == 0, t.y1 == h).to(y.device)
        wx = _ramp(t.x1 - t.x0, overlap, t.x0 == 0, t.x1 == w).to(y.device)
        wt = (wy[:, None] * wx[None, :])[None, None]
        out[:, :, t.y0:t.y1, t.x0:t.x1] += y.float() * wt
        weight[:, :, t.y0:t.y1, t.x0:t.x1] += wt
        if progress:
            progress(i + 1, len(tiles))
    return (out / weight.clamp_min(1e-12)).to(y.dtype)
