"""Train the latent-explorer VAE (64x64) on KaoKore faces (the same ``train_`` split as the GAN).

    python -m imgen train vae --out runs/vae-kaokore --minutes 60
    python -m imgen export vae --run runs/vae-kaokore --name kaokore-vae

Loss per image: L1 + ``--w-ssim`` x (1 - SSIM) on pixels in [-1, 1], plus ``--kl`` x KL(q(z|x) || N(0, I)) per
pixel (KL summed over z, divided by the 3 x 64 x 64 values); the KL weight ramps up over the first
``--kl-warmup`` of the run. Horizontal flips. Adam with warm-up and a cosine schedule laid over the step or
time budget, whichever ends first, so a ``--minutes`` run ends annealed. The EMA of the weights is exported.
Resumes from ``<out>/ckpt.pt``; SIGTERM/SIGINT save a checkpoint before exiting. The held-out ``dev_`` faces
(first 256) are reconstructed every ``--val-every`` steps for the log only (nothing is selected on them).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models import build_model
from .loop import EMA, BudgetedRun, start_run, train_or_export
from ..datasets.faces import load_set, split_files, training_files
from ..datasets.folders import DATA
from .train_gan import save_grid, to_unit


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("runs/vae-kaokore"))
    p.add_argument("--steps", type=int, default=0, help="step budget (0 = none; then --minutes)")
    p.add_argument("--minutes", type=float, default=0, help="wall-clock budget (0 = none; then --steps)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.02, help="fraction of the budget for the LR warm-up")
    p.add_argument("--kl", type=float, default=0.05, help="KL weight per pixel value")
    p.add_argument("--kl-warmup", type=float, default=0.1, help="fraction of the budget to ramp the KL weight")
    p.add_argument("--w-ssim", type=float, default=0.5)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--config", type=json.loads, default={}, help="VAE config overrides as JSON")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--ckpt-minutes", type=float, default=5.0, help="write the resume checkpoint this often")
    return p.parse_args(argv)


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-(torch.arange(size) - size // 2).float() ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004, 11x11 Gaussian window), differentiable; (N,) tensor."""
    c = x.shape[1]
    g = _gauss().to(x)
    win = (g[:, None] * g[None, :]).expand(c, 1, -1, -1)

    def blur(t):
        return F.conv2d(t, win, groups=c)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def kl_per_value(mean: torch.Tensor, logvar: torch.Tensor, values: int) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over z, divided by the pixel values of an image; (N,)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1) / values


def reconstruct(vae, x: torch.Tensor) -> torch.Tensor:
    """The posterior-mean reconstruction (what the explorer shows for an encoded picture)."""
    return vae(vae.encode(x)[0])


@torch.no_grad()
def validate(vae, held_u8: torch.Tensor, device, batch: int = 128) -> dict:
    """PSNR (dB, over RGB, uint8 round trip as the app shows it) and SSIM of posterior-mean reconstructions."""
    mse, ss = [], []
    for i in range(0, len(held_u8), batch):
        x = to_unit(held_u8[i:i + batch]).to(device)
        y = reconstruct(vae, x)
        y8 = ((y + 1) * 127.5).round().clamp(0, 255)
        x8 = held_u8[i:i + batch].float().to(device)
        mse.append((y8 - x8).pow(2).flatten(1).mean(1))
        ss.append(ssim(x8 / 127.5 - 1, y8 / 127.5 - 1))
    mse = torch.cat(mse)
    return {"psnr": float((10 * torch.log10(255 ** 2 / mse.clamp_min(1e-10))).mean()), "ssim": float(torch.cat(ss).mean())}


def main(argv=None):
    args = parse_args(argv)
    device, gen = start_run(args)

    data = load_set(training_files(args.data, "kaokore"))
    val = load_set([p for p in split_files(args.data, "kaokore")[1] if p.name.startswith("dev_")][:256])
    print(f"{len(data)} training faces, {len(val)} held-out faces for the log")
    vae = build_model("latent_vae", args.config).to(device)
    ema = EMA(vae, args.ema)
    opt = torch.optim.Adam(vae.parameters(), lr=args.lr, betas=(0.9, 0.99))
    run = BudgetedRun(args.out, args, vae, ema, opt, gen, args.ckpt_minutes)
    z_fixed = torch.randn(64, vae.config.z_dim, generator=torch.Generator().manual_seed(1234)).to(device)
    values = 3 * vae.resolution ** 2
    t_last = time.time()

    while run.running():
        t = run.progress
        lr = run.set_lr(args.lr, args.warmup)
        kl_w = args.kl * min(1.0, t / args.kl_warmup) if args.kl_warmup > 0 else args.kl
        idx = torch.randint(len(data), (args.batch,), generator=gen)
        x = to_unit(data[idx])
        flip = torch.rand(args.batch, generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        x = x.to(device)
        mean, logvar = vae.encode(x)
        z = mean + torch.randn(mean.shape, generator=gen).to(device) * (0.5 * logvar).exp()
        y = vae(z)
        l1 = (y - x).abs().flatten(1).mean(1)
        s = ssim(x, y)
        kl = kl_per_value(mean, logvar, values)
        loss = (l1 + args.w_ssim * (1 - s) + kl_w * kl).mean()
        step = run.update(loss)
        if step % args.log_every == 0:
            now = time.time()
            run.log.log(step=step, loss=loss.item(), l1=l1.mean().item(), ssim=s.mean().item(),
                        kl_nats=kl.mean().item() * values, kl_w=kl_w, lr=lr, progress=round(t, 4),
                        sec_per_step=(now - t_last) / args.log_every)
            t_last = now
        if step % args.val_every == 0:
            run.log.log(step=step, **{f"val_{k}": v for k, v in validate(ema.model, val, device).items()})
            save_grid(ema.model, z_fixed, args.out / "samples" / f"step{step:06d}.png")
    run.finish()
    run.log.log(step=run.step, final=True, lr=opt.param_groups[0]["lr"], progress=run.progress,
                **{f"val_{k}": v for k, v in validate(ema.model, val, device).items()})
    save_grid(ema.model, z_fixed, args.out / "samples" / f"step{run.step:06d}.png")
    return run.step


if __name__ == "__main__":
    from .export_explore import vae_cli
    train_or_export(main, vae_cli)
