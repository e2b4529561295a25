"""Generator quality without Inception: FID and KID in the feature space of a classifier trained on KaoKore's
own labels, a multi-scale sliced Wasserstein distance (no pretrained network; every set), plus sample and
nearest-training-neighbour sheets.

    python -m imgen eval gan --train-classifier             # once: weights/kaokore-classifier.safetensors
    python -m imgen eval gan --model kaokore-gan --reference runs/gan-kaokore/snapshots/step001000.safetensors \
        --json runs/gan-kaokore/eval.json
    python -m imgen eval gan --set emoji --model emoji-gan

Real-vs-real (training images vs the held-out ones: KaoKore ``dev_``+``test_``, 10 % of the emoji) is
reported as the floor.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..models import build_model
from ..metrics.swd import multiscale_swd

from ..datasets.folders import DATA
CLASSIFIER = "kaokore-classifier"


def kaokore_label(path: Path) -> str:
    """``train_female-noble_00001234.jpg`` -> ``female-noble``."""
    return path.stem.split("_")[1]


def _unit(u8: torch.Tensor) -> torch.Tensor:
    return u8.float().div(127.5).sub(1)


def train_classifier(out: Path, data: Path = DATA, epochs: int = 8, batch: int = 64, seed: int = 0,
                     widths=(16, 32, 64, 128)) -> dict:
    """Train the label classifier on the train split; report held-out accuracy; export to ``out``."""
    from ..store import export_safetensors
    from ..datasets.faces import load_set, split_files
    torch.manual_seed(seed)
    train, held = split_files(data, "kaokore")
    classes = sorted({kaokore_label(p) for p in train})
    y_tr = torch.tensor([classes.index(kaokore_label(p)) for p in train])
    y_he = torch.tensor([classes.index(kaokore_label(p)) if kaokore_label(p) in classes else -1 for p in held])
    x_tr, x_he = load_set(train), load_set(held)
    model = build_model("label_classifier", {"classes": list(classes), "widths": list(widths)})
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(len(train), (batch,), generator=gen)
        x = _unit(x_tr[idx])
        x = torch.where(torch.rand(batch, 1, 1, 1, generator=gen) < 0.5, x.flip(-1), x)
        loss = F.cross_entropy(model(x), y_tr[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"classifier step {step + 1}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(_unit(x_he[i:i + 256])).argmax(1) for i in range(0, len(x_he), 256)])
    ok = y_he >= 0
    acc = float((pred[ok] == y_he[ok]).float().mean())
    majority = float((y_he[ok] == torch.bincount(y_tr).argmax()).float().mean())
    export_safetensors(model, "label_classifier", out, extra={"held_out_accuracy": acc, "epochs": epochs})
    return {"held_out_accuracy": acc, "majority_baseline": majority, "classes": classes, "train_seconds": time.time() - t0,
            "n_train": len(train), "n_held_out": int(ok.sum())}


@torch.no_grad()
def embed(classifier, images_u8: torch.Tensor, batch: int = 256) -> np.ndarray:
    return torch.cat([classifier.features(_unit(images_u8[i:i + batch])) for i in range(0, len(images_u8), batch)]).double().numpy()


def fid(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 50, size: int = 500, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018), mean and std over subsets (x1000)."""
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    m = min(size, len(a), len(b))
    vals = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return float(np.mean(vals) * 1000), float(np.std(vals) * 1000)


@torch.no_grad()
def generate(G, n: int, psi: float = 1.0, seed: int = 0, batch: int = 256) -> torch.Tensor:
    """``n`` samples as uint8 (N, 3, 64, 64); seeds seed .. seed+n-1 as the explorer draws them."""
    from ..tasks.explore import z_for_seed
    out = []
    for i in range(0, n, batch):
        z = torch.from_numpy(np.stack([z_for_seed(s, G.config.z_dim) for s in range(seed + i, seed + min(n, i + batch))]))
        out.append(((G.sample(z, psi) + 1) * 127.5).round().clamp(0, 255).byte())
    return torch.cat(out)


def load_generator_file(path: Path):
    """A generator from a .safetensors file (a shipped model, a training snapshot or a GPU checkpoint)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    G = build_model(meta.get("arch", "latent_gan"), json.loads(meta["config"]))
    G.load_state_dict(state, strict=False)
    if meta.get("w_avg") != "computed":
        with torch.no_grad():  # snapshots carry no w_avg: estimate it like the export does
            G.w_avg.copy_(G.mapping(torch.randn(10000, G.config.z_dim, generator=torch.Generator().manual_seed(0))).mean(0))
    return G.eval().requires_grad_(False)


def load_generator(model: str | Path):
    """A registry name (the store) or a .safetensors file."""
    if str(model).endswith(".safetensors"):
        return load_generator_file(Path(model))
    from ..store import load
    return load(str(model), device="cpu")


def grid_image(images_u8: torch.Tensor, nrow: int = 8, scale: int = 1) -> Image.Image:
    n, c, h, w = images_u8.shape
    rows = -(-n // nrow)
    grid = torch.full((c, rows * h, nrow * w), 255, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        grid[:, r * h:(r + 1) * h, k * w:(k + 1) * w] = images_u8[i]
    img = Image.fromarray(grid.permute(1, 2, 0).numpy())
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def nearest_neighbour_sheet(samples_u8: torch.Tensor, train_u8: torch.Tensor, feats_s: np.ndarray,
                            feats_t: np.ndarray, k: int = 4, cosine: bool = True) -> Image.Image:
    """Each row: a generated sample, then its k nearest training images (by features: cosine or L2)."""
    if cosine:
        a = feats_s / np.linalg.norm(feats_s, axis=1, keepdims=True)
        b = feats_t / np.linalg.norm(feats_t, axis=1, keepdims=True)
        nn_idx = np.argsort(-(a @ b.T), axis=1)[:, :k]
    else:
        d = (feats_s ** 2).sum(1)[:, None] - 2 * feats_s @ feats_t.T + (feats_t ** 2).sum(1)[None]
        nn_idx = np.argsort(d, axis=1)[:, :k]
    rows = [torch.cat([samples_u8[i:i + 1], train_u8[torch.from_numpy(nn_idx[i])]]) for i in range(len(samples_u8))]
    return grid_image(torch.cat(rows), nrow=k + 1, scale=2)


def evaluate(model: str | Path, reference: list[str | Path] | None = None, n: int = 5000, psi: float = 1.0,
             sheets_dir: Path | None = None, data_set: str = "kaokore", data: Path = DATA) -> dict:
    """Every generator (``model`` first, then ``reference``) against the set's real images.

    - SWD (every set): multi-scale sliced Wasserstein distance between the first ``n_held`` samples and the
      held-out real images (never trained on), x1000; floor = as many training images vs the same held-out.
    - FID / KID (KaoKore only): ``n`` samples against the training split in the classifier's feature space;
      floor = held-out vs training.
    """
    from ..datasets.faces import load_set, split_files
    train, held = split_files(data, data_set)
    x_train, x_held = load_set(train), load_set(held)
    n_held = len(held)
    floor_idx = torch.from_numpy(np.random.default_rng(0).choice(len(train), n_held, replace=False))
    floor = {"model": "real held-out (floor)", "n": n_held,
             **multiscale_swd(x_train[floor_idx], x_held)}
    classifier = None
    if data_set == "kaokore":
        from ..store import load
        classifier = load(CLASSIFIER, device="cpu")
        f_train, f_held = embed(classifier, x_train), embed(classifier, x_held)
        floor.update(fid=fid(f_held, f_train), kid=kid(f_held, f_train))
    rows = [floor]
    first = None
    for name in [model] + list(reference or []):
        g = load_generator(name)
        t0 = time.perf_counter()
        s = generate(g, max(n, n_held), psi)
        secs = time.perf_counter() - t0
        row = {"model": Path(name).stem if str(name).endswith(".safetensors") else str(name), "n": len(s),
               "psi": psi, "seconds_per_sample": secs / len(s), **multiscale_swd(s[:n_held], x_held)}
        if classifier is not None:
            f = embed(classifier, s[:n])
            row.update(n=n, fid=fid(f, f_train), kid=kid(f, f_train))
            first = first or (s, f)
        else:
            first = first or (s, None)
        rows.append(row)
        print(_row_line(row), flush=True)
    if sheets_dir is not None:
        sheets_dir.mkdir(parents=True, exist_ok=True)
        grid_image(first[0][:64], 8, scale=2).save(sheets_dir / "samples.png")
        if classifier is not None:
            nearest_neighbour_sheet(first[0][:8], x_train, first[1][:8], f_train).save(sheets_dir / "nearest.png")
        else:
            pixel_nearest_sheet(first[0][:8], x_train).save(sheets_dir / "nearest.png")
    report = {"task": "gan", "model": str(model), "set": data_set, "rows": rows,
              "swd": f"multi-scale SWD x1000 (7x7 Laplacian-pyramid patches, 3 levels) of {n_held} samples "
                     f"vs the {n_held} held-out images"}
    if classifier is not None:
        report.update(feature_space=f"{CLASSIFIER} penultimate layer ({f_train.shape[1]}-d)",
                      reference_set=f"KaoKore train split ({len(train)} faces)")
    else:
        report["reference_set"] = f"{data_set}: {len(train)} training images, {n_held} held out"
    return report


def pixel_nearest_sheet(samples_u8: torch.Tensor, train_u8: torch.Tensor, k: int = 4) -> Image.Image:
    """As :func:`nearest_neighbour_sheet`, by pixel distance at 16x16 (no classifier for this set)."""
    def small(x):
        return F.avg_pool2d(x.float(), 4).flatten(1).numpy()
    return nearest_neighbour_sheet(samples_u8, train_u8, small(samples_u8), small(train_u8), k, cosine=False)


def _row_line(r: dict) -> str:
    fid_part = f"{r['fid']:>9.3f} {r['kid'][0]:>9.3f} ± {r['kid'][1]:<7.3f}" if "fid" in r else f"{'-':>9} {'-':>19}"
    return f"{r['model']:<44} {r['n']:>6} {fid_part} {r['swd']:>8.2f}  ({', '.join(f'{v:.1f}' for v in r['swd_levels'])})"


def print_table(report: dict) -> None:
    print(f"{'model':<44} {'n':>6} {'FID':>9} {'KID x1e3':>19} {'SWD x1e3':>8}  (per level, fine to coarse)")
    for r in report["rows"]:
        print(_row_line(r))
