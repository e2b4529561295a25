"""How well an explorer model takes in a picture: reconstruction PSNR of held-out KaoKore faces (``dev_`` +
``test_``, never trained on) after 0 / 20 / 100 optimisation steps, starting from the model's encoder (a GAN's
trained encoder, a VAE's own) and from the average latent; plus the time of one encode + decode.

    python -m imgen eval projection --model kaokore-gan --n 32 --steps 0 20 100
    python -m imgen eval projection --model kaokore-vae

With 0 steps and an encoder, every held-out face is reconstructed in batches; with steps, ``--n`` faces evenly
spread over the held-out set are projected one by one (as the app does).
"""
from __future__ import annotations

import time

import numpy as np

from ..datasets.faces import load_set, split_files
from ..datasets.folders import DATA


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255 ** 2 / np.maximum(mse, 1e-10))


def held_out_faces(data=DATA) -> np.ndarray:
    """The held-out KaoKore faces at 64 px as (N, 64, 64, 3) uint8."""
    return load_set(split_files(data, "kaokore")[1]).permute(0, 2, 3, 1).numpy()


def encode_decode_seconds(ex, face: np.ndarray, repeats: int = 50) -> float:
    """Median wall time of one picture's encode + decode (what the first projected result costs)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ex.render(ex.encode(face[None]))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def evaluate_projection(model: str, n: int = 32, steps=(0, 20, 100), data=DATA) -> dict:
    from ..tasks.explore import get_explorer
    ex = get_explorer(model)
    faces = held_out_faces(data)
    rows = []
    if ex.can_encode:
        rec = np.concatenate([ex.render(ex.encode(faces[i:i + 256])) for i in range(0, len(faces), 256)])
        p = _psnr(rec, faces)
        rows.append({"start": "encoder", "steps": 0, "faces": len(faces), "psnr": float(p.mean()),
                     "psnr_median": float(np.median(p))})
    pick = np.linspace(0, len(faces) - 1, min(n, len(faces))).round().astype(int)
    starts = ["encoder", "average"] if ex.can_encode else ["average"]
    for start in starts:
        for s in steps:
            if s == 0 and start == "encoder":
                continue  # measured on every face above
            t0 = time.perf_counter()
            p = []
            for i in pick:
                state, target, rep = ex.project(faces[i], steps=s, use_encoder=start == "encoder")
                p.append(rep["psnr"])
            rows.append({"start": start, "steps": s, "faces": len(pick), "psnr": float(np.mean(p)),
                         "psnr_median": float(np.median(p)), "seconds_per_face": (time.perf_counter() - t0) / len(pick)})
            print(format_row(rows[-1]), flush=True)
    report = {"task": "projection", "model": model, "family": ex.family, "rows": rows,
              "held_out": f"KaoKore dev_ + test_ ({len(faces)} faces)"}
    if ex.can_encode:
        report["encode_decode_seconds"] = encode_decode_seconds(ex, faces[0])
    return report


def format_row(r: dict) -> str:
    secs = f"{r['seconds_per_face']:.3f}" if "seconds_per_face" in r else "-"
    return f"{r['start']:<9} {r['steps']:>6} {r['faces']:>6} {r['psnr']:>9.2f} {r['psnr_median']:>9.2f} {secs:>8}"


def format_table(report: dict) -> str:
    lines = [f"{report['model']} ({report['family']}): reconstruction of held-out faces, {report['held_out']}",
             f"{'start':<9} {'steps':>6} {'faces':>6} {'PSNR dB':>9} {'median':>9} {'s/face':>8}"]
    lines += [format_row(r) for r in report["rows"]]
    if "encode_decode_seconds" in report:
        lines.append(f"encode + decode of one picture: {1000 * report['encode_decode_seconds']:.1f} ms (median of 50)")
    return "\n".join(lines)
