"""Speed benchmarks on this machine's CPU.

``denoise_vs_ffdnet``: the shipped denoiser against an FFDNet-architecture network (colour: pixel-unshuffle
x2, 12 conv layers x 96 channels, sigma map; random weights) on the same images, interleaved in one run, so
the ratio is meaningful on a noisy shared machine. Both are timed in PyTorch eager and in ONNX Runtime.

``denoise_large``: one large photo (default 12 MP) end to end through the task function, in a fresh
subprocess so that its peak resident memory is its own.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..image_io import load_image, pad_to_multiple
from ..models.ffdnet import FFDNet
from ..runtime import OnnxModule
from ..datasets.folders import list_images


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def denoise_vs_ffdnet(data: str | Path, limit: int = 8, repeats: int = 3, model: str = "denoise-unet") -> dict:
    from ..store import load
    ours = load(model, device="cpu")
    ffd = FFDNet().eval()
    ex = (torch.zeros(1, 3, 64, 64), torch.zeros(1))
    runners = {
        "ffdnet_eager": (ffd, None, 2),
        "ffdnet_onnxruntime": (ffd, OnnxModule(ffd, ex, ["x", "sigma"]), 2),
        "ours_eager": (ours, None, ours.multiple),
        "ours_onnxruntime (shipped)": (ours, OnnxModule(ours, ex, ["x", "sigma"]), ours.multiple),
    }
    images = [load_image(p, mode="RGB") for p in list_images([data])[:limit]]
    seconds = {k: 0.0 for k in runners}
    mp = 0.0
    with torch.inference_mode():
        for img in images:
            x = torch.from_numpy(np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0)[None]
            s = torch.tensor([25.0])
            mp += x.shape[2] * x.shape[3] / 1e6
            for name, (module, onnx, mult) in runners.items():
                xp, _ = pad_to_multiple(x, mult)
                if onnx is not None:
                    a, b = xp.numpy(), s.numpy()
                    fn = lambda: onnx(a, b)  # noqa: E731
                else:
                    fn = lambda: module(xp, s)  # noqa: E731
                fn()  # warm-up for this shape
                seconds[name] += _median_time(fn, repeats)
    per_mp = {k: round(v / mp, 3) for k, v in seconds.items()}
    return {
        "benchmark": "denoise speed vs FFDNet", "images": len(images), "megapixels": round(mp, 3),
        "threads": torch.get_num_threads(), "seconds_per_mp": per_mp,
        "ratio_shipped_vs_ffdnet_eager": round(per_mp["ours_onnxruntime (shipped)"] / per_mp["ffdnet_eager"], 3),
        "ratio_same_runtime_onnxruntime": round(per_mp["ours_onnxruntime (shipped)"] / per_mp["ffdnet_onnxruntime"], 3),
        "ratio_same_runtime_eager": round(per_mp["ours_eager"] / per_mp["ffdnet_eager"], 3),
    }


def _large_child(width: int, height: int, source: str | None) -> dict:
    """Runs in the subprocess: build a noisy photo of width x height, denoise it, report time/tiles/RSS."""
    from PIL import Image
    from ..tasks.denoise import denoise_image
    if source:
        base = load_image(source, mode="RGB").resize((width, height), Image.Resampling.BICUBIC)
    else:
        yy, xx = np.mgrid[0:height, 0:width]
        base = Image.fromarray(np.stack([xx % 256, yy % 256, (xx + yy) % 256], 2).astype(np.uint8))
    a = np.asarray(base, np.float32)
    noisy = Image.fromarray(np.clip(a + np.random.default_rng(0).standard_normal(a.shape, np.float32) * 25, 0, 255).astype(np.uint8))
    del a, base
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    calls = []
    t0 = time.perf_counter()
    res = denoise_image(noisy, sigma=25, progress=lambda d, t: calls.append((d, t)))
    seconds = time.perf_counter() - t0
    return {"benchmark": "denoise large image", "size": [width, height], "megapixels": width * height / 1e6,
            "seconds": round(seconds, 2), "seconds_per_mp": round(seconds / (width * height / 1e6), 3),
            "tiles": calls[-1][1] if calls else 0, "progress_calls": len(calls), "backend": res.backend,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_mb": round(rss_before, 1), "output_size": list(res.image.size)}


def denoise_large(width: int = 4000, height: int = 3000, source: str | None = None) -> dict:
    code = ("import json,sys; from imgen.evaluation.speed import _large_child; "
            f"print(json.dumps(_large_child({width}, {height}, {source!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return json.loads(out.stdout.strip().splitlines()[-1])
