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

Every method is compared with the same numbers for the unstyled photos ("photo") and for the classical
baseline ("reference": Reinhard Lab transfer from painting k mod n for the k-th photo).
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

from ..image_io import load_image
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


# ------------------------------------------------------------------------------------------ evaluation
def _score(method: str, pairs, target: StyleTarget, seconds: float) -> dict:
    rows = []
    for src, out in pairs:
        rows.append({"edge_ssim": edge_ssim(src, out), **target.distances(out)})
    mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    return {"method": method, **mean, "seconds_per_image": round(seconds / len(rows), 4), "n": len(rows)}


def evaluate_stylize(data: str | Path, model: Any = None, paintings: str | Path = PAINTINGS,
                     strength: float = 1.0, max_side: int = 768, limit: int | None = None,
                     progress: bool = True, device: str | None = None) -> dict:
    """Content kept and style reached for the unstyled photos, the Reinhard reference baseline (painting
    k mod n for photo k) and, if given, a trained style ``model`` (a registered name or a module)."""
    from ..tasks.stylize import stylize_image
    paths = list_images([data])[: limit or None]
    if not paths:
        raise SystemExit(f"no images in {data}")
    target = StyleTarget(paintings)
    photos = [np.asarray(load_image(p, mode="RGB")) for p in paths]
    reports = [_score("photo (unstyled)", [(a, a) for a in photos], target, 0.0)]

    def run(style, **kw) -> tuple[list, float]:
        pairs, secs = [], 0.0
        it = enumerate(photos)
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(photos), desc=str(kw.get("label", style)), leave=False)
        for k, a in it:
            ref = target.paths[k % len(target.paths)] if style == "reference" else None
            t0 = time.perf_counter()
            res = stylize_image(a, style, reference=ref, strength=strength, max_side=max_side, device=device)
            secs += time.perf_counter() - t0
            pairs.append((a, np.asarray(res.image.convert("RGB"))))
        return pairs, secs

    pairs, secs = run("reference", label="reference (Reinhard)")
    reports.append(_score("reference (Reinhard, painting k mod n)", pairs, target, secs))
    if model is not None:
        from ..tasks.stylize import get_stylizer
        get_stylizer(model, device)                       # load / export once, not timed
        stylize_image(photos[0][:64, :64], model, max_side=max_side, device=device)   # warm-up
        pairs, secs = run(model, label=str(model))
        reports.append(_score(model if isinstance(model, str) else "model", pairs, target, secs))
    return {"task": "stylize", "data": str(data), "paintings": str(paintings), "n_paintings": len(target.paths),
            "strength": strength, "max_side": max_side, "reports": reports}


def format_table(report: dict) -> str:
    lines = [f"stylize · {report['data']} · style target {Path(report['paintings']).name} "
             f"({report['n_paintings']} paintings) · strength {report['strength']:g}",
             f"{'method':<40} {'edge SSIM ↑':>11} {'colour W1 ↓':>11} {'Gram ↓':>8} {'Gram luma ↓':>11} "
             f"{'s/img':>7} {'n':>4}"]
    for r in report["reports"]:
        lines.append(f"{r['method'][:40]:<40} {r['edge_ssim']:>11.4f} {r['colour_w1']:>11.3f} {r['gram']:>8.4f} "
                     f"{r['gram_gray']:>11.4f} {r['seconds_per_image']:>7.3f} {r['n']:>4}")
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
    """Photo | stylized, a ``size`` (w, h) crop from a quarter in from the top-left of photo ``index`` of
    ``data`` at full resolution, enlarged ``zoom`` times with nearest neighbour (texture is visible, not
    smoothed)."""
    from ..tasks.stylize import stylize_image
    paths = list_images([data])
    img = load_image(paths[min(index, len(paths) - 1)], mode="RGB")
    out = stylize_image(img, model, strength=strength, max_side=max_side).image.convert("RGB")
    w, h = min(size[0], img.width), min(size[1], img.height)
    box = (img.width // 4, img.height // 4, img.width // 4 + w, img.height // 4 + h)
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
    from ..tasks.stylize import get_stylizer, stylize_image
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
    runs = {"network (end to end)": lambda: stylize_image(img, stylizer, strength=0.8, max_side=max_side),
            "network (generator only)": lambda: stylizer(np.asarray(img)),
            "reference reinhard": lambda: stylize_image(img, "reference", reference=ref, method="reinhard"),
            "reference histogram": lambda: stylize_image(img, "reference", reference=ref, method="histogram")}
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
