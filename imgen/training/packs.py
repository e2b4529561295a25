"""Data packs: the training data one trainer reads, in one folder small enough to carry to a GPU machine.

    python -m imgen data pack denoise -o packs/denoise --max-mb 60
    python -m imgen data pack gan --set emoji -o packs/emoji
    python -m imgen train denoise --data packs/denoise --minutes 10 --device cuda

A pack has the shared data's own layout (``photos/cbsd432/...``), so a trainer takes it with ``--data PACK``
unchanged, and it holds only what that trainer reads, already at the size it uses: a photo the trainer keeps at
full size is copied byte for byte; one it shrinks (stylize keeps photos at a long side of 768 px) or squares
(the GAN's 64-px faces) is stored shrunk, losslessly (PNG). A trainer therefore sees the very same tensors from
the pack as from the folders. When that does not fit ``--max-mb``, the groups a pack may re-encode are
re-encoded as JPEG at falling quality (95, 90, 85, 80, 75; the last group first, to its lowest quality before
the next; a file only if it shrinks), and if that is not enough the last files of the last group are dropped.
``pack.json`` lists every file, how it was stored and what was dropped. Packing is deterministic: the same
data gives the same bytes. Sizes are in MB of 10^6 bytes.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..datasets.folders import list_images, square_rgb
from ..image_io import fit_max_side

QUALITIES = (95, 90, 85, 80, 75)


@dataclass(frozen=True)
class Group:
    """One folder of a pack: which files, and the size the trainer keeps them at."""
    folder: str                             # relative to the data root
    long_side: int | None = None            # the trainer shrinks to this long side (None: full size)
    square: int | None = None               # the trainer squares to this side, on white (the GAN)
    select: Callable[[list[Path]], list[Path]] | None = None   # which files (default: all)
    may_reencode: bool = True               # may become JPEG to fit the budget
    gray: bool = False                      # stored with one channel (the trainer reads it as "L")


def _kaokore_training(files: list[Path]) -> list[Path]:
    return [f for f in files if f.name.startswith("train_")]   # datasets.faces.split_files: dev_/test_ are held out


# What each trainer reads (see its main()); the GAN's emoji pack keeps the held-out emoji, because the split
# is computed over the folder's file names (datasets.faces.split_files), and they are 64-px PNGs (a few MB).
PACKS: dict[str, list[Group]] = {
    "denoise": [Group("photos/cbsd432"), Group("photos/gray400", gray=True, may_reencode=False),
                Group("photos/urban80")],
    "inpaint": [Group("photos/cbsd432"), Group("photos/urban80")],
    "stylize": [Group("paintings/titian", long_side=640, may_reencode=False), Group("photos/cbsd432"),
                Group("photos/urban80", long_side=768)],
    "gan-kaokore": [Group("faces/kaokore128", square=64, select=_kaokore_training, may_reencode=False)],
    "gan-emoji": [Group("emoji/noto72", square=64, may_reencode=False)],
}


def pack_name(task: str, data_set: str | None = None) -> str:
    """The PACKS key of a task (``gan`` needs its set: kaokore or emoji)."""
    name = f"{task}-{data_set or 'kaokore'}" if task == "gan" else task
    if name not in PACKS:
        raise ValueError(f"no pack for {name!r}; known: {', '.join(sorted(PACKS))}")
    return name


def _png(a: np.ndarray) -> bytes:
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()


def _jpeg(a: np.ndarray, quality: int) -> bytes:
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])[1].tobytes()


def _pixels(path: Path, group: Group) -> np.ndarray:
    """The file's pixels at the size the trainer keeps (uint8 RGB, or gray for a gray group)."""
    if group.square:
        return square_rgb(path, group.square)
    from ..image_io import load_image
    a = np.asarray(load_image(path, mode="L" if group.gray else "RGB"))
    return fit_max_side(a, group.long_side) if group.long_side else a


class _Entry:
    """One file of the pack: where it comes from, its bytes, and how they were made."""

    def __init__(self, src: Path, rel: str, group: Group):
        self.src, self.group = src, group
        pixels = None
        if group.square or (group.long_side and max(_image_size(src)) > group.long_side):
            pixels = _pixels(src, group)
            self.rel, self.data, self.how = str(Path(rel).with_suffix(".png")), _png(pixels), "resized (PNG)"
        else:
            self.rel, self.data, self.how = rel, src.read_bytes(), "copied"
        self._pixels = pixels

    def reencode(self, quality: int) -> None:
        """Store as JPEG at ``quality`` if that is smaller than what is stored now."""
        if self._pixels is None:
            self._pixels = _pixels(self.src, self.group)
        data = _jpeg(self._pixels, quality)
        if len(data) < len(self.data):
            self.data, self.rel = data, str(Path(self.rel).with_suffix(".jpg"))
            self.how = f"re-encoded (JPEG q{quality})"


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image
    with Image.open(path) as im:
        return im.size


def build_pack(task: str, data: Path, out: Path, max_mb: float = 60.0, data_set: str | None = None) -> dict:
    """Write the pack of ``task`` from the data folder ``data`` into the folder ``out`` (replaced if it is a
    pack already); returns the manifest (also written as ``out/pack.json``)."""
    name = pack_name(task, data_set)
    data, out = Path(data), Path(out)
    if out.exists():
        if not (out / "pack.json").exists() and any(out.iterdir()):
            raise FileExistsError(f"{out} exists and is not a pack; choose another folder")
        shutil.rmtree(out)
    budget = int(max_mb * 1e6)
    groups: list[tuple[Group, list[_Entry]]] = []
    for g in PACKS[name]:
        files = list_images([data / g.folder])
        files = g.select(files) if g.select else files
        if not files:
            raise FileNotFoundError(f"no images in {data / g.folder}")
        groups.append((g, [_Entry(f, f"{g.folder}/{f.name}", g) for f in files]))

    def total() -> int:
        return sum(len(e.data) for _, entries in groups for e in entries)

    for g, entries in reversed(groups):   # the last group first, down to the lowest quality, then the next
        for q in QUALITIES:
            if not g.may_reencode or total() <= budget:
                break
            for e in entries:
                e.reencode(q)
    dropped = []
    for g, entries in reversed(groups):
        while total() > budget and entries:
            dropped.append(entries.pop().rel)
    if total() > budget:
        raise ValueError(f"the {name} pack cannot fit {max_mb} MB")

    files = {}
    for g, entries in groups:
        for e in entries:
            path = out / e.rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(e.data)
            files[e.rel] = e.how
    manifest = {"pack": name, "max_mb": max_mb, "bytes": total(), "files": files, "dropped": sorted(dropped),
                "summary": _summary(groups, dropped)}
    (out / "pack.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _summary(groups, dropped: list[str]) -> list[str]:
    lines = []
    for g, entries in groups:
        hows: dict[str, int] = {}
        for e in entries:
            hows[e.how] = hows.get(e.how, 0) + 1
        size = sum(len(e.data) for e in entries) / 1e6
        lines.append(f"{g.folder}: {len(entries)} files, {size:.1f} MB, "
                     + ", ".join(f"{n} {how}" for how, n in sorted(hows.items())))
    if dropped:
        lines.append(f"dropped to fit: {len(dropped)} files ({dropped[0]} ... {dropped[-1]})")
    return lines
