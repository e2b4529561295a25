"""Export the explorer's VAE and a GAN's image -> w encoder to weights/, with model cards and registry entries.

    python -m imgen export vae --run runs/vae-kaokore --name kaokore-vae \
        [--eval runs/vae-eval/gan.json] [--projection runs/vae-eval/projection.json] [--labels ...]
    python -m imgen export encoder --run runs/encoder-kaokore --name kaokore-gan-encoder \
        [--projection runs/encoder-eval/projection.json]

VAE sampling and directions: a Gaussian fitted to the posterior means of the training faces (its mean is
``w_avg``, so the explorer's truncation ψ is the sampling temperature) and its principal components, each with
its standard deviation, so the explorer's sliders move in σ units as for the GAN.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .export_gan import SET_INFO, _eval_lines, directions_sheet, set_facts
from .loop import compute_line
from .release import Release, export_parser, load_run, publish, weights_folder

VAE_TRAINING = ("- command: `{cmd}`\n- steps: {step} (batch {batch}, 64x64, horizontal flips)\n"
                "- compute: {compute}\n"
                "- loss: L1 + {w_ssim} x (1 - SSIM) + KL x {kl} per pixel value (KL ramped up over the first "
                "{kl_warmup:.0%} of the run); Adam lr {lr}, warm-up then cosine over the wall-clock budget; "
                "EMA {ema} (shipped)")


@torch.no_grad()
def vae_directions(vae, faces_u8: torch.Tensor) -> dict:
    """Fit the sampling Gaussian and the slider directions to the training faces' posterior means.

    Principal components of the means (GANSpace's recipe in a VAE's latent): ``w_avg`` = their mean,
    ``latent_basis`` = components scaled by their standard deviations (so ``mapping(z)`` draws from the fitted
    Gaussian), ``directions`` / ``direction_std`` = the first ``n_directions`` of them.
    """
    means = torch.cat([vae.encode(faces_u8[i:i + 512].float().div(127.5).sub(1))[0]
                       for i in range(0, len(faces_u8), 512)]).double()
    centre = means.mean(0)
    _, s, vt = torch.linalg.svd(means - centre, full_matrices=False)
    std = s / (len(means) - 1) ** 0.5
    k = vae.config.n_directions
    basis = torch.zeros_like(vae.latent_basis, dtype=torch.float64)
    basis[:len(std)] = vt * std[:, None]
    vae.w_avg.copy_(centre.float())
    vae.latent_basis.copy_(basis.float())
    vae.directions.copy_(vt[:k].float())
    vae.direction_std.copy_(std[:k].float())
    var = s ** 2
    return {"explained_variance": [float(v) for v in (var[:k] / var.sum())]}


def reconstruction_sheet(vae, faces_u8: torch.Tensor, path: Path, n: int = 16) -> None:
    """Top row: held-out faces; bottom row: their posterior-mean reconstructions (2x, nearest neighbour)."""
    from ..evaluation.gan import grid_image
    with torch.no_grad():
        rec = ((vae(vae.encode(faces_u8[:n].float().div(127.5).sub(1))[0]) + 1) * 127.5).round().clamp(0, 255).byte()
    grid_image(torch.cat([faces_u8[:n], rec]), nrow=n, scale=2).save(path)


def _projection_lines(report: dict) -> str:
    from ..evaluation.projection import format_table
    return "```\n" + format_table(report) + "\n```" + (f"\n\nCommand: `{report['command']}`" if report.get("command") else "")


def export_vae(run_dir: Path, name: str, weights_dir: Path | None = None, eval_report: dict | None = None,
               projection: dict | None = None, labels: list[str] | None = None, sheets: Path | None = None,
               history: str | None = None) -> str:
    from ..datasets.faces import load_set, split_files
    from ..datasets.folders import DATA
    run = load_run(run_dir, "latent_vae")
    vae, ckpt, args = run.model, run.ckpt, run.args
    if labels is not None:
        vae.config.direction_labels = tuple(str(x) for x in labels)
    train, held = split_files(Path(args.get("data", DATA)), "kaokore")
    pca = vae_directions(vae, load_set(train))
    weights_dir = weights_folder(weights_dir)
    directions_sheet(vae, weights_dir / f"{name}-directions.png")
    reconstruction_sheet(vae, load_set(held[::max(1, len(held) // 16)]), weights_dir / f"{name}-reconstructions.png")
    sheet_md = ""
    if sheets is not None and (sheets / "samples.png").exists():
        import shutil
        shutil.copy(sheets / "samples.png", weights_dir / f"{name}-samples.png")
        sheet_md = f"64 samples (temperature ψ = 1, seeds 0-63):\n\n![samples]({name}-samples.png)\n\n"
    info = SET_INFO["kaokore"]
    config = vae.config.to_dict()
    n_params = sum(p.numel() for p in vae.parameters())
    cmd = f"python -m imgen train vae --out {run_dir} {run.budget} --batch {args['batch']}"
    names = config.get("direction_labels") or []
    dir_lines = [f"- {k + 1}: {names[k] if k < len(names) and names[k] else '(unnamed)'} "
                 f"({pca['explained_variance'][k]:.1%} of the posterior means' variance)" for k in range(8)]
    quality = []
    if projection:
        quality.append("Reconstruction (posterior mean, one encoder pass) of held-out faces:\n\n" + _projection_lines(projection))
    if eval_report:
        quality.append("Samples, beside the GAN (same command, same run):\n\n" + _eval_lines(eval_report))
    return publish(Release(
        name=name, task="explore", arch="latent_vae", model=vae, config=config,
        metadata={"step": ckpt["step"], "set": "kaokore", "w_avg": "computed", **pca},
        title=f"{name}: a variational autoencoder for {info['title']} (64x64), explorable like the GAN",
        tags=["unconditional-image-generation", "vae", "imgen"], **set_facts(info),
        summary=(f"A {n_params / 1e6:.2f} M-parameter convolutional VAE (config `{json.dumps(config, ensure_ascii=False)}`): "
                    "an encoder (residual blocks, stride-2 convolutions to 4x4, a linear layer to the mean and "
                    "log-variance of z) and a decoder (nearest-neighbour upsampling and residual blocks back to "
                    "64x64). In the Explore tab it takes the GAN's controls: a seed draws a latent from a Gaussian "
                    "fitted to the training faces' latent means (`w_avg`, `latent_basis`), ψ is the temperature, the sliders move along the principal directions of the training faces' latent "
                    "means (`directions`, `direction_std`), and a picture is encoded in one pass."),
        sections={
            "Training data and licence": info["licence_note"],
            "Training": VAE_TRAINING.format(cmd=cmd, step=ckpt["step"], compute=compute_line(ckpt, args), **args),
            "Quality": "\n\n".join(quality) or "Not evaluated yet.",
            "Directions": ("\n".join(dir_lines) + f"\n\nRows: directions 1-8; columns: -3, -1.5, 0, +1.5, +3 σ for "
                           f"seeds 0, 1, 2 (ψ 0.7).\n\n![directions]({name}-directions.png)"),
            "Sheets": (sheet_md + f"Held-out faces (top) and their reconstructions (bottom):\n\n"
                       f"![reconstructions]({name}-reconstructions.png)"),
            **({"Run history": history} if history else {}),
        }), weights_dir)


def export_encoder(run_dir: Path, name: str, weights_dir: Path | None = None, projection: dict | None = None) -> str:
    from ..tasks.explore import ENCODER_TASK
    run = load_run(run_dir, "latent_encoder")
    enc, ckpt, args = run.model, run.ckpt, run.args
    info = SET_INFO["kaokore"]
    config = enc.config.to_dict()
    n_params = sum(p.numel() for p in enc.parameters())
    cmd = (f"python -m imgen train encoder --generator {args['generator']} --out {run_dir} "
           f"{run.budget} --batch {args['batch']}")
    return publish(Release(
        name=name, task=ENCODER_TASK, arch="latent_encoder", model=enc, config=config,
        metadata={"step": ckpt["step"]},
        title=f"{name}: picture -> w for {args['generator']} (the first guess of a projection)",
        tags=["gan-inversion", "imgen"], **set_facts(info),
        summary=(f"A {n_params / 1e6:.2f} M-parameter convolutional encoder (config `{json.dumps(config)}`) that "
                    f"maps a 64x64 picture to the w space of `{args['generator']}` in one pass. The Explore tab "
                    "shows its reconstruction at once and then refines w by optimisation."),
        sections={
            "Training data and licence": info["licence_note"],
            "Training": (f"- command: `{cmd}`\n- steps: {ckpt['step']}; compute: {compute_line(ckpt, args)}\n"
                         "- each step: {b} generated faces (ψ in [0.5, 1], random "
                         "direction offsets; loss on w and on pixels through the frozen generator) and {b} real "
                         "training faces (pixel loss through the generator: L1 + MSE at full and half "
                         "resolution)".format(b=args["batch"])),
            "Quality": _projection_lines(projection) if projection else "Not evaluated yet.",
        }), weights_dir)


def _json(path: Path | None):
    return json.loads(path.read_text()) if path else None


def vae_cli(argv=None) -> None:
    ap = export_parser("vae", "runs/vae-kaokore", "kaokore-vae")
    ap.add_argument("--eval", type=Path, default=None, help="an `eval gan` JSON report for the card")
    ap.add_argument("--projection", type=Path, default=None, help="an `eval projection` JSON report for the card")
    ap.add_argument("--sheets", type=Path, default=None, help="folder with samples.png from `eval gan`")
    ap.add_argument("--labels", nargs="*", default=None, help="names of directions 1..k ('' = unnamed)")
    ap.add_argument("--history", type=Path, default=None, help="Markdown for the card's Run history section")
    a = ap.parse_args(argv)
    print(export_vae(a.run, a.name, a.weights, _json(a.eval), _json(a.projection), a.labels, a.sheets,
                     a.history.read_text() if a.history else None))


def encoder_cli(argv=None) -> None:
    ap = export_parser("encoder", "runs/encoder-kaokore", "kaokore-gan-encoder")
    ap.add_argument("--projection", type=Path, default=None, help="an `eval projection` JSON report for the card")
    a = ap.parse_args(argv)
    print(export_encoder(a.run, a.name, a.weights, _json(a.projection)))
