"""Export a trained explorer GAN: EMA weights + w_avg + GANSpace directions -> weights/, with a model card.

    python -m imgen export gan --run runs/gan-kaokore --name kaokore-gan \
        [--eval runs/gan-kaokore/eval.json] [--labels "hair" "" "head turn" ...]

Directions: PCA of w = mapping(z) over 20 000 latents (Härkönen et al. 2020, "GANSpace"), ordered by
variance; each is stored with the standard deviation of w along it, so sliders move in σ units.
A directions sheet (rows: directions, columns: -3σ..+3σ for a few seeds) is written for labelling.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..models import build_model
from .loop import compute_line, load_checkpoint

SET_INFO = {
    "kaokore": {"title": "KaoKore faces", "licence": "cc-by-sa-4.0",
                "data": "KaoKore (faces cropped from Japanese pre-modern artworks), train split, 5 848 faces",
                "licence_note": "Trained on the KaoKore data set (CC BY-SA 4.0; ROIS-DS Center for Open Data in the "
                                "Humanities). The weights are a derived work shared under CC BY-SA 4.0."},
    "emoji": {"title": "Noto emoji", "licence": "apache-2.0", "data": "Noto Color Emoji (72 px, on white)",
              "licence_note": "Trained on Noto Color Emoji (Apache-2.0; Google). The weights are shared under "
                              "Apache-2.0."},
}


@torch.no_grad()
def compute_directions(G, n: int = 20000, seed: int = 0) -> dict:
    z = torch.randn(n, G.config.z_dim, generator=torch.Generator().manual_seed(seed))
    w = torch.cat([G.mapping(z[i:i + 4096]) for i in range(0, n, 4096)]).double()
    mean = w.mean(0)
    _, s, vt = torch.linalg.svd(w - mean, full_matrices=False)
    k = G.config.n_directions
    std = s[:k] / (n - 1) ** 0.5
    G.w_avg.copy_(mean.float())
    G.directions.copy_(vt[:k].float())
    G.direction_std.copy_(std.float())
    var = s ** 2
    return {"explained_variance": [float(v) for v in (var[:k] / var.sum())]}


def directions_sheet(G, path: Path, seeds=(0, 1, 2), values=(-3, -1.5, 0, 1.5, 3), n_dirs: int = 8, psi: float = 0.7):
    from ..tasks.explore import Explorer, ExploreState, tile, upscale
    ex = Explorer(G, backend="torch")
    rows = []
    for k in range(min(n_dirs, G.config.n_directions)):   # a generator may keep fewer than n_dirs
        for s in seeds:
            for v in values:
                d = [0.0] * G.config.n_directions
                d[k] = v
                rows.append(ex.image(ExploreState(seed=s, psi=psi, directions=d)))
    cols = len(seeds) * len(values)
    upscale(tile(np.stack(rows), cols=cols, gap=2), 2 * (64 + 2) * cols).save(path)


def set_facts(info: dict) -> dict:
    """The Release fields a data set decides: its licence (card and registry) and data lines."""
    return {"licence": info["licence"], "registry_licence": info["licence"], "data": info["data"],
            "datasets": [info["data"]]}


def load_source(run_dir: Path | None, snapshot: Path | None) -> dict:
    """What the export needs from a run: EMA state, config, step, data set, the run's args and CPU time.

    From ``<run_dir>/ckpt.pt`` (a run of this machine), or from an EMA snapshot ``.safetensors`` (e.g. a GPU run's
    checkpoint, which has no optimizer state) with the run's ``args.json`` in ``run_dir`` if there is one.
    """
    if snapshot is None:
        ckpt = load_checkpoint(run_dir / "ckpt.pt")
        if ckpt is None:
            raise SystemExit(f"no checkpoint in {run_dir}")
        return {"state": ckpt["ema"], "config": json.loads(ckpt["config"]), "step": ckpt["step"],
                "set": ckpt.get("set", "kaokore"), "args": json.loads((run_dir / "args.json").read_text()),
                "cpu_seconds": ckpt.get("cpu_seconds", 0.0), "seconds": ckpt.get("seconds")}
    from safetensors import safe_open
    with safe_open(str(snapshot), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    args = json.loads((run_dir / "args.json").read_text()) if run_dir and (run_dir / "args.json").exists() else {}
    return {"state": state, "config": json.loads(meta["config"]), "step": int(meta.get("step", 0)),
            "set": args.get("set", "kaokore"), "args": args, "cpu_seconds": None}


def _eval_lines(eval_report: dict) -> str:
    has_fid = any("fid" in r for r in eval_report["rows"])
    lines = []
    if has_fid:
        lines.append(f"FID / KID: feature space {eval_report['feature_space']}; reference: {eval_report['reference_set']}; "
                     "KID x1000 (mean ± std over 50 subsets of 500).")
    lines += [f"SWD: {eval_report.get('swd', 'multi-scale sliced Wasserstein distance x1000')}; per Laplacian level "
              "(finest first) in brackets. Lower is better everywhere; the first row is the floor (real vs real).", "",
              "| model | samples | " + ("FID | KID x1000 | " if has_fid else "") + "SWD x1000 |",
              "|---|---|" + ("---|---|" if has_fid else "") + "---|"]
    for r in eval_report["rows"]:
        fid_cells = (f"{r['fid']:.3f} | {r['kid'][0]:.2f} ± {r['kid'][1]:.2f} | " if "fid" in r else "– | – | ") if has_fid else ""
        swd = f"{r['swd']:.1f} ({', '.join(f'{v:.1f}' for v in r['swd_levels'])})" if "swd" in r else "–"
        lines.append(f"| {r['model']} | {r['n']} | {fid_cells}{swd} |")
    if eval_report.get("command"):
        lines += ["", f"Command: `{eval_report['command']}`"]
    return "\n".join(lines)


def export(run_dir: Path | None, name: str, weights_dir: Path | None = None, eval_report: dict | None = None,
           labels: list[str] | None = None, sheets: Path | None = None, snapshot: Path | None = None,
           training_text: str | None = None, history: str | None = None) -> str:
    """Weights, directions sheet, card and registry entry for a trained GAN.

    ``training_text`` replaces the card's generated Training section (e.g. for a run made elsewhere: hardware,
    wall time, command, data preparation); ``history`` adds a Run history section.
    """
    from .release import Release, publish, weights_folder
    weights_dir = weights_folder(weights_dir)
    src = load_source(run_dir, snapshot)
    config = src["config"]
    if labels is not None:
        config["direction_labels"] = [str(x) for x in labels]
    G = build_model("latent_gan", config)
    G.load_state_dict(src["state"], strict=False)
    G.eval().requires_grad_(False)
    pca = compute_directions(G)
    data_set = src["set"]
    info = SET_INFO[data_set]
    directions_sheet(G, weights_dir / f"{name}-directions.png")
    args = src["args"]
    n_params = sum(p.numel() for p in G.parameters())
    if training_text is None:
        budget = (f"--minutes {args['minutes']}" if float(args.get("minutes") or 0) else f"--steps {args.get('steps')}")
        cmd = (f"python -m imgen train gan --set {data_set} --out {run_dir} {budget} "
               f"--batch {args.get('batch')}")
        training_text = (
            f"- command: `{cmd}`\n- steps: {src['step']} (batch {args.get('batch')}, 64x64, "
            f"horizontal flips, DiffAugment `{args.get('augment')}`)\n"
            f"- losses: non-saturating logistic GAN loss, lazy R1 (gamma {args.get('r1_gamma')}, every "
            f"{args.get('r1_every')})\n- Adam lr {args.get('lr')} (mapping x{args.get('mapping_lr_mult')}), "
            f"betas (0, 0.99); EMA {args.get('ema')} (shipped)\n"
            f"- compute: {compute_line(src, args)}")
    sheet_md = ""
    if sheets is not None:
        import shutil
        for kind in ("samples", "nearest"):
            if (sheets / f"{kind}.png").exists():
                shutil.copy(sheets / f"{kind}.png", weights_dir / f"{name}-{kind}.png")
        by = "classifier features" if data_set == "kaokore" else "pixel distance at 16x16"
        sheet_md = (f"64 samples (ψ = 1, seeds 0-63):\n\n![samples]({name}-samples.png)\n\n"
                    f"Nearest training images ({by}) of 8 samples: first column generated, then its "
                    f"4 nearest neighbours.\n\n![nearest neighbours]({name}-nearest.png)\n\n")
    names = config.get("direction_labels") or []
    dir_lines = [f"- {k + 1}: {names[k] if k < len(names) and names[k] else '(unnamed)'} "
                 f"({pca['explained_variance'][k]:.1%} of w's variance)" for k in range(min(8, len(pca['explained_variance'])))]
    sections = {
        "Training data and licence": info["licence_note"],
        "Training": training_text,
        "Quality": _eval_lines(eval_report) if eval_report else "Not evaluated yet.",
        "Directions": ("\n".join(dir_lines) + f"\n\nRows: directions 1-8; columns: -3, -1.5, 0, +1.5, +3 σ for "
                       f"seeds 0, 1, 2 (ψ 0.7).\n\n![directions]({name}-directions.png)"),
        "Sample sheets": sheet_md or "Written to `runs/.../samples/` during training.",
    }
    if history:
        sections["Run history"] = history
    return publish(Release(
        name=name, task="explore", arch="latent_gan", model=G, config=config,
        metadata={"step": src["step"], "set": data_set, "w_avg": "computed", **pca},
        title=f"{name}: a latent-space explorer for {info['title']} (64x64 GAN with GANSpace directions)",
        tags=["unconditional-image-generation", "gan", "imgen"], **set_facts(info),
        summary=(f"A {n_params / 1e6:.2f} M-parameter generator (config `{json.dumps(config, ensure_ascii=False)}`): "
                 "a 4-layer mapping network z -> w (as in StyleGAN) and a DCGAN-like synthesis network modulated "
                 "by w at every block. Sampling uses the EMA weights, truncation around the mean w, and principal "
                 "directions of w (GANSpace) stored in the file (`directions`, `direction_std`, `w_avg`)."),
        sections=sections), weights_dir)


def cli(argv=None) -> None:
    from .release import export_parser
    ap = export_parser("gan", "runs/gan-kaokore", "kaokore-gan")
    ap.add_argument("--eval", type=Path, default=None, help="an `eval gan` JSON report for the card")
    ap.add_argument("--sheets", type=Path, default=None, help="folder with samples.png / nearest.png from `eval gan`")
    ap.add_argument("--labels", nargs="*", default=None, help="names of directions 1..k ('' = unnamed)")
    ap.add_argument("--snapshot", type=Path, default=None,
                    help="export this EMA snapshot (.safetensors) instead of <run>/ckpt.pt; --run then holds args.json")
    ap.add_argument("--training", type=Path, default=None, help="Markdown for the card's Training section")
    ap.add_argument("--history", type=Path, default=None, help="Markdown for the card's Run history section")
    a = ap.parse_args(argv)
    report = json.loads(a.eval.read_text()) if a.eval else None
    print(export(a.run, a.name, a.weights, report, a.labels, a.sheets, snapshot=a.snapshot,
                 training_text=a.training.read_text() if a.training else None,
                 history=a.history.read_text() if a.history else None))
