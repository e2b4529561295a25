"""Train the latent-explorer GAN (64x64) on KaoKore faces or Noto emoji.

    python -m imgen train gan --set kaokore --out runs/gan-kaokore --steps 5000
    python -m imgen train gan --set kaokore --out runs/gan-kaokore --minutes 6 --device cuda
    python -m imgen export gan --run runs/gan-kaokore --name kaokore-gan

Resumes from ``<out>/ckpt.pt`` when it exists. ``--minutes`` is a wall-clock budget; the LR is constant by
default (the recipe of the shipped runs; the EMA generator is what ships), or follows a cosine over the
budget down to ``--lr-final`` x ``--lr``. A checkpoint is written every ``--ckpt-every`` steps, every
``--ckpt-minutes`` and on SIGTERM/SIGINT. Losses: non-saturating logistic GAN loss with a lazy R1
penalty on real images; DiffAugment (colour, translation, cutout; Zhao et al. 2020) on everything the
discriminator sees, so a few thousand images suffice. The generator's EMA is what gets exported; EMA
snapshots are kept along the way (``snapshots/step*.safetensors``) as weaker references for evaluation.
Only the ``train_`` split of KaoKore is used; ``dev_``/``test_`` stay held out; 10 % of the emoji are held
out too (:func:`split_files`).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models import build_model
from ..datasets.faces import SETS, load_set, training_files
from ..datasets.folders import DATA
from .loop import (EMA, MetricLog, RunClock, load_checkpoint, r1_penalty, save_checkpoint, start_run, train_or_export,
                   write_run_args)

DEFAULT_STEPS = 5000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--set", choices=sorted(SETS), default="kaokore")
    p.add_argument("--out", type=Path, default=Path("runs/gan-kaokore"))
    p.add_argument("--steps", type=int, default=0, help=f"step budget (default {DEFAULT_STEPS} unless --minutes)")
    p.add_argument("--minutes", type=float, default=0, help="wall-clock budget")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4, help="Adam LR of G's synthesis network and of D")
    p.add_argument("--lr-final", type=float, default=1.0, help="LR at the end of the budget / --lr (1 = constant)")
    p.add_argument("--mapping-lr-mult", type=float, default=0.1)
    p.add_argument("--r1-gamma", type=float, default=0.2)
    p.add_argument("--r1-every", type=int, default=16)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--augment", default="color,translation,cutout", help="DiffAugment policy ('' = none)")
    p.add_argument("--config", type=json.loads, default={}, help="generator config overrides as JSON")
    p.add_argument("--disc-config", type=json.loads, default={})
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--sample-every", type=int, default=250)
    p.add_argument("--snapshot-every", type=int, default=1000)
    p.add_argument("--ckpt-every", type=int, default=50)
    p.add_argument("--ckpt-minutes", type=float, default=5.0, help="also write the checkpoint this often")
    args = p.parse_args(argv)
    if not args.steps and not args.minutes:
        args.steps = DEFAULT_STEPS
    return args


# ---- DiffAugment (differentiable; the same policy for real and fake)
def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    n = x.shape[0]
    if "color" in policy:
        x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean
    if "translation" in policy:
        h, w = x.shape[-2:]
        s = int(h * 0.125 + 0.5)
        dy = torch.randint(-s, s + 1, (n, 1, 1), device=x.device)
        dx = torch.randint(-s, s + 1, (n, 1, 1), device=x.device)
        gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
        gy = (gy.unsqueeze(0) + dy).clamp(-1, h) + 1
        gx = (gx.unsqueeze(0) + dx).clamp(-1, w) + 1
        pad = F.pad(x, (1, 1, 1, 1))
        idx = (gy * (w + 2) + gx).view(n, 1, -1).expand(-1, x.shape[1], -1)
        x = pad.flatten(2).gather(2, idx).view_as(x)
    if "cutout" in policy:
        h, w = x.shape[-2:]
        ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
        oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
        ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
        gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
        ry, rx = gy.unsqueeze(0) - (oy - ch // 2), gx.unsqueeze(0) - (ox - cw // 2)
        keep = ~((ry >= 0) & (ry < ch) & (rx >= 0) & (rx < cw))
        x = x * keep.unsqueeze(1)
    return x


def to_unit(images_u8: torch.Tensor) -> torch.Tensor:
    return images_u8.float().div(127.5).sub(1)


@torch.no_grad()
def save_grid(G, z: torch.Tensor, path: Path, nrow: int = 8) -> None:
    from PIL import Image
    img = ((G.sample(z) + 1) * 127.5).round().clamp(0, 255).byte().cpu()
    n, c, h, w = img.shape
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * h, nrow * w), 255, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        grid[:, r * h:(r + 1) * h, k * w:(k + 1) * w] = img[i]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)


def main(argv=None):
    args = parse_args(argv)
    device, gen = start_run(args)

    data = load_set(training_files(args.data, args.set))
    print(f"{len(data)} training images from {SETS[args.set]}")
    G = build_model("latent_gan", args.config).to(device)
    D = build_model("latent_disc", args.disc_config).to(device)
    ema = EMA(G, args.ema)
    opt_g = torch.optim.Adam([
        {"params": G.mapping.parameters(), "lr_mult": args.mapping_lr_mult},
        {"params": [p for n, p in G.named_parameters() if not n.startswith("mapping.")], "lr_mult": 1.0},
    ], lr=args.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.0, 0.99))
    for g in opt_g.param_groups:
        g["lr"] = args.lr * g["lr_mult"]
    step, cpu_before, seconds_before = 0, 0.0, 0.0
    ckpt = load_checkpoint(args.out / "ckpt.pt")
    if ckpt is not None:
        G.load_state_dict(ckpt["model"])
        D.load_state_dict(ckpt["disc"])
        ema.model.load_state_dict(ckpt["ema"])
        opt_g.load_state_dict(ckpt["opt"])
        opt_d.load_state_dict(ckpt["opt_d"])
        gen.set_state(ckpt["gen"])
        torch.set_rng_state(ckpt["torch_rng"])
        step, cpu_before, seconds_before = ckpt["step"], ckpt.get("cpu_seconds", 0.0), ckpt.get("seconds", 0.0)
        print(f"resumed from step {step}")
    write_run_args(args.out, args, device)
    log = MetricLog(args.out)
    z_fixed = torch.randn(64, G.config.z_dim, generator=torch.Generator().manual_seed(1234)).to(device)
    t_last, cpu_last = time.time(), time.process_time()
    bs = args.batch
    clock = RunClock(args.steps, args.minutes, seconds_before, args.ckpt_every, args.ckpt_minutes)
    clock.tick(step)

    while not clock.stopping:
        lr = clock.lr(step, args.lr, 0, args.lr_final) if args.lr_final != 1.0 else args.lr
        for g in opt_g.param_groups:
            g["lr"] = lr * g["lr_mult"]
        for g in opt_d.param_groups:
            g["lr"] = lr
        idx = torch.randint(len(data), (bs,), generator=gen)
        real = to_unit(data[idx])
        flip = torch.rand(bs, generator=gen) < 0.5
        real[flip] = real[flip].flip(-1)
        real = real.to(device)

        # ---- discriminator
        z = torch.randn(bs, G.config.z_dim, generator=gen).to(device)
        with torch.no_grad():
            fake = G(G.mapping(z))
        r1_now = args.r1_gamma > 0 and step % args.r1_every == 0
        real_aug = diff_augment(real, args.augment).detach().requires_grad_(r1_now)
        logits_real = D(real_aug)
        logits_fake = D(diff_augment(fake, args.augment))
        loss_d = F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()
        stats = {"loss_d": loss_d.item(), "d_real": logits_real.mean().item(), "d_fake": logits_fake.mean().item()}
        if r1_now:
            r1 = r1_penalty(logits_real, real_aug)
            loss_d = loss_d + args.r1_gamma / 2 * r1 * args.r1_every
            stats["r1"] = r1.item()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        # ---- generator
        z = torch.randn(bs, G.config.z_dim, generator=gen).to(device)
        D.requires_grad_(False)
        loss_g = F.softplus(-D(diff_augment(G(G.mapping(z)), args.augment))).mean()
        D.requires_grad_(True)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        ema.update(G, step)
        step += 1
        clock.tick(step)

        if not math.isfinite(loss_g.item() + loss_d.item()):
            raise SystemExit(f"loss is not finite at step {step}: {stats}")
        if step % args.log_every == 0:
            now = time.time()
            log.log(step=step, loss_g=loss_g.item(), **stats, sec_per_step=(now - t_last) / args.log_every)
            t_last = now
        if step % args.sample_every == 0 or clock.stopping:
            save_grid(ema.model, z_fixed, args.out / "samples" / f"step{step:06d}.png")
        if step % args.snapshot_every == 0:
            from safetensors.torch import save_file
            (args.out / "snapshots").mkdir(exist_ok=True)
            save_file({k: v.contiguous() for k, v in ema.model.state_dict().items()},
                      str(args.out / "snapshots" / f"step{step:06d}.safetensors"),
                      metadata={"config": json.dumps(ema.model.config.to_dict()), "step": str(step)})
        if clock.ckpt_due:
            save_checkpoint(args.out / "ckpt.pt", {
                "model": G.state_dict(), "disc": D.state_dict(), "ema": ema.model.state_dict(),
                "opt": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
                "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "config": json.dumps(G.config.to_dict()), "disc_config": json.dumps(D.config.to_dict()),
                "set": args.set, "cpu_seconds": cpu_before + time.process_time() - cpu_last,
                "seconds": clock.seconds, "lr": lr,
            })
    log.log(step=step, final=True, lr=lr, progress=clock.progress, minutes=clock.seconds / 60)
    clock.close()
    return step


if __name__ == "__main__":
    from .export_gan import cli as export_cli
    train_or_export(main, export_cli)
