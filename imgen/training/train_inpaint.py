"""Train the inpainting generator (FFC generator + PatchGAN discriminator, LaMa-style, sized for CPUs).

    python -m imgen train inpaint --out runs/inpaint --steps 2000
    python -m imgen train inpaint --out runs/inpaint --minutes 10 --device cuda --batch 32 --workers 8
    torchrun --nproc_per_node 2 -m imgen.training.train_inpaint ...   # data parallel
    python -m imgen export inpaint --run runs/inpaint [--metrics net.json telea.json]

Resumes from ``<out>/ckpt.pt`` when it exists. With ``--minutes`` the LR schedules (warm-up, cosine) are laid
over wall-clock time, so the run ends annealed when its time is up; a checkpoint is written every
``--ckpt-every`` steps, every ``--ckpt-minutes`` and on SIGTERM/SIGINT. ``--workers N`` draws the crops and
masks in N worker processes (:class:`TrainingBatches`), so a GPU step does not wait for them.

Each step draws random square crops (side drawn per step
from ``--crop-min``..``--crop-max`` in steps of 32; scale jitter; horizontal flips) from CBSD432 + Urban100
and a fresh LaMa-style free-form mask per crop (:mod:`imgen.datasets.masks`, 5-50 % of the area).

Losses (LaMa's recipe without its ADE20k perceptual network, which is not available offline):
L1 in the hole and on known pixels, an optional L1 between FFT magnitudes, and, from ``--adv-start`` on,
a non-saturating adversarial loss (the PatchGAN sees the composite; patches outside the hole are "real"),
discriminator feature matching, and a lazy R1 penalty on real images. EMA of G is what gets exported.
Validation: the last 8 CBSD432 photos (held out), centre crops with fixed masks: PSNR/SSIM of the composite,
PSNR in the hole. The evaluation sets are never touched here.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..device import configure_threads, pick_device
from ..image_io import load_image, pil_to_tensor, tensor_to_pil
from ..models import build_model
from ..datasets.folders import DATA, list_images
from .loop import (EMA, LOADER_TIMEOUT_S, MetricLog, RunClock, compute_line, gather_rng_states, load_checkpoint,
                   r1_penalty, restore_rng_states, save_checkpoint, setup_distributed, teardown_distributed, train_or_export,
                   unwrap, write_run_args)
from ..datasets.masks import MaskGenerator

N_VAL = 8
VAL_SIZE = 256
DEFAULT_STEPS = 2000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("runs/inpaint"))
    p.add_argument("--steps", type=int, default=0, help=f"step budget (default {DEFAULT_STEPS} unless --minutes)")
    p.add_argument("--minutes", type=float, default=0, help="wall-clock budget; the LR schedules span it")
    p.add_argument("--workers", type=int, default=None,
                   help="processes drawing crops and masks (default: 0 on CPU, up to 8 on a GPU)")
    p.add_argument("--batch", type=int, default=8, help="per process")
    p.add_argument("--crop-min", type=int, default=160, help="smallest crop side (px, a multiple of 32)")
    p.add_argument("--crop-max", type=int, default=224, help="largest crop side (px, a multiple of 32)")
    p.add_argument("--scale-min", type=float, default=0.7, help="scale jitter: source window / crop side, low end")
    p.add_argument("--scale-max", type=float, default=1.5, help="... high end (limited by the photo's size)")
    p.add_argument("--lr", type=float, default=1e-3, help="generator Adam LR")
    p.add_argument("--lr-d", type=float, default=1e-4, help="discriminator Adam LR")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--w-hole", type=float, default=10.0, help="L1 weight on hole pixels")
    p.add_argument("--w-known", type=float, default=2.0, help="L1 weight on known pixels")
    p.add_argument("--w-fft", type=float, default=1.0, help="L1 between FFT magnitudes (0 = off)")
    p.add_argument("--w-adv", type=float, default=0.1, help="non-saturating adversarial loss weight")
    p.add_argument("--w-fm", type=float, default=1.0, help="discriminator feature-matching (L1) weight")
    p.add_argument("--adv-start", type=int, default=300, help="step at which D and the adversarial terms start")
    p.add_argument("--r1-gamma", type=float, default=10.0)
    p.add_argument("--r1-every", type=int, default=16, help="lazy R1: every N discriminator steps (x N)")
    p.add_argument("--config", type=json.loads, default={}, help='generator config overrides as JSON, e.g. \'{"blocks": 4}\'')
    p.add_argument("--disc-config", type=json.loads, default={}, help="discriminator config overrides as JSON")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--ckpt-every", type=int, default=50)
    p.add_argument("--ckpt-minutes", type=float, default=5.0, help="also write the checkpoint this often")
    args = p.parse_args(argv)
    if not args.steps and not args.minutes:
        args.steps = DEFAULT_STEPS
    return args


class CropSampler:
    """Photos held in memory as uint8 RGB; draws square crops with scale jitter and horizontal flips
    (no 90-degree turns: for inpainting, up should stay up)."""

    def __init__(self, paths, min_side: int):
        self.images = []
        for p in paths:
            a = np.asarray(load_image(p, mode="RGB"))
            if min(a.shape[:2]) >= min_side:
                self.images.append(a)
        if not self.images:
            raise ValueError(f"no photo of at least {min_side}x{min_side} px among {len(paths)} files")

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, size: int, rng: np.random.Generator, scale=(0.7, 1.5)) -> torch.Tensor:
        out = np.empty((n, size, size, 3), np.uint8)
        for i in range(n):
            img = self.images[rng.integers(len(self.images))]
            h, w = img.shape[:2]
            hi = min(scale[1], min(h, w) / size)
            lo = min(scale[0], hi)
            s = math.exp(rng.uniform(math.log(lo), math.log(hi))) if hi > lo else hi
            win = max(size // 2, min(min(h, w), int(round(size * s))))
            y, x = int(rng.integers(h - win + 1)), int(rng.integers(w - win + 1))
            crop = img[y:y + win, x:x + win]
            if win != size:
                crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if win > size else cv2.INTER_CUBIC)
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[i] = crop
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def sample_masks(gen: MaskGenerator, n: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(np.stack([gen(size, size, rng) for _ in range(n)])[:, None].astype(np.float32))


class TrainingBatches(torch.utils.data.IterableDataset):
    """Endless training batches (crops, masks): a crop side drawn from ``sizes``, ``batch`` crops, a mask each.

    ``draw(rng)`` makes one batch from the caller's generator (the main process, resumed exactly); iterating
    (in ``torch.utils.data.DataLoader`` workers) gives each worker its own stream, seeded by ``seed`` (e.g. the
    run's seed, rank and step at start) and the worker's id.
    """

    def __init__(self, sampler: CropSampler, masks: MaskGenerator, sizes: list[int], batch: int,
                 scale: tuple[float, float], seed: tuple[int, ...]):
        self.sampler, self.masks, self.sizes, self.batch, self.scale, self.seed = sampler, masks, sizes, batch, scale, seed

    def draw(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        size = int(self.sizes[int(rng.integers(len(self.sizes)))])
        real = self.sampler.sample(self.batch, size, rng, self.scale)
        return real, sample_masks(self.masks, self.batch, size, rng)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([*self.seed, info.id if info else 0])
        while True:
            yield self.draw(rng)


def _quiet_worker(_: int) -> None:
    """One torch thread per loader worker: the workers are the parallelism. OpenCV's thread count is left
    alone: ``cv2.setNumThreads`` in a forked worker deadlocks once the parent has used OpenCV's thread pool
    (measured: the loader hung; tests/test_train_entry.py keeps it from coming back)."""
    torch.set_num_threads(1)


def batch_stream(batches: TrainingBatches, workers: int, rng: np.random.Generator):
    """Batches from ``workers`` loader processes (pinned for a GPU), or drawn here from ``rng`` when 0."""
    if workers <= 0:
        while True:
            yield batches.draw(rng)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=workers, prefetch_factor=4,
                                         persistent_workers=True, worker_init_fn=_quiet_worker,
                                         pin_memory=torch.cuda.is_available(), timeout=LOADER_TIMEOUT_S)
    yield from loader


def validation_set(paths, size: int = VAL_SIZE, multiple: int = 8, seed: int = 10_000):
    """Centre crops of ``size`` px (less for small photos; a multiple of ``multiple``) and fixed masks."""
    images = [pil_to_tensor(load_image(p, mode="RGB")) for p in paths]
    size = min([size] + [min(t.shape[-2:]) for t in images]) // multiple * multiple
    if size < multiple:
        raise ValueError(f"validation images must be at least {multiple}x{multiple} px")
    crops = []
    for t in images:
        _, _, h, w = t.shape
        y, x = (h - size) // 2, (w - size) // 2
        crops.append(t[:, :, y:y + size, x:x + size])
    gen = MaskGenerator()
    masks = torch.cat([sample_masks(gen, 1, size, np.random.default_rng(seed + i)) for i in range(len(crops))])
    return torch.cat(crops), masks


def fft_mag(x: torch.Tensor) -> torch.Tensor:
    f = torch.fft.rfft2(x, norm="ortho")
    return torch.sqrt(f.real ** 2 + f.imag ** 2 + 1e-8)


def patch_mask(mask: torch.Tensor, size) -> torch.Tensor:
    """The hole's share of each discriminator patch (area average to the logits' size)."""
    return F.adaptive_avg_pool2d(mask, size)


def d_fake_loss(logits: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """D on the composite: patches with hole content should be called fake, the rest real (mask-as-target)."""
    return (F.softplus(logits) * m + F.softplus(-logits) * (1 - m)).mean()


@torch.no_grad()
def validate(model, val: tuple[torch.Tensor, torch.Tensor], device) -> dict:
    from ..metrics.fidelity import psnr, ssim
    images, masks = val
    pred = model(images.to(device), masks.to(device)).float().cpu()
    comp = pred * masks + images * (1 - masks)
    out = {"val_psnr": 0.0, "val_ssim": 0.0, "val_psnr_hole": 0.0}
    for c, t, m in zip(comp, images, masks):
        a = (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        b = (c.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hole = m[0].numpy() > 0.5
        out["val_psnr"] += psnr(a, b) / len(images)
        out["val_ssim"] += ssim(a, b) / len(images)
        out["val_psnr_hole"] += psnr(a[hole], b[hole]) / len(images)
    return out


@torch.no_grad()
def save_sample_sheet(model, val: tuple[torch.Tensor, torch.Tensor], path: Path, device, rows: int = 4) -> None:
    """Rows: masked input (hole in white) | output (composite) | target, one row per validation crop."""
    images, masks = val[0][:rows], val[1][:rows]
    pred = model(images.to(device), masks.to(device)).float().cpu().clamp(0, 1)
    comp = pred * masks + images * (1 - masks)
    shown = images * (1 - masks) + masks
    sheet = torch.cat([torch.cat([s, c, t], dim=2) for s, c, t in zip(shown, comp, images)], dim=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(sheet).save(path)


def main(argv=None):
    args = parse_args(argv)
    if args.crop_min % 32 or args.crop_max % 32 or args.crop_min > args.crop_max:
        raise SystemExit("--crop-min/--crop-max must be multiples of 32 with min <= max")
    dev = setup_distributed(pick_device(args.device))
    configure_threads()
    torch.manual_seed(args.seed + dev.rank)
    rng = np.random.default_rng(args.seed + 1000 * dev.rank)
    gen = torch.Generator().manual_seed(args.seed + 7 + dev.rank)  # unused by this loop; kept for the shared rng helpers

    photos = list_images([args.data / "photos/cbsd432"])
    val_paths, photos = photos[-N_VAL:], photos[:-N_VAL] + list_images([args.data / "photos/urban80"])
    sampler = CropSampler(photos, min_side=args.crop_max // 2)
    sizes = list(range(args.crop_min, args.crop_max + 1, 32))

    G = build_model("inpaint_net", args.config).to(dev.device)
    D = build_model("inpaint_disc", args.disc_config).to(dev.device)
    val = validation_set(val_paths, multiple=G.multiple)
    ema = EMA(G, args.ema)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(0.5, 0.99))
    step = 0
    ckpt = load_checkpoint(args.out / "ckpt.pt")
    if ckpt is not None:
        G.load_state_dict(ckpt["model"])
        D.load_state_dict(ckpt["disc"])
        ema.model.load_state_dict(ckpt["ema"])
        opt_g.load_state_dict(ckpt["opt"])
        opt_d.load_state_dict(ckpt["opt_d"])
        step = ckpt["step"]
        restore_rng_states(ckpt, dev.rank, rng, gen, args.seed)
        if dev.is_main:
            print(f"resumed from step {step}")
    d_core = D
    if dev.world_size > 1:
        G, D = DistributedDataParallel(G), DistributedDataParallel(D)
    log = MetricLog(args.out, enabled=dev.is_main)
    if dev.is_main:
        write_run_args(args.out, args, dev.device, dev.world_size)

    workers = args.workers if args.workers is not None else (min(8, (os.cpu_count() or 1) // 2)
                                                             if dev.device.type == "cuda" else 0)
    batches = batch_stream(TrainingBatches(sampler, MaskGenerator(), sizes, args.batch,
                                           (args.scale_min, args.scale_max), (args.seed, dev.rank, step)),
                           workers, rng)
    clock = RunClock(args.steps, args.minutes, ckpt.get("seconds", 0.0) if ckpt else 0.0,
                     args.ckpt_every, args.ckpt_minutes, dev.world_size)
    clock.tick(step)
    t_last, cpu_last = time.time(), time.process_time()
    d_steps = max(0, step - args.adv_start)
    while not clock.stopping:
        lr = clock.lr(step, args.lr, args.warmup)
        lr_d = clock.lr(step, args.lr_d, args.warmup)
        for g in opt_g.param_groups:
            g["lr"] = lr
        for g in opt_d.param_groups:
            g["lr"] = lr_d
        real, mask = next(batches)
        real, mask = real.to(dev.device, non_blocking=True), mask.to(dev.device, non_blocking=True)
        size = real.shape[-1]
        adv = step >= args.adv_start and (args.w_adv > 0 or args.w_fm > 0)

        # ---- generator step
        pred = G(real, mask)
        comp = pred * mask + real * (1 - mask)
        err = (pred - real).abs()
        l_hole = (err * mask).sum() / (mask.sum() * 3).clamp_min(1)
        l_known = (err * (1 - mask)).sum() / ((1 - mask).sum() * 3).clamp_min(1)
        loss_g = args.w_hole * l_hole + args.w_known * l_known
        stats = {"l1_hole": l_hole.item(), "l1_known": l_known.item()}
        if args.w_fft > 0:
            l_fft = (fft_mag(comp) - fft_mag(real)).abs().mean()
            loss_g = loss_g + args.w_fft * l_fft
            stats["fft"] = l_fft.item()
        if adv:
            d_core.requires_grad_(False)
            logits, feats = d_core(comp)
            with torch.no_grad():
                _, feats_real = d_core(real)
            m = patch_mask(mask, logits.shape[-2:])
            l_adv = (F.softplus(-logits) * m).sum() / m.sum().clamp_min(1e-6)
            l_fm = sum((f - r).abs().mean() for f, r in zip(feats, feats_real)) / len(feats)
            loss_g = loss_g + args.w_adv * l_adv + args.w_fm * l_fm
            stats.update(adv_g=l_adv.item(), fm=l_fm.item())
            d_core.requires_grad_(True)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(G.parameters(), 1.0)
        opt_g.step()
        ema.update(G, step)

        # ---- discriminator step (one forward of real + fake through the possibly-DDP module)
        if adv:
            r1_now = args.r1_gamma > 0 and d_steps % args.r1_every == 0
            real_in = real.detach().requires_grad_(r1_now)
            logits, _ = D(torch.cat([real_in, comp.detach()]))
            lr_, lf = logits[:args.batch], logits[args.batch:]
            loss_d = F.softplus(-lr_).mean() + d_fake_loss(lf, patch_mask(mask, lf.shape[-2:]))
            stats["loss_d"] = loss_d.item()
            if r1_now:
                r1 = r1_penalty(lr_, real_in)
                loss_d = loss_d + args.r1_gamma / 2 * r1 * args.r1_every
                stats["r1"] = r1.item()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            d_steps += 1
        step += 1
        clock.tick(step)

        if not math.isfinite(loss_g.item()):
            raise SystemExit(f"loss is not finite at step {step}: {stats}")
        if dev.is_main and step % args.log_every == 0:
            now = time.time()
            log.log(step=step, loss=loss_g.item(), **stats, gnorm=gnorm.item(), lr=lr, crop=size,
                    sec_per_step=(now - t_last) / args.log_every)
            t_last = now
        if dev.is_main and (step % args.val_every == 0 or clock.stopping):
            log.log(step=step, **validate(ema.model, val, dev.device))
            save_sample_sheet(ema.model, val, args.out / "samples" / f"step{step:06d}.png", dev.device)
        if clock.ckpt_due:
            rngs, gens = gather_rng_states(rng, gen, dev.world_size)  # every rank takes part
            if dev.is_main:
                save_checkpoint(args.out / "ckpt.pt", {
                    "model": unwrap(G).state_dict(), "disc": unwrap(D).state_dict(), "ema": ema.model.state_dict(),
                    "opt": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                    "step": step, "rng": rngs[0], "gen": gens[0], "rng_ranks": rngs, "gen_ranks": gens,
                    "config": json.dumps(unwrap(G).config.to_dict()),
                    "disc_config": json.dumps(unwrap(D).config.to_dict()), "seconds": clock.seconds, "lr": lr,
                    "cpu_seconds": float(ckpt.get("cpu_seconds", 0.0) if ckpt else 0.0) + time.process_time() - cpu_last,
                })
    if dev.is_main:
        log.log(step=step, final=True, lr=lr, progress=clock.progress, minutes=clock.seconds / 60)
    clock.close()
    teardown_distributed()
    return step


NAME = "inpaint-net"
LICENCE_NOTE = ("Trained on BSDS500 (CBSD432: non-commercial research and education) and Urban100 images 21-100 "
                "(academic benchmark): use these weights for non-commercial research and education only. "
                "The evaluation set (Places365 validation images, Places365 terms; masks MIT) was not trained on.")


def _method(report: dict) -> str:
    """The report's method, with its processing size when that is not the benchmark's default (512 px)."""
    side = report.get("max_side")
    return report["model"] + (f" (run at {side} px)" if side not in (None, 512) else "")


def _metrics_table(metrics: dict) -> str:
    reports = metrics.get("reports") or ([metrics] if "psnr" in metrics else [])
    if not reports:
        return "Not evaluated yet."
    lines = ["| set | method | PSNR (dB) | SSIM | hole PSNR (dB) | s/image | n |", "|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {Path(str(r.get('data', ''))).name} | {_method(r)} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                     f"{r.get('psnr_hole', float('nan')):.2f} | {r['seconds_per_image']:.3f} | {r['n']} |")
    bins = [r for r in reports if r.get("bins")]
    if bins:
        lines += ["", "By hole ratio (SSIM / PSNR):", "",
                  "| set · method | " + " | ".join(b["range"] for b in bins[0]["bins"]) + " |",
                  "|---|" + "---|" * len(bins[0]["bins"])]
        for r in bins:
            lines.append(f"| {Path(str(r.get('data', ''))).name} {_method(r)} | " + " | ".join(
                f"{b['ssim']:.3f} / {b['psnr']:.2f} (n={b['n']})" if b["n"] else "–" for b in r["bins"]) + " |")
    if any(r["model"].startswith("truth-blur:") for r in reports):
        lines += ["", "`truth-blur:S` is not a method but a yardstick: the hole filled with the ground truth itself, "
                  "Gaussian-blurred by S px. A fill that scores like it gets the truth right down to about S px."]
    if metrics.get("command"):
        lines += ["", "Command: `" + metrics["command"] + "`"]
    return "\n".join(lines)


def export(run_dir: Path, weights_dir: Path | None = None, name: str = NAME, metrics: dict | None = None,
           history: str | None = None) -> str:
    """Export the EMA generator of ``run_dir/ckpt.pt`` to ``weights_dir/<name>.safetensors`` + card + registry.

    With ``metrics`` (an ``eval inpaint`` report, or ``{"reports": [...], "command": ...}``), also writes
    ``<name>-sheet.png``: 8 results on that report's evaluation images (masked input | result | original).
    ``history``: how the run really went (stops, resumes), for the card.
    """
    from .release import Release, load_run, publish, weights_folder
    weights_dir = weights_folder(weights_dir)

    run = load_run(run_dir, "inpaint_net")
    model, ckpt, args = run.model, run.ckpt, run.args
    n_params = sum(p.numel() for p in model.parameters())
    cmd = (f"python -m imgen train inpaint --out runs/inpaint {run.budget} "
           f"--batch {args.get('batch')} --crop-min {args.get('crop_min')} --crop-max {args.get('crop_max')}")
    sheet_md = "Rows of masked input | output | target are written to `runs/inpaint/samples/` during training."
    if metrics:
        reports = metrics.get("reports") or [metrics]
        data = next((r.get("data") for r in reports if r.get("model") == name and r.get("data")),
                    next((r.get("data") for r in reports if r.get("data")), None))
        if data and Path(data).is_dir():
            from ..evaluation.inpaint import results_sheet
            results_sheet(model, data, weights_dir / f"{name}-sheet.png")
            sheet_md = (f"![masked input | result | original]({name}-sheet.png)\n\n"
                        f"Eight images of `{Path(data).name}` (masked input | result | original), made at export.")
    return publish(Release(
        name=name, task="inpaint", arch="inpaint_net", model=model, metadata={"step": ckpt["step"]},
        title=f"{name}: fast free-form inpainting on a CPU (LaMa-style fast Fourier convolutions)",
        licence="other", registry_licence="other (non-commercial research and education; see card)",
        data="BSDS500 CBSD432 + Urban100 21-100", tags=["image-inpainting", "imgen"],
        datasets=["BSDS500 (CBSD432)", "Urban100 (images 21-100)"],
        summary=(f"A {n_params / 1e6:.2f} M-parameter generator (config `{json.dumps(run.config)}`): pixel-unshuffle "
                 "front end, strided convolutions down to 1/8 scale, fast-Fourier-convolution residual blocks "
                 "(global context at every block), nearest-neighbour upsampling with skips. Input: the photo "
                 "with the hole zeroed + the mask; only the hole is pasted back."),
        sections={
            "Training data and licence": LICENCE_NOTE,
            "Training": (f"- command: `{cmd}`\n- steps: {ckpt['step']} (batch {args.get('batch')}, square crops "
                         f"{args.get('crop_min')}-{args.get('crop_max')} px with scale jitter and flips, LaMa-style "
                         "free-form masks covering 5-50 %)\n"
                         f"- losses: L1 hole x{args.get('w_hole')}, L1 known x{args.get('w_known')}, FFT-magnitude L1 "
                         f"x{args.get('w_fft')}; from step {args.get('adv_start')}: non-saturating PatchGAN loss "
                         f"x{args.get('w_adv')} (mask as fake target), feature matching x{args.get('w_fm')}, lazy R1 "
                         f"(gamma {args.get('r1_gamma')}, every {args.get('r1_every')})\n"
                         f"- Adam: G lr {args.get('lr')}, D lr {args.get('lr_d')}, warm-up + cosine decay; "
                         f"EMA {args.get('ema')} (shipped)\n"
                         f"- compute: {compute_line(ckpt, args)}"
                         + (f"\n- history: {history}" if history else "")),
            "Metrics": _metrics_table(metrics or {}),
            "Sample sheet": sheet_md,
        }), weights_dir)


def export_cli(argv=None) -> None:
    """``python -m imgen export inpaint --run DIR``: weights, card and registry entry from a run."""
    from .release import export_parser
    ap = export_parser("inpaint", "runs/inpaint", NAME)
    ap.add_argument("--metrics", type=Path, nargs="+", default=None,
                    help="`eval inpaint` JSON files (e.g. the network and telea), or {'reports': [...], 'command': ...}")
    ap.add_argument("--command", default=None, help="the evaluation command, for the card")
    ap.add_argument("--history", default=None, help="for the card: how the run went (stops, resumes)")
    a = ap.parse_args(argv)
    metrics = None
    if a.metrics:
        metrics = {"reports": []}
        for f in a.metrics:
            d = json.loads(f.read_text())
            metrics["reports"] += d.get("reports") or [d]
            metrics["command"] = d.get("command", metrics.get("command"))
        if a.command:
            metrics["command"] = a.command
    print(export(a.run, a.weights, a.name, metrics=metrics, history=a.history))


if __name__ == "__main__":
    train_or_export(main, export_cli)
