"""Train an image -> w encoder for a shipped latent GAN: the instant first guess when a picture is projected.

    python -m imgen train encoder --generator kaokore-gan --out runs/encoder-kaokore --minutes 30
    python -m imgen export encoder --run runs/encoder-kaokore --name kaokore-gan-encoder

The generator is frozen. Each step mixes two batches:
- generated faces (z from the prior, truncation ψ drawn in [0.5, 1], random direction offsets), whose w is
  known: loss = ``--w-latent`` x MSE(E(x), w) + pixel loss of G(E(x)) against x;
- real KaoKore training faces (``train_`` split only; flips): pixel loss of G(E(x)) against x.
Pixel loss = L1 + MSE at full and half resolution (what the explorer's optimisation then minimises).
Adam with warm-up and a cosine schedule over the step or time budget; EMA exported; resumable
(``<out>/ckpt.pt``, SIGTERM/SIGINT save one).
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
from ..datasets.faces import load_set, training_files
from ..datasets.folders import DATA
from .train_gan import to_unit


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", default="kaokore-gan", help="registry name of the (frozen) generator")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=Path("runs/encoder-kaokore"))
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--minutes", type=float, default=0)
    p.add_argument("--batch", type=int, default=16, help="generated faces per step (and as many real ones)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.02)
    p.add_argument("--w-latent", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--config", type=json.loads, default={}, help="encoder config overrides as JSON")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    return p.parse_args(argv)


def pixel_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L1 + MSE at full and half resolution, per image (N,)."""
    def one(a, b):
        return (a - b).abs().flatten(1).mean(1) + (a - b).pow(2).flatten(1).mean(1)
    return one(y, x) + one(F.avg_pool2d(y, 2), F.avg_pool2d(x, 2))


def generated_batch(G, n: int, gen: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """n generator samples (images, their w): ψ in [0.5, 1] and up to ±2σ along the stored directions."""
    z = torch.randn(n, G.config.z_dim, generator=gen).to(device)
    psi = (0.5 + 0.5 * torch.rand(n, 1, generator=gen)).to(device)
    with torch.no_grad():
        w = G.w_avg + psi * (G.mapping(z) - G.w_avg)
        offs = (torch.rand(n, len(G.direction_std), generator=gen) * 4 - 2).to(device)
        w = w + (offs * G.direction_std) @ G.directions * (torch.rand(n, 1, generator=gen) < 0.5).to(device)
        return G(w), w


def main(argv=None):
    from ..store import load
    args = parse_args(argv)
    device, gen = start_run(args)
    G = load(args.generator, device=device).eval().requires_grad_(False)
    real = load_set(training_files(args.data, "kaokore"))
    cfg = {"w_dim": G.config.w_dim, "generator": args.generator, **args.config}
    E = build_model("latent_encoder", cfg).to(device)
    ema = EMA(E, args.ema)
    opt = torch.optim.Adam(E.parameters(), lr=args.lr, betas=(0.9, 0.99))
    run = BudgetedRun(args.out, args, E, ema, opt, gen, args.ckpt_minutes)
    t_last = time.time()

    while run.running():
        t = run.progress
        lr = run.set_lr(args.lr, args.warmup)
        x_gen, w_gen = generated_batch(G, args.batch, gen, device)
        idx = torch.randint(len(real), (args.batch,), generator=gen)
        x_real = to_unit(real[idx])
        flip = torch.rand(args.batch, generator=gen) < 0.5
        x_real[flip] = x_real[flip].flip(-1)
        x = torch.cat([x_gen, x_real.to(device)])
        w_hat = E(x)
        l_w = (w_hat[:args.batch] - w_gen).pow(2).mean()
        l_pix = pixel_loss(G(w_hat), x)
        loss = args.w_latent * l_w + l_pix.mean()
        step = run.update(loss)
        if step % args.log_every == 0:
            now = time.time()
            run.log.log(step=step, loss=loss.item(), w_mse=l_w.item(), pix_gen=l_pix[:args.batch].mean().item(),
                        pix_real=l_pix[args.batch:].mean().item(), lr=lr, progress=round(t, 4),
                        sec_per_step=(now - t_last) / args.log_every)
            t_last = now
    run.finish()
    run.log.log(step=run.step, final=True, lr=opt.param_groups[0]["lr"], progress=run.progress)
    return run.step


if __name__ == "__main__":
    from .export_explore import encoder_cli
    train_or_export(main, encoder_cli)
