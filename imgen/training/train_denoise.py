"""Train the non-blind Gaussian denoiser (colour and gray, sigma 0..75).

    python -m imgen train denoise --out runs/denoise --steps 20000
    python -m imgen train denoise --out runs/denoise --minutes 10 --device cuda --batch 64
    torchrun --nproc_per_node 2 -m imgen.training.train_denoise ...   # data parallel
    python -m imgen export denoise --run runs/denoise

Resumes from ``<out>/ckpt.pt`` when it exists. With ``--minutes`` the LR schedule (warm-up, cosine) is laid
over wall-clock time, so the run ends annealed when its time is up; a checkpoint is written every
``--ckpt-every`` steps, every ``--ckpt-minutes`` and on SIGTERM/SIGINT. Gray samples are fed as three equal channels with the
same noise in each, so one network serves both. Validation uses 8 held-out training-set photos (the
evaluation sets are never touched here).
"""
from __future__ import annotations

import argparse
import json
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..device import pick_device, configure_threads
from ..image_io import load_image, pil_to_tensor, tensor_to_pil
from ..models import build_model
from ..datasets.folders import DATA, list_images
from .data import PatchSampler, jitter_colours
from .loop import (EMA, MetricLog, RunClock, gather_rng_states, load_checkpoint, restore_rng_states, save_checkpoint,
                   setup_distributed, teardown_distributed, train_or_export, unwrap, write_run_args)

N_VAL = 8
DEFAULT_STEPS = 20000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("runs/denoise"))
    p.add_argument("--steps", type=int, default=0, help=f"step budget (default {DEFAULT_STEPS} unless --minutes)")
    p.add_argument("--minutes", type=float, default=0, help="wall-clock budget; the LR schedule spans it")
    p.add_argument("--batch", type=int, default=16, help="per process")
    p.add_argument("--patch", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--sigma-max", type=float, default=75.0)
    p.add_argument("--sigma-ends", type=float, default=0.0, help="chance that a sample's sigma is drawn from the "
                   "outer fifths of 0..sigma-max (half low, half high) instead of uniformly (0 = off, as the shipped run)")
    p.add_argument("--gray-fraction", type=float, default=0.2)
    p.add_argument("--colour-aug", type=float, default=0.0, help="chance that a colour patch gets a random "
                   "saturation (x0.5-1.6), channel mix and gamma before the noise (0 = off, as the shipped run)")
    p.add_argument("--init", default=None, help="start from this store model's weights (e.g. denoise-unet) with a "
                   "fresh optimizer and schedule: a fine-tune; ignored when resuming. With --config '{\"bottom_blocks\": 2}' "
                   "the model grows: the new residual blocks start as the identity")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--config", type=json.loads, default={}, help='model config overrides as JSON, e.g. \'{"widths": [16, 32, 64, 128]}\'')
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--ckpt-minutes", type=float, default=5.0, help="also write the checkpoint this often")
    args = p.parse_args(argv)
    if not args.steps and not args.minutes:
        args.steps = DEFAULT_STEPS
    return args


def draw_sigmas(n: int, sigma_max: float, gen: torch.Generator, ends: float = 0.0) -> torch.Tensor:
    """n noise levels ~ U(0, sigma_max); with chance ``ends`` one is drawn instead from the low or the high fifth
    of the range (even odds), where a uniform draw rarely lands and the benchmarks' sigma 15 and 50 sit near."""
    u = torch.rand(n, generator=gen)
    if ends > 0:
        at_end = torch.rand(n, generator=gen) < ends
        high = torch.rand(n, generator=gen) < 0.5
        u = torch.where(at_end, torch.where(high, 0.8 + 0.2 * u, 0.2 * u), u)
    return u * sigma_max


def add_noise(clean: torch.Tensor, gray: torch.Tensor, sigma_max: float, gen: torch.Generator, ends: float = 0.0):
    """Per-sample sigma from :func:`draw_sigmas`; gray samples get one noise field copied to all channels."""
    n, c, h, w = clean.shape
    sigma = draw_sigmas(n, sigma_max, gen, ends)
    noise = torch.randn(n, c, h, w, generator=gen)
    noise = torch.where(gray.view(n, 1, 1, 1), noise[:, :1].expand(n, c, h, w), noise)
    return clean + noise * (sigma / 255.0).view(n, 1, 1, 1), sigma


def validation_set(paths, size=256, multiple=16):
    """Centre crops of ``size`` px (less when an image is smaller), a multiple of ``multiple``, stacked."""
    images = [pil_to_tensor(load_image(p, mode="RGB")) for p in paths]
    size = min([size] + [min(t.shape[-2:]) for t in images]) // multiple * multiple
    if size < multiple:
        raise ValueError(f"validation images must be at least {multiple}x{multiple} px")
    crops = []
    for t in images:
        _, _, h, w = t.shape
        y, x = (h - size) // 2, (w - size) // 2
        crops.append(t[:, :, y:y + size, x:x + size])
    return torch.cat(crops)


@torch.no_grad()
def validate(model, val: torch.Tensor, device) -> dict:
    out = {}
    gen = torch.Generator().manual_seed(1234)
    for s in (15, 25, 50):
        noisy = val + torch.randn(val.shape, generator=gen) * s / 255.0
        den = model(noisy.to(device), torch.full((len(val),), float(s), device=device)).clamp(0, 1).cpu()
        den = (den * 255).round() / 255
        mse = ((den - val) ** 2).flatten(1).mean(1)
        out[f"val_psnr{s}"] = float((10 * torch.log10(1 / mse)).mean())
    return out


def load_grown(model: torch.nn.Module, state: dict) -> list[str]:
    """Load a started-from model's weights into ``model``, which may have more residual blocks (a larger
    ``bottom_blocks`` or ``blocks``). Each new block starts as the identity (its last conv zeroed), so the grown
    model computes exactly what the started-from one did. Returns the new blocks' names."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:   # a layer of another size
        raise SystemExit(f"--init: the model's layers differ beyond added residual blocks ({e})") from None
    blocks = sorted({k.rsplit(".", 2)[0] for k in missing})
    strays = [k for k in missing if not k.rsplit(".", 1)[0].endswith((".conv1", ".conv2"))]
    if unexpected or strays:
        raise SystemExit(f"--init: the model's layers differ beyond added residual blocks "
                         f"(missing {strays}, unexpected {list(unexpected)}); change only blocks/bottom_blocks")
    with torch.no_grad():
        for b in blocks:
            conv2 = model.get_submodule(b).conv2
            conv2.weight.zero_()
            conv2.bias.zero_()
    return blocks


def main(argv=None):
    args = parse_args(argv)
    dev = setup_distributed(pick_device(args.device))
    configure_threads()
    torch.manual_seed(args.seed + dev.rank)
    rng = np.random.default_rng(args.seed + 1000 * dev.rank)
    gen = torch.Generator().manual_seed(args.seed + 7 + dev.rank)

    photos = list_images([args.data / "photos/cbsd432"])
    val_paths, photos = photos[-N_VAL:], photos[:-N_VAL] + list_images([args.data / "photos/urban80"])
    colour = PatchSampler(photos, args.patch, "RGB")
    gray = PatchSampler(list_images([args.data / "photos/gray400"]), args.patch, "L")

    ckpt = load_checkpoint(args.out / "ckpt.pt")
    start = None
    if ckpt is None and args.init:
        from .. import store
        start = store.load(args.init)  # a fine-tune keeps the started-from model's config
    config = (json.loads(ckpt["config"]) if ckpt is not None and "config" in ckpt
              else {**start.config.to_dict(), **args.config} if start is not None else args.config)
    model = build_model("denoise_unet", config).to(dev.device)
    if start is not None:
        grown = load_grown(model, start.state_dict())
        if dev.is_main:
            print(f"starting from {args.init} ({json.dumps(config)})"
                  + (f"; {len(grown)} new blocks start as identity" if grown else ""))
    val = validation_set(val_paths, multiple=model.multiple)
    ema = EMA(model, args.ema)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    step = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        ema.model.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
        restore_rng_states(ckpt, dev.rank, rng, gen, args.seed)
        if dev.is_main:
            print(f"resumed from step {step}")
    if dev.world_size > 1:
        model = DistributedDataParallel(model)
    log = MetricLog(args.out, enabled=dev.is_main)
    if dev.is_main:
        write_run_args(args.out, args, dev.device, dev.world_size)

    clock = RunClock(args.steps, args.minutes, ckpt.get("seconds", 0.0) if ckpt else 0.0,
                     args.ckpt_every, args.ckpt_minutes, dev.world_size)
    clock.tick(step)
    t_last, cpu_last = time.time(), time.process_time()
    n_gray = round(args.batch * args.gray_fraction)
    while not clock.stopping:
        lr = clock.lr(step, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        clean_c = colour.sample(args.batch - n_gray, rng)
        if args.colour_aug > 0:
            clean_c = jitter_colours(clean_c, rng, args.colour_aug)
        clean_g = gray.sample(n_gray, rng).expand(-1, 3, -1, -1)
        clean = torch.cat([clean_c, clean_g])
        is_gray = torch.arange(args.batch) >= args.batch - n_gray
        noisy, sigma = add_noise(clean, is_gray, args.sigma_max, gen, args.sigma_ends)
        clean, noisy, sigma = clean.to(dev.device), noisy.to(dev.device), sigma.to(dev.device)

        loss = F.l1_loss(model(noisy, sigma), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model, step)
        step += 1
        clock.tick(step)

        if dev.is_main and step % args.log_every == 0:
            now = time.time()
            log.log(step=step, loss=loss.item(), gnorm=gnorm.item(), lr=lr,
                    sec_per_step=(now - t_last) / args.log_every)
            t_last = now
        if dev.is_main and (step % args.val_every == 0 or clock.stopping):
            log.log(step=step, **validate(ema.model, val, dev.device))
            save_sample_sheet(ema.model, val[:2], args.out / "samples" / f"step{step:06d}.png", dev.device)
        if clock.ckpt_due:
            rngs, gens = gather_rng_states(rng, gen, dev.world_size)  # every rank takes part
            if dev.is_main:
                save_checkpoint(args.out / "ckpt.pt", {
                    "model": unwrap(model).state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(),
                    "step": step, "rng": rngs[0], "gen": gens[0], "rng_ranks": rngs, "gen_ranks": gens,
                    "config": json.dumps(unwrap(model).config.to_dict()), "seconds": clock.seconds, "lr": lr,
                    "cpu_seconds": float(ckpt.get("cpu_seconds", 0.0) if ckpt else 0.0) + time.process_time() - cpu_last,
                })
    if dev.is_main:
        log.log(step=step, final=True, lr=lr, progress=clock.progress, minutes=clock.seconds / 60)
    clock.close()
    teardown_distributed()
    return step


@torch.no_grad()
def save_sample_sheet(model, crops: torch.Tensor, path: Path, device, sigma: float = 25.0) -> None:
    """Rows: noisy | denoised | clean, one row per crop."""
    gen = torch.Generator().manual_seed(0)
    noisy = crops + torch.randn(crops.shape, generator=gen) * sigma / 255.0
    den = model(noisy.to(device), torch.full((len(crops),), sigma, device=device)).cpu()
    rows = [torch.cat([n, d, c], dim=2) for n, d, c in zip(noisy, den, crops)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(torch.cat(rows, dim=1)).save(path)


NAME = "denoise-unet"
LICENCE_NOTE = ("Trained on BSDS500 (CBSD432: non-commercial research and education), Urban100 images 21-100 "
                "(academic benchmark) and the DnCNN gray400 crops (research use): use these weights for "
                "non-commercial research and education only.")


def _speed_lines(speed: dict | None) -> list[str]:
    """Model-card lines for the `python -m imgen bench denoise` / `denoise-large` reports."""
    if not speed:
        return []
    out = ["", "Speed on the 2-core CPU this was trained on (seconds per megapixel, same images, interleaved):", ""]
    if "vs_ffdnet" in speed:
        b = speed["vs_ffdnet"]
        out += [f"- {k}: {v} s/MP" for k, v in b["seconds_per_mp"].items()]
        out += [f"- shipped / FFDNet eager: {b['ratio_shipped_vs_ffdnet_eager']}; same runtime (ONNX Runtime): "
                f"{b['ratio_same_runtime_onnxruntime']}; same runtime (eager): {b['ratio_same_runtime_eager']}"]
    if "large" in speed:
        g = speed["large"]
        out += [f"- {g['size'][0]}x{g['size'][1]} photo: {g['seconds']} s in {g['tiles']} tiles, "
                f"peak RSS {g['peak_rss_mb']} MB"]
    return out


_FROM = "that model's own training:\n"


def _training_lines(budget: str, step: int, a: dict, compute: str) -> list[str]:
    """The card's training lines for a run's arguments (``args.json``): the command and what it sampled."""
    defaults = vars(parse_args([]))               # the trainer's own defaults, so the card never drifts from them
    a = {**defaults, **a}
    flags = [f"--{k.replace('_', '-')} {a[k]:g}" for k in ("warmup", "sigma_ends", "gray_fraction", "colour_aug")
             if a[k] != defaults[k]]
    config = [f"--config '{json.dumps(a['config'])}'"] if a["config"] else []
    cmd = " ".join(["python -m imgen train denoise --out runs/denoise"] + ([f"--init {a['init']}"] if a["init"] else [])
                   + config + [budget, f"--batch {a['batch']} --patch {a['patch']} --lr {a['lr']:g}"] + flags)
    sigma = f"sigma ~ U(0, {a['sigma_max']:g})"
    if a["sigma_ends"]:
        sigma += f", {a['sigma_ends']:.0%} of them from its low or high fifth instead"
    colour = f", colour jitter on {a['colour_aug']:.0%} of colour patches" if a["colour_aug"] else ""
    return [f"- command: `{cmd}`",
            f"- steps: {step} (batch {a['batch']} x {a['patch']}^2 patches, "
            f"{a['gray_fraction']:.0%} gray, {sigma}{colour}; 8 flips/rotations)",
            f"- loss: L1; Adam lr {a['lr']:g} with warm-up and cosine decay; EMA {a['ema']} (shipped)",
            f"- compute: {compute}"]


def export(run_dir: Path, weights_dir: Path | None = None, name: str = NAME, metrics: dict | None = None) -> str:
    """Export the EMA weights of ``run_dir/ckpt.pt`` to ``weights_dir/<name>.safetensors`` + card + registry."""
    from .loop import compute_line
    from .release import Release, card_section, load_run, publish, weights_folder
    weights_dir = weights_folder(weights_dir)

    run = load_run(run_dir, "denoise_unet")
    ckpt, args = run.ckpt, run.args
    n_params = sum(p.numel() for p in run.model.parameters())
    training = "\n".join(_training_lines(run.budget, ckpt["step"], args, compute_line(ckpt, args)))
    if args.get("init"):  # read before publish() overwrites a card of the same name
        before = card_section(args["init"], "Training", weights_dir)
        while before.split("\n", 1)[0] == training.split("\n", 1)[0] and _FROM in before:  # this run, exported before
            before = textwrap.dedent(before.split(_FROM, 1)[1])
        grown = (f", grown by `{json.dumps(args['config'])}` with its new residual blocks starting as the identity"
                 if args.get("config") else "")
        training += (f"\n- started from `{args['init']}` (its weights and config{grown}; a new optimizer and schedule)"
                     + ("; " + _FROM + "\n".join("  " + line for line in before.splitlines()) if before else ""))
    metrics_md = "Not evaluated yet." if not metrics else "\n".join(
        ["| set | sigma | PSNR (dB) | SSIM | s/MP |", "|---|---|---|---|---|"]
        + [f"| {Path(m['data']).name}{' (gray)' if m.get('gray') else ''} | {r['sigma']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['seconds_per_mp']:.3f} |"
           for m in metrics.get("reports", []) for r in m["results"]]
        + ["", "Command: `" + metrics.get("command", "") + "`"]
        + _speed_lines(metrics.get("speed")))
    return publish(Release(
        name=name, task="denoise", arch="denoise_unet", model=run.model, metadata={"step": ckpt["step"]},
        title=f"{name}: fast non-blind Gaussian denoiser (colour + gray, sigma 0-75)",
        licence="other", registry_licence="other (non-commercial research and education; see card)",
        data="BSDS500 CBSD432 + Urban100 21-100 + gray400", tags=["image-denoising", "imgen"],
        datasets=["BSDS500 (CBSD432)", "Urban100 (images 21-100)", "gray400 (DnCNN training crops)"],
        summary=(f"A {n_params / 1e6:.2f} M-parameter residual U-Net behind a pixel-unshuffle front end "
                 f"(config `{json.dumps(run.config)}`), with the noise level as an input map. "
                 "Gray images run as three equal channels."),
        sections={
            "Training data and licence": LICENCE_NOTE,
            "Training": training,
            "Metrics": metrics_md,
            "Sample sheet": (f"![noisy, denoised, clean]({name}-sheet.png)\n\nColumns: noisy (sigma 25) | denoised | "
                             "clean, on crops of CBSD68 (evaluation images, never trained on)."
                             if (weights_dir / f"{name}-sheet.png").exists() else
                             "Rows of noisy | denoised | clean (sigma 25) are written to `runs/denoise/samples/`."),
        }), weights_dir)


def export_cli(argv=None) -> None:
    """``python -m imgen export denoise --run DIR``: weights, card and registry entry from a run."""
    from .release import export_parser
    ap = export_parser("denoise", "runs/denoise", NAME)
    ap.add_argument("--metrics", type=Path, default=None, help="JSON with {'reports': [...], 'command': ...}")
    a = ap.parse_args(argv)
    print(export(a.run, a.weights, a.name, metrics=json.loads(a.metrics.read_text()) if a.metrics else None))


if __name__ == "__main__":
    train_or_export(main, export_cli)
