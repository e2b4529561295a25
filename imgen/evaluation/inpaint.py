"""Inpainting benchmark on a folder of ``images/`` + ``masks/`` (same stem; mask 255 = hole).

Protocol: the image as RGB, the mask thresholded at 50 %, no grow/feather; the method fills the hole
(``mode="resize"`` with ``max_side`` >= the image size means the whole image at its own resolution) and every
pixel outside the hole must come back bit for bit (asserted). PSNR and SSIM over the whole image (RGB), PSNR
over the hole pixels only, and both by hole-ratio bins (0-10 %, ..., 40-50 %, >50 %). Time per image excludes
a warm-up call (model load, ONNX export). OpenCV Telea (r = 5) gives 22.77 dB / 0.822 on
``places2_512_freeform``, which checks the protocol.

Texture inside the hole: ``grad_ratio`` and ``texture_swd`` (see :mod:`imgen.evaluation.texture`) against the
truth, and for object removal, where the truth in the hole is the object itself, ``ring_grad_ratio`` and
``ring_swd``: the fill against the same result's own surroundings (:class:`imgen.evaluation.texture.RingStats`).
With ``masks="objects"`` the folder's own masks are replaced by the object-mask set (one silhouette per photo at
5-30 % of the area, a third cut by the border, seed fixed: :func:`imgen.datasets.masks.object_dev_mask`); then
the folder may also be a plain folder of photos. The tint of fills on smooth skies: :mod:`imgen.evaluation.tint`.

Also: speed against the FFDNet reference at 512 x 512 (interleaved, one process) and the 12 MP timing.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..image_io import load_image
from ..tasks.inpaint import get_inpainter, inpaint_image, load_mask
from ..datasets.folders import IMAGE_SUFFIXES
from ..datasets.masks import object_dev_mask
from ..metrics.fidelity import psnr, ssim
from .texture import RingStats, TextureStats

MASK_SETS = ("objects",)

BINS = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 1.01)]


def _bin_name(lo: float, hi: float) -> str:
    return f">{lo * 100:.0f}%" if hi > 1 else f"{lo * 100:.0f}-{hi * 100:.0f}%"


def pairs(data: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of ``data/images`` and ``data/masks`` matched by stem, sorted by name."""
    data = Path(data)
    if not (data / "images").is_dir() or not (data / "masks").is_dir():
        raise SystemExit(f"{data} needs images/ and masks/ folders (same stem, mask 255 = hole)")
    masks = {p.stem: p for p in (data / "masks").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    out = [(p, masks[p.stem]) for p in sorted((data / "images").iterdir())
           if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in masks]
    if not out:
        raise SystemExit(f"no image/mask pairs in {data}")
    return out


def eval_items(data: str | Path, masks: str | None = None) -> list[tuple[Path, Any]]:
    """(image, mask) pairs: the folder's own (``masks`` None) or the object-mask development set ("objects":
    a bool array per photo, from its index in sorted file-name order and its size)."""
    if masks is None:
        return pairs(data)
    if masks not in MASK_SETS:
        raise SystemExit(f"unknown mask set {masks!r}; choose from {', '.join(MASK_SETS)} (or none: the folder's masks/)")
    folder = Path(data) / "images" if (Path(data) / "images").is_dir() else Path(data)
    if not folder.is_dir():
        raise SystemExit(f"{data} needs an images/ folder, or photos in it")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out = []
    for k, p in enumerate(images):
        with Image.open(p) as im:
            w, h = im.size
        out.append((p, object_dev_mask(k, h, w)))
    return out


class BlurredTruth:
    """Not a method but a yardstick: fills the hole with the ground truth itself, Gaussian-blurred by ``sigma`` px.

    The benchmark hands every method the whole image (methods ignore the hole's pixels); this one reads them.
    Its scores say how much of the truth's detail a fill must get right to reach a given whole-image PSNR /
    SSIM: a fill as good as the truth blurred by ``sigma`` scores exactly this. Only the benchmark knows it
    (``--model truth-blur:SIGMA``); the app and the CLI's ``inpaint`` command do not.
    """

    PREFIX = "truth-blur:"
    multiple = 1

    def __init__(self, sigma: float):
        if not sigma > 0:
            raise ValueError(f"truth-blur needs a blur sigma > 0 px, not {sigma!r}")
        self.sigma = float(sigma)
        self.backend = f"ground truth blurred by sigma {self.sigma:g} px (a yardstick, not a method)"

    @classmethod
    def parse(cls, model: Any) -> "BlurredTruth | None":
        if isinstance(model, str) and model.lower().startswith(cls.PREFIX):
            try:
                return cls(float(model[len(cls.PREFIX):]))
            except ValueError as e:
                raise SystemExit(f"{model}: {e}") from None
        return None

    def __call__(self, arr: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(np.asarray(arr, np.float32), (0, 0), self.sigma)


def evaluate_inpaint(data: str | Path, model: Any = "context-fill", limit: int | None = None, mode: str = "resize",
                     max_side: int = 512, device: str | None = None, progress: bool = True,
                     name: str | None = None, masks: str | None = None) -> dict:
    """``model``: a name ("context-fill", "pypatchmatch", "net-patchmatch", "inpaint-net", "patchmatch", "telea",
    "ns"), a module or inpainter,
    or "truth-blur:SIGMA" (see :class:`BlurredTruth`). ``masks``: None (the folder's masks/) or "objects" (the object-mask set)."""
    items = eval_items(data, masks)[: limit or None]
    inpainter = BlurredTruth.parse(model) or get_inpainter(model, device)
    name = name or (model if isinstance(model, str) else type(model).__name__)
    # warm-up (model load, ONNX export, first allocation): not part of the timing
    img0 = load_image(items[0][0], mode="RGB")
    inpaint_image(img0, items[0][1], model=inpainter, mode=mode, max_side=max_side)
    rows = []
    texture, around = TextureStats(), RingStats()
    it = items
    if progress:
        from tqdm import tqdm
        it = tqdm(items, desc=f"inpaint {name}", leave=False)
    for img_path, mask_path in it:
        img = load_image(img_path, mode="RGB")
        ref = np.asarray(img)
        hole, _ = load_mask(mask_path, size=img.size)
        t0 = time.perf_counter()
        res = inpaint_image(img, mask_path, model=inpainter, mode=mode, max_side=max_side)
        secs = time.perf_counter() - t0
        out = np.asarray(res.image)
        if out.shape != ref.shape:   # the protocol's checks stay on under python -O
            raise RuntimeError(f"{img_path.name}: the result is {out.shape}, the reference {ref.shape}")
        if not np.array_equal(out[~hole], ref[~hole]):
            raise RuntimeError(f"{img_path.name}: pixels outside the hole changed")
        grad = texture.add(ref, out, hole)
        around.add(out, hole)
        rows.append({"image": img_path.name, "hole_ratio": round(float(hole.mean()), 4),
                     "psnr": psnr(ref, out), "ssim": ssim(ref, out),
                     "psnr_hole": psnr(ref[hole], out[hole]) if hole.any() else float("inf"),
                     "grad_ratio": grad, "seconds": secs})
    bins = []
    for lo, hi in BINS:
        sel = [r for r in rows if lo <= r["hole_ratio"] < hi]
        bins.append({"range": _bin_name(lo, hi), "n": len(sel),
                     **({k: round(float(np.mean([r[k] for r in sel])), 4) for k in ("psnr", "ssim", "psnr_hole")}
                        if sel else {"psnr": None, "ssim": None, "psnr_hole": None})})
    finite_hole = [r["psnr_hole"] for r in rows if np.isfinite(r["psnr_hole"])]
    swd, swd_levels = texture.swd()
    grad_ratio = texture.grad_ratio()
    ring_swd, ring_levels = around.swd()
    ring_grad = around.grad_ratio()
    return {"task": "inpaint", "model": name, "data": str(data), "masks": masks or "masks/", "mode": mode,
            "max_side": max_side,
            "backend": getattr(inpainter, "backend", ""),
            "psnr": round(float(np.mean([r["psnr"] for r in rows])), 3),
            "ssim": round(float(np.mean([r["ssim"] for r in rows])), 4),
            "psnr_hole": round(float(np.mean(finite_hole)), 3) if finite_hole else None,
            "grad_ratio": None if grad_ratio is None else round(grad_ratio, 4),
            "texture_swd": None if swd is None else round(swd, 1),
            "texture_swd_levels": [None if v is None else round(v, 1) for v in swd_levels],
            "ring_grad_ratio": None if ring_grad is None else round(ring_grad, 4),
            "ring_swd": None if ring_swd is None else round(ring_swd, 1),
            "ring_swd_levels": [None if v is None else round(v, 1) for v in ring_levels],
            "hole_share": round(float(np.mean([r["hole_ratio"] for r in rows])), 4),
            "seconds_per_image": round(float(np.mean([r["seconds"] for r in rows])), 4),
            "n": len(rows), "bins": bins,
            "per_image": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}


def format_table(report: dict) -> str:
    lines = [f"{report['task']} · {report['model']} · {report['data']} · masks {report.get('masks', 'masks/')} "
             f"(mode {report['mode']}, max side {report['max_side']}, {report.get('backend', '')})",
             f"{'hole':>8} {'n':>4} {'PSNR':>8} {'SSIM':>7} {'holePSNR':>9}"]
    for b in report["bins"]:
        if b["n"]:
            lines.append(f"{b['range']:>8} {b['n']:>4} {b['psnr']:>8.2f} {b['ssim']:>7.4f} {b['psnr_hole']:>9.2f}")
    ph = report["psnr_hole"]
    lines.append(f"{'all':>8} {report['n']:>4} {report['psnr']:>8.2f} {report['ssim']:>7.4f} "
                 f"{ph if ph is None else format(ph, '9.2f')}   {report['seconds_per_image']:.3f} s/image")
    g, t = report.get("grad_ratio"), report.get("texture_swd")
    levels = " / ".join("–" if v is None else f"{v:.0f}" for v in report.get("texture_swd_levels", []))
    lines.append(f"texture in the holes ({report.get('hole_share', 0):.1%} of the area): gradient ratio "
                 f"{'–' if g is None else format(g, '.3f')}, texture SWD {'–' if t is None else format(t, '.0f')} "
                 f"(levels {levels})")
    rg, rs = report.get("ring_grad_ratio"), report.get("ring_swd")
    if rs is not None or rg is not None:
        rlevels = " / ".join("–" if v is None else f"{v:.0f}" for v in report.get("ring_swd_levels", []))
        lines.append(f"the fill against its own surroundings (object removal): ring gradient ratio "
                     f"{'–' if rg is None else format(rg, '.3f')}, ring texture SWD {'–' if rs is None else format(rs, '.1f')} "
                     f"(levels {rlevels})")
    return "\n".join(lines)


def results_sheet(model: Any, data: str | Path, path: str | Path, n: int = 8, tile: int = 160,
                  columns: int = 2, masks: tuple = (None,)) -> Path:
    """A before/after sheet: (masked input | result per model | original) cells, ``columns`` groups per row, each
    picture fitted into a ``tile`` px square cell. ``model``: one model or a list (one column each). ``masks``: mask sets (None =
    the folder's masks/, "objects"), ``n`` pairs taken in turn from the first pairs of each."""
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    per = -(-n // len(masks))
    sets = [eval_items(data, m)[:per] for m in masks]
    items = [s[i] for i in range(per) for s in sets if i < len(s)][:n]
    cells = []
    for img_path, mask in items:
        img = load_image(img_path, mode="RGB")
        hole, _ = load_mask(mask, size=img.size)
        shown = np.asarray(img).copy()
        shown[hole] = 255
        results = [inpaint_image(img, hole, model=m, mode="resize", max_side=max(img.size)).image.convert("RGB")
                   for m in models]
        cells.append([Image.fromarray(shown), *results, img])
    k = len(models) + 2
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * k * tile + (columns - 1) * 8, rows * tile), (255, 255, 255))
    for i, group in enumerate(cells):
        r, c = divmod(i, columns)
        for j, im in enumerate(group):
            im = im.copy()
            im.thumbnail((tile, tile), Image.Resampling.LANCZOS)         # the photo's own aspect, centred in its cell
            sheet.paste(im, (c * (k * tile + 8) + j * tile + (tile - im.width) // 2, r * tile + (tile - im.height) // 2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return path


# ------------------------------------------------------------------------------------------------ speed
@contextlib.contextmanager
def _scratch_onnx_cache():
    """Random-weight benchmark models are exported to a throw-away ONNX cache, never the user's."""
    old = os.environ.get("IMGEN_CACHE")
    with tempfile.TemporaryDirectory(prefix="imgen-bench-") as d:
        os.environ["IMGEN_CACHE"] = d
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("IMGEN_CACHE", None)
            else:
                os.environ["IMGEN_CACHE"] = old


def speed_vs_ffdnet(size: int = 512, repeats: int = 5, config: dict | None = None) -> dict:
    """Our generator (random weights; ``config`` overrides) against the FFDNet reference at size x size,
    PyTorch eager / channels_last / ONNX Runtime, interleaved in one process so the ratios hold on a busy machine
    (medians of ``repeats`` runs)."""
    import torch
    from ..models import build_model
    from ..models.ffdnet import FFDNet
    from ..runtime import OnnxModule
    import warnings

    x, s = torch.rand(1, 3, size, size), torch.tensor([25.0])
    m = (torch.rand(1, 1, size, size) > 0.7).float()
    cl = torch.channels_last
    ffd, ffd_cl = FFDNet().eval(), FFDNet().eval().to(memory_format=cl)
    ours, ours_cl = build_model("inpaint_net", config).eval(), build_model("inpaint_net", config).eval().to(memory_format=cl)
    xc, mc = x.contiguous(memory_format=cl), m.contiguous(memory_format=cl)
    with warnings.catch_warnings(), _scratch_onnx_cache():
        warnings.simplefilter("ignore")
        on_ffd = OnnxModule(ffd, (torch.zeros(1, 3, 64, 64), torch.zeros(1)), ["x", "sigma"])
        on_ours = OnnxModule(ours, (torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)), ["image", "mask"])
    xa, sa, ma = x.numpy(), s.numpy(), m.numpy()
    runners = {
        "ffdnet_eager": lambda: ffd(x, s), "ffdnet_channels_last": lambda: ffd_cl(xc, s),
        "ffdnet_onnxruntime": lambda: on_ffd(xa, sa),
        "ours_eager": lambda: ours(x, m), "ours_channels_last": lambda: ours_cl(xc, mc),
        "ours_onnxruntime (shipped)": lambda: on_ours(xa, ma),
    }
    times: dict[str, list[float]] = {k: [] for k in runners}
    # PyTorch runners first, then ONNX Runtime ones (each group interleaved): ORT's worker threads keep
    # spinning for a while after a run and would slow down a PyTorch call that follows at once.
    groups = [[k for k in runners if "onnxruntime" not in k], [k for k in runners if "onnxruntime" in k]]
    with torch.inference_mode():
        for group in groups:
            for k in group:
                runners[k]()
            for _ in range(repeats):
                for k in group:
                    t0 = time.perf_counter()
                    runners[k]()
                    times[k].append(time.perf_counter() - t0)
    med = {k: round(statistics.median(v), 4) for k, v in times.items()}
    return {"benchmark": f"inpaint generator vs FFDNet at {size}x{size}", "threads": torch.get_num_threads(),
            "params_m": round(sum(p.numel() for p in ours.parameters()) / 1e6, 3), "seconds": med,
            "ratio_shipped_vs_ffdnet_eager": round(med["ours_onnxruntime (shipped)"] / med["ffdnet_eager"], 3),
            "ratio_shipped_vs_ffdnet_onnxruntime": round(med["ours_onnxruntime (shipped)"] / med["ffdnet_onnxruntime"], 3),
            "ratio_eager_vs_ffdnet_eager": round(med["ours_eager"] / med["ffdnet_eager"], 3)}


def method_timing(size: int = 512, models: tuple = ("context-fill", "pypatchmatch", "net-patchmatch", "inpaint-net",
                                                   "patchmatch", "telea"),
                  repeats: int = 5, hole_share: float = 0.33) -> dict:
    """Each method end to end (``inpaint_image``, mask preparation and paste-back included) on a size x size
    textured, photo-like image with a free-form mask of about ``hole_share`` (LaMa strokes, seed 0): medians of
    ``repeats`` runs after a warm-up, interleaved. Methods that need an unregistered network are left out."""
    from ..store import StoreError
    from ..datasets.masks import MaskGenerator
    rng = np.random.default_rng(0)
    coarse = cv2.resize(rng.integers(30, 230, (8, 8, 3)).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    img = np.clip(coarse + cv2.GaussianBlur(rng.normal(0, 25, (size, size, 3)), (0, 0), 1.0), 0, 255).astype(np.uint8)
    mask = MaskGenerator("thick", min_ratio=hole_share - 0.05, max_ratio=hole_share + 0.05)(size, size, rng)
    runners, skipped = {}, []
    for m in models:
        try:
            runners[m] = get_inpainter(m)
        except StoreError:
            skipped.append(m)
    times: dict[str, list[float]] = {m: [] for m in runners}
    for m, inp in runners.items():
        inpaint_image(img, mask, model=inp, mode="resize", max_side=size)      # warm-up
    for _ in range(repeats):
        for m, inp in runners.items():
            times[m].append(inpaint_image(img, mask, model=inp, mode="resize", max_side=size).seconds)
    return {"benchmark": f"inpaint methods end to end at {size}x{size}", "hole_share": round(float(mask.mean()), 3),
            "seconds": {m: round(statistics.median(v), 3) for m, v in times.items()},
            "backends": {m: getattr(inp, "backend", "") for m, inp in runners.items()},
            **({"skipped (no network registered)": skipped} if skipped else {})}


def large_image_timing(width: int = 4000, height: int = 3000, model: Any = None, stroke: int = 40,
                       mode: str = "crop", max_side: int = 512, repeats: int = 3) -> dict:
    """A ``width`` x ``height`` photo-like image with one brush stroke, filled end to end (median of runs after
    a warm-up). ``model``: a name, a module, or None for the default-config network with random weights."""
    import cv2
    scratch = contextlib.nullcontext()
    if model is None:
        from ..models import build_model
        model = build_model("inpaint_net").eval()
        scratch = _scratch_onnx_cache()
    yy, xx = np.mgrid[0:height, 0:width]
    img = Image.fromarray(np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) % 256], 2).astype(np.uint8))
    mask = np.zeros((height, width), np.uint8)
    cv2.line(mask, (width // 3, height // 3), (width // 3 + width // 8, height // 3 + height // 10), 255, stroke)
    mask_img = Image.fromarray(mask, "L")
    with scratch:
        model = get_inpainter(model)   # loads / exports once (not timed)
    inpaint_image(img, mask_img, model=model, mode=mode, max_side=max_side)  # warm-up
    ts, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = inpaint_image(img, mask_img, model=model, mode=mode, max_side=max_side)
        ts.append(time.perf_counter() - t0)
    return {"benchmark": "inpaint large image", "size": [width, height], "megapixels": width * height / 1e6,
            "hole_pixels": int((mask > 0).sum()), "mode": mode, "max_side": max_side,
            "seconds": round(statistics.median(ts), 3), "regions": res.regions, "backend": res.backend,
            "notes": res.notes}
