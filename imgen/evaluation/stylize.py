"""Stylize quality and speed: both sides of the content/style trade-off, on photos never trained on (CBSD68).

    python -m imgen eval stylize --data ../shared/data/eval/denoise/CBSD68 --model stylize-titian --json r.json
    python -m imgen bench stylize [--model NAME]       # 512x512 median time; a 12 MP photo with peak RSS

Content kept: SSIM between the Sobel edge-magnitude maps (of the luma) of the input and the output, 1 = every
edge where it was. Style reached, against the painting set (../shared/data/paintings/titian by default):

- ``colour_w1``: 1-D Wasserstein (earth mover's) distance between the image's CIE Lab channel histograms and
  the pooled histograms of all paintings, summed over L, a, b (Lab units; lower = the painting palette);
- ``gram``: relative Frobenius distance between the image's Gram matrices and the paintings' mean Gram
  matrices, averaged over three layers of a FIXED, randomly initialised conv network (seed 0; random
  features are a reasonable texture descriptor, Ustyuzhaninov et al. 2017), images at long side 256.
  Uncentred Gram matrices of colour images also carry the palette, so a pure colour transfer moves them
  a lot; ``gram_gray`` is the same distance on the luma alone (tone and texture, not hue).

- ``texture_swd`` (issue #17): the set of results against the set of paintings, both at long side 512: sliced
  Wasserstein distance (Karras et al. 2018) between 7x7 patches of a 4-level Laplacian pyramid (8 192 per level
  and set, spread evenly over the images; each level's patches normalised per channel by their set's mean and
  spread), 256 random directions, x10^3, mean over levels; ``colour_swd``: the same on CIE Lab pixels (65 536,
  not normalised, Lab units). The paintings' even- and odd-numbered halves against each other give the floor.
  ``ref_texture_swd`` (reference rows): each result against its own reference alone, averaged.

Every method is compared with the same numbers for the unstyled photos ("photo") and for the reference
baselines (painting k mod n for the k-th photo: Reinhard Lab transfer, and the patch texture transfer).
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from PIL import Image

from ..image_io import at_long_side, load_image
from ..datasets.folders import list_images
from ..metrics.fidelity import ssim

PAINTINGS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "paintings" / "titian"
GRAM_SIDE = 256
LAB_BINS = {0: (0.0, 100.0, 100), 1: (-128.0, 128.0, 128), 2: (-128.0, 128.0, 128)}


# ------------------------------------------------------------------------------------------- content
def edge_map(rgb: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the luma (float32, 0..~1.4 for an 8-bit image)."""
    g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    g = g.astype(np.float32) / 255.0
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT) / 4
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT) / 4
    return np.sqrt(gx * gx + gy * gy)


def edge_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between the edge maps of two same-size uint8 images (data range 1)."""
    return ssim(edge_map(a), edge_map(b), data_range=1.0)


# --------------------------------------------------------------------------------------------- style
def lab_histograms(rgb: np.ndarray) -> list[np.ndarray]:
    """Normalised histograms of L, a, b (fixed bins, see ``LAB_BINS``)."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    out = []
    for c, (lo, hi, n) in LAB_BINS.items():
        h, _ = np.histogram(lab[:, c], bins=n, range=(lo, hi))
        out.append(h / max(1, h.sum()))
    return out


def colour_w1(hists: list[np.ndarray], target: list[np.ndarray]) -> float:
    """Sum over Lab channels of the 1-D Wasserstein distance between histograms (in Lab units)."""
    total = 0.0
    for c, (lo, hi, n) in LAB_BINS.items():
        width = (hi - lo) / n
        total += float(np.abs(np.cumsum(hists[c]) - np.cumsum(target[c])).sum() * width)
    return total


class GramNet(nn.Module):
    """A fixed random conv network (seed 0) whose Gram matrices describe texture; never trained."""

    def __init__(self, seed: int = 0, widths=(32, 64, 128)):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        cin = 3
        for i, w in enumerate(widths):
            conv = nn.Conv2d(cin, w, 3, stride=1 if i == 0 else 2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (cin * 9)) ** 0.5)
                conv.bias.zero_()
            self.convs.append(conv)
            cin = w
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def grams(self, rgb: np.ndarray) -> list[torch.Tensor]:
        """Gram matrices (C x C, divided by the number of positions) of each layer for a uint8 image,
        taken at long side ``GRAM_SIDE``."""
        h, w = rgb.shape[:2]
        s = GRAM_SIDE / max(h, w)
        if s != 1:
            rgb = cv2.resize(rgb, (max(4, round(w * s)), max(4, round(h * s))),
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32).transpose(2, 0, 1))[None] / 127.5 - 1
        out = []
        for conv in self.convs:
            x = F.relu(conv(x))
            f = x.flatten(2)[0]
            out.append(f @ f.t() / f.shape[1])
        return out


def gram_distance(grams: list[torch.Tensor], target: list[torch.Tensor]) -> float:
    return float(np.mean([(g - t).norm().item() / t.norm().item() for g, t in zip(grams, target)]))


class StyleTarget:
    """The painting set's pooled Lab histograms and mean Gram matrices, and distances to them."""

    def __init__(self, paintings: str | Path = PAINTINGS, limit: int | None = None):
        paths = list_images([paintings])[: limit or None]
        if not paths:
            raise SystemExit(f"no paintings in {paintings}")
        self.paths = paths
        self.net = GramNet()
        sums: dict[str, list] = {}
        for p in paths:
            rgb = np.asarray(load_image(p, mode="RGB"))
            for k, v in (("hist", lab_histograms(rgb)), ("gram", self.net.grams(rgb)),
                         ("gram_gray", self.net.grams(_luma3(rgb)))):
                sums[k] = v if k not in sums else [a + b for a, b in zip(sums[k], v)]
        self.hist = [h / len(paths) for h in sums["hist"]]
        self.gram = [g / len(paths) for g in sums["gram"]]
        self.gram_gray = [g / len(paths) for g in sums["gram_gray"]]

    def distances(self, rgb: np.ndarray) -> dict:
        return {"colour_w1": colour_w1(lab_histograms(rgb), self.hist),
                "gram": gram_distance(self.net.grams(rgb), self.gram),
                "gram_gray": gram_distance(self.net.grams(_luma3(rgb)), self.gram_gray)}


def _luma3(rgb: np.ndarray) -> np.ndarray:
    """The luma of a uint8 RGB image as three equal channels."""
    return np.repeat(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)


# ------------------------------------------------------------------------- distribution distances (SWD)
SWD_SIDE = 512          # both sets are resized to this long side
SWD_LEVELS = 4          # Laplacian pyramid levels (the last is the low-pass residual)
SWD_PATCH = 7
SWD_DIRECTIONS = 256
SWD_PATCHES = 8192      # texture descriptors per level and set (spread evenly over the set's images)
SWD_PIXELS = 65536      # Lab pixels per set for the colour SWD


def _per_image(total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many samples each of ``n`` images gives so that they add up to ``total`` (even, rest at random)."""
    counts = np.full(n, total // n)
    counts[rng.choice(n, total % n, replace=False)] += 1
    return counts


def texture_descriptors(images, patches: int = SWD_PATCHES, seed: int = 0, side: int | None = SWD_SIDE,
                        levels: int = SWD_LEVELS) -> list[np.ndarray]:
    """Per Laplacian level (finest first), ``patches`` 7x7 RGB patches from a set of uint8 images (each resized
    to long side ``side``; None = as they are), normalised per channel by the set's own mean and spread.
    A fixed ``seed`` fixes the positions: the same set gives the same descriptors."""
    from ..metrics.swd import gather_patches, normalise_patches
    from ..pyramid import laplacian_pyramid
    rng = np.random.default_rng(seed)
    counts = _per_image(patches, len(images), rng)
    out: list[list[np.ndarray]] = [[] for _ in range(levels)]
    for img, k in zip(images, counts):
        a = at_long_side(img, side) if side else img
        x = torch.from_numpy(np.ascontiguousarray(a, np.float32).transpose(2, 0, 1))[None] / 127.5 - 1
        for lvl, band in enumerate(laplacian_pyramid(x, levels)):
            h, w = band.shape[-2:]
            ys = torch.from_numpy(rng.integers(0, max(1, h - SWD_PATCH + 1), (1, k)))
            xs = torch.from_numpy(rng.integers(0, max(1, w - SWD_PATCH + 1), (1, k)))
            out[lvl].append(gather_patches(band, ys, xs, SWD_PATCH).numpy())
    return [normalise_patches(np.concatenate(d), 3).astype(np.float32) for d in out]


def swd_between(desc_a: list[np.ndarray], desc_b: list[np.ndarray], seed: int = 0) -> dict:
    """Texture SWD x10^3 per level and its mean, between two :func:`texture_descriptors` results."""
    from ..metrics.swd import sliced_wasserstein
    levels = [1000 * sliced_wasserstein(a, b, SWD_DIRECTIONS, np.random.default_rng(seed + k))
              for k, (a, b) in enumerate(zip(desc_a, desc_b))]
    return {"texture_swd": float(np.mean(levels)), "texture_swd_levels": levels}


def lab_pixels(images, pixels: int = SWD_PIXELS, seed: int = 0, side: int | None = SWD_SIDE) -> np.ndarray:
    """``pixels`` CIE Lab pixels (float32, (pixels, 3)) drawn evenly from a set of uint8 RGB images."""
    rng = np.random.default_rng(seed)
    counts = _per_image(pixels, len(images), rng)
    out = []
    for img, k in zip(images, counts):
        a = at_long_side(img, side) if side else img
        lab = cv2.cvtColor(np.ascontiguousarray(a).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
        out.append(lab[rng.integers(0, len(lab), k)])
    return np.concatenate(out)


def colour_swd_between(lab_a: np.ndarray, lab_b: np.ndarray, seed: int = 0) -> float:
    """Sliced Wasserstein distance between two sets of Lab pixels (Lab units, not normalised)."""
    from ..metrics.swd import sliced_wasserstein
    return sliced_wasserstein(lab_a, lab_b, SWD_DIRECTIONS, np.random.default_rng(seed))


def texture_swd(images_a, images_b, seed: int = 0, patches: int = SWD_PATCHES, side: int | None = SWD_SIDE) -> float:
    """Texture SWD x10^3 between two image sets (long side 512, 4 Laplacian levels, 7x7 patches)."""
    return swd_between(texture_descriptors(images_a, patches, seed, side),
                       texture_descriptors(images_b, patches, seed, side), seed)["texture_swd"]


def colour_swd(images_a, images_b, seed: int = 0, pixels: int = SWD_PIXELS, side: int | None = SWD_SIDE) -> float:
    """Colour SWD (Lab units) between two image sets, both at long side 512."""
    return colour_swd_between(lab_pixels(images_a, pixels, seed, side), lab_pixels(images_b, pixels, seed, side),
                              seed)


class SwdTarget:
    """A set's texture descriptors and Lab pixels, computed once (e.g. the paintings); ``distances(images)``
    gives the texture and colour SWD of another set to it. With few ``patches`` and a subset of the paintings
    it is cheap enough to watch during training (fixed positions, fixed directions)."""

    def __init__(self, images, patches: int = SWD_PATCHES, pixels: int = SWD_PIXELS, seed: int = 0,
                 side: int | None = SWD_SIDE):
        self.patches, self.pixels, self.seed, self.side = patches, pixels, seed, side
        self.desc = texture_descriptors(images, patches, seed, side)
        self.lab = lab_pixels(images, pixels, seed, side)

    def distances(self, images) -> dict:
        d = swd_between(texture_descriptors(images, self.patches, self.seed + 1, self.side), self.desc, self.seed)
        d["colour_swd"] = colour_swd_between(lab_pixels(images, self.pixels, self.seed + 1, self.side), self.lab,
                                             self.seed)
        return d


# ------------------------------------------------------------------------------------------ evaluation
def _score(method: str, pairs, target: StyleTarget, seconds: float, swd: SwdTarget | None = None) -> dict:
    rows = []
    for src, out in pairs:
        rows.append({"edge_ssim": edge_ssim(src, out), **target.distances(out)})
    mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    if swd is not None:
        d = swd.distances([out for _, out in pairs])
        mean.update(texture_swd=round(d["texture_swd"], 2), colour_swd=round(d["colour_swd"], 3),
                    texture_swd_levels=[round(v, 2) for v in d["texture_swd_levels"]])
    return {"method": method, **mean, "seconds_per_image": round(seconds / len(rows), 4), "n": len(rows)}


def _to_references(images, references) -> float:
    """Mean over k of the texture SWD between image k alone and reference k alone."""
    return round(float(np.mean([texture_swd([a], [r]) for a, r in zip(images, references)])), 2)


def paintings_floor(paintings: list[np.ndarray]) -> dict:
    """The paintings against each other (even- vs odd-numbered halves): the lowest the SWDs get here."""
    a, b = paintings[0::2], paintings[1::2]
    d = swd_between(texture_descriptors(a, seed=0), texture_descriptors(b, seed=1))
    return {"method": "paintings, half vs half (floor)", "texture_swd": round(d["texture_swd"], 2),
            "colour_swd": round(colour_swd_between(lab_pixels(a, seed=0), lab_pixels(b, seed=1)), 3),
            "texture_swd_levels": [round(v, 2) for v in d["texture_swd_levels"]], "n": len(a)}


def evaluate_stylize(data: str | Path, model: Any = None, paintings: str | Path = PAINTINGS,
                     strength: float = 1.0, max_side: int = 768, limit: int | None = None,
                     progress: bool = True, device: str | None = None,
                     methods: tuple[str, ...] = ("reinhard", "texture")) -> dict:
    """Content kept and style reached for the paintings against each other (the floor), the unstyled photos,
    the reference ``methods`` (painting k mod n for photo k) and, if given, a trained style ``model`` (a
    registered name or a module)."""
    from ..tasks.stylize import stylize_image
    paths = list_images([data])[: limit or None]
    if not paths:
        raise SystemExit(f"no images in {data}")
    target = StyleTarget(paintings)
    painting_images = [np.asarray(load_image(p, mode="RGB")) for p in target.paths]
    swd = SwdTarget(painting_images)
    photos = [np.asarray(load_image(p, mode="RGB")) for p in paths]
    reports = [paintings_floor(painting_images),
               _score("photo (unstyled)", [(a, a) for a in photos], target, 0.0, swd)]

    def run(style, method: str = "reinhard", **kw) -> tuple[list, float]:
        pairs, secs = [], 0.0
        it = enumerate(photos)
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(photos), desc=str(kw.get("label", style)), leave=False)
        for k, a in it:
            ref = references[k] if style == "reference" else None
            t0 = time.perf_counter()
            res = stylize_image(a, style, reference=ref, strength=strength, max_side=max_side, method=method,
                                device=device, brushwork=kw.get("brushwork", True))
            secs += time.perf_counter() - t0
            pairs.append((a, np.asarray(res.image.convert("RGB"))))
        return pairs, secs

    # reference rows: photo k takes painting k mod n; besides the set measures, the texture SWD of each
    # result to its own reference alone (the reference mode's own target), against the photo's
    references = [painting_images[k % len(painting_images)] for k in range(len(photos))]
    reports[-1]["ref_texture_swd"] = _to_references([a for a in photos], references)
    for method, label in (("reinhard", "reference (Reinhard, painting k mod n)"),
                          ("texture", "reference (texture, painting k mod n)")):
        if method not in methods:
            continue
        pairs, secs = run("reference", method, label=label)
        reports.append(_score(label, pairs, target, secs, swd))
        reports[-1]["ref_texture_swd"] = _to_references([o for _, o in pairs], references)
    if model is not None:
        from ..tasks.stylize import get_stylizer
        get_stylizer(model, device)                       # load / export once, not timed
        stylize_image(photos[0][:64, :64], model, max_side=max_side, device=device)   # warm-up
        from ..tasks.stylize import get_brushwork
        if get_brushwork(model, device) is not None:       # the network alone, for comparison
            pairs, secs = run(model, label=f"{model}, no brushwork pass", brushwork=False)
            reports.append(_score(f"{model}, no brushwork pass", pairs, target, secs, swd))
        pairs, secs = run(model, label=str(model))
        reports.append(_score(model if isinstance(model, str) else "model", pairs, target, secs, swd))
    return {"task": "stylize", "data": str(data), "paintings": str(paintings), "n_paintings": len(target.paths),
            "strength": strength, "max_side": max_side, "reports": reports}


def format_table(report: dict) -> str:
    def f(r, k, spec):
        return format(r[k], spec) if r.get(k) is not None else "–"
    lines = [f"stylize · {report['data']} · style target {Path(report['paintings']).name} "
             f"({report['n_paintings']} paintings) · strength {report['strength']:g}",
             f"{'method':<40} {'texture SWD ↓':>13} {'colour SWD ↓':>12} {'edge SSIM ↑':>11} {'to own ref ↓':>12} "
             f"{'colour W1 ↓':>11} {'Gram ↓':>8} {'Gram luma ↓':>11} {'s/img':>7} {'n':>4}"]
    for r in report["reports"]:
        lines.append(f"{r['method'][:40]:<40} {f(r, 'texture_swd', '.1f'):>13} {f(r, 'colour_swd', '.2f'):>12} "
                     f"{f(r, 'edge_ssim', '.4f'):>11} {f(r, 'ref_texture_swd', '.1f'):>12} "
                     f"{f(r, 'colour_w1', '.3f'):>11} {f(r, 'gram', '.4f'):>8} "
                     f"{f(r, 'gram_gray', '.4f'):>11} {f(r, 'seconds_per_image', '.3f'):>7} {r['n']:>4}")
    return "\n".join(lines)


def results_sheet(model: Any, data: str | Path, path: str | Path, n: int = 8, tile: int = 192, columns: int = 2,
                  strength: float = 1.0, max_side: int = 768) -> Path:
    """A before/after sheet of the first ``n`` photos of ``data``: (photo | stylized) pairs, ``columns`` pairs
    per row, each picture ``tile`` px on its long side (aspect kept, centred in a tile x tile cell)."""
    from ..tasks.stylize import stylize_image
    cells = []
    for p in list_images([data])[:n]:
        img = load_image(p, mode="RGB")
        out = stylize_image(img, model, strength=strength, max_side=max_side).image.convert("RGB")
        cells.append((img, out))
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * 2 * tile + (columns - 1) * 8, rows * tile), (255, 255, 255))
    for i, pair in enumerate(cells):
        r, c = divmod(i, columns)
        for j, im in enumerate(pair):
            im = im.copy()
            im.thumbnail((tile, tile), Image.Resampling.LANCZOS)
            x0 = c * (2 * tile + 8) + j * tile + (tile - im.width) // 2
            sheet.paste(im, (x0, r * tile + (tile - im.height) // 2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return path


def detail_crop(model: Any, data: str | Path, path: str | Path, index: int = 20, size: tuple[int, int] = (300, 220),
                zoom: int = 2, strength: float = 1.0, max_side: int = 768) -> Path:
    """Photo | stylized, a ``size`` (w, h) crop from a quarter in from the top-left (or less, so it stays
    inside the photo) of photo ``index`` of
    ``data`` at full resolution, enlarged ``zoom`` times with nearest neighbour (texture is visible, not
    smoothed)."""
    from ..tasks.stylize import stylize_image
    paths = list_images([data])
    img = load_image(paths[min(index, len(paths) - 1)], mode="RGB")
    out = stylize_image(img, model, strength=strength, max_side=max_side).image.convert("RGB")
    w, h = min(size[0], img.width), min(size[1], img.height)
    x0, y0 = min(img.width // 4, img.width - w), min(img.height // 4, img.height - h)   # inside the photo
    box = (x0, y0, x0 + w, y0 + h)
    pair = Image.new("RGB", (2 * w + 4, h), (255, 255, 255))
    pair.paste(img.crop(box), (0, 0))
    pair.paste(out.crop(box), (w + 4, 0))
    pair = pair.resize((pair.width * zoom, pair.height * zoom), Image.Resampling.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pair.save(path, optimize=True)
    return path


# ------------------------------------------------------------------------------------------------ speed
def _photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth, colourful, textured test picture (no dependence on data files)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3)).astype(np.uint8)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return Image.fromarray(img)


def _model_or_default(model: Any):
    """``model`` (a name or module), or the default-config generator with random weights (speed only)."""
    if model is not None:
        return model, str(model)
    from ..models import build_model
    torch.manual_seed(0)
    return build_model("stylize_net").eval(), "stylize_net default config (random weights)"


def _large_child(width: int, height: int, model: Any, style: str, max_side: int) -> dict:
    """Runs in a fresh subprocess: stylize one width x height picture end to end; time and peak RSS."""
    from ..device import configure_threads
    from ..tasks.stylize import get_stylizer, stylize_image
    configure_threads()
    img = _photo_like(width, height)
    ref = _photo_like(640, 480, seed=1) if style == "reference" else None
    if style != "reference":
        model, _ = _model_or_default(model)
        get_stylizer(model)                                  # export / load: not timed
        style = model
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    res = stylize_image(img, style, reference=ref, strength=0.8, max_side=max_side)
    seconds = time.perf_counter() - t0
    return {"size": [width, height], "megapixels": round(width * height / 1e6, 2), "style": str(res.style),
            "seconds": round(seconds, 2), "processed_size": res.processed_size, "backend": res.backend,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_mb": round(rss_before, 1), "output_size": list(res.image.size)}


def _run_child(width: int, height: int, model: Any, style: str, max_side: int) -> dict:
    import tempfile
    code = ("import json; from imgen.evaluation.stylize import _large_child; "
            f"print(json.dumps(_large_child({width}, {height}, {model!r}, {style!r}, {max_side})))")
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="imgen-bench-") as d:
        if model is None:   # the random-weight network is exported to a throw-away ONNX cache
            env["IMGEN_CACHE"] = d
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                             cwd=Path(__file__).resolve().parents[2])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(model: str | None = None, size: int = 512, width: int = 4000, height: int = 3000,
          max_side: int = 768, repeats: int = 5) -> dict:
    """``size`` x ``size`` end to end (median of ``repeats`` after a warm-up) for the network and for both
    reference methods; then a ``width`` x ``height`` picture in fresh subprocesses (network, reference)."""
    import tempfile
    from ..tasks.stylize import get_brushwork, get_stylizer, stylize_image
    img, ref = _photo_like(size, size), _photo_like(640, 480, seed=1)
    old = os.environ.get("IMGEN_CACHE")
    with tempfile.TemporaryDirectory(prefix="imgen-bench-") as d:
        if model is None:
            os.environ["IMGEN_CACHE"] = d
        try:
            net, label = _model_or_default(model)
            stylizer = get_stylizer(net)
        finally:
            if model is None:
                if old is None:
                    os.environ.pop("IMGEN_CACHE", None)
                else:
                    os.environ["IMGEN_CACHE"] = old
    runs = {"network (end to end, no brushwork)": lambda: stylize_image(img, stylizer, strength=0.8, max_side=max_side),
            "network (generator only)": lambda: stylizer(np.asarray(img)),
            **({"style end to end (network + brushwork)": lambda: stylize_image(img, model, strength=0.8,
                                                                                max_side=max_side)}
               if isinstance(model, str) and get_brushwork(model) is not None else {}),
            "reference reinhard": lambda: stylize_image(img, "reference", reference=ref, method="reinhard"),
            "reference histogram": lambda: stylize_image(img, "reference", reference=ref, method="histogram"),
            "reference texture": lambda: stylize_image(img, "reference", reference=ref, method="texture")}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {"benchmark": "stylize speed", "model": label, "backend": getattr(stylizer, "backend", ""),
            "threads": torch.get_num_threads(), "size": size, "max_side": max_side, "repeats": repeats,
            "seconds_median": {k: round(statistics.median(v), 4) for k, v in times.items()},
            "seconds_min": {k: round(min(v), 4) for k, v in times.items()},
            "large": [_run_child(width, height, model, "network", max_side),
                      _run_child(width, height, None, "reference", max_side)]}
