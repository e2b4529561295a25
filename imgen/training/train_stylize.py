"""Train the photo -> painting translator (CUT / FastCUT, Park et al. 2020) on CPU.

    python -m imgen.training.train_stylize --out runs/stylize --minutes 90 --init stylize-titian --w-tex 100
    python -m imgen.training.train_stylize export --run runs/stylize [--snapshot best|last] [--metrics eval.json]

(``main(argv)`` and ``export_cli(argv)`` take the same arguments as lists, for ``python -m imgen train``.)

Domain A: photos (CBSD432 + Urban100 21-100; the last 8 CBSD432 photos are held out for validation).
Domain B: 255 Titian paintings (public domain, long side 512). Both are held in memory (each image stored at
most ``--long-side`` max px on its long side). Each step draws square ``--crop`` px crops at a random pixel
scale: the image is looked at as if its long side were L px, L log-uniform in ``--long-side`` for photos and
``--paint-long-side`` for paintings (the scale the app feeds the network at, since it processes photos at
long side <= 768 px), plus horizontal flips.

One generator G (:mod:`imgen.models.stylize_net`), a PatchGAN D and the PatchNCE MLP head:

- adversarial: LSGAN (default) or non-saturating, weight ``--w-gan``;
- PatchNCE: for each of the encoder taps ``--nce-layers`` (input, stem, both downsamplers, middle residual
  block), ``--num-patches`` random locations; each patch of G(x) must pick the patch of x at the same location
  among the image's other patches (InfoNCE, temperature ``--tau``);
- ``--mode cut``: λ_NCE 1 plus the identity PatchNCE term on paintings (G(y) ~ y), averaged with the first;
  ``--mode fastcut``: λ_NCE 10, no identity term, flip-equivariance (G sees a flipped photo half the time and
  its features are flipped back before PatchNCE).

- ``--w-tex``: texture loss, the sliced Wasserstein distance between normalised 7x7 patches of a Laplacian
  pyramid of G's output and of ``--tex-crops`` painting crops (the descriptors of ``eval stylize``'s texture
  SWD); ``--w-colour``: the same on RGB pixels.

Adam (lr 2e-4, betas 0.5/0.999) for G, D and the head; the cosine LR is laid over the ``--steps`` or
``--minutes`` budget (:class:`~imgen.training.loop.BudgetedRun`); an EMA of G is what gets exported.
Resumes from ``<out>/ckpt.pt`` (weights, optimisers, EMA, step, RNG states), written every
``--ckpt-minutes`` and on SIGTERM. ``--workers N`` builds the crops in N processes. Every ``--val-every``
steps, the 8 held-out photos are watched: edge SSIM (content kept) and the texture / colour SWD of the set to
64 paintings (2 048 patches: cheap); the snapshot with the lowest texture SWD keeping edge SSIM >=
``--min-edge`` goes to ``<out>/best.pt``; sample sheets (photo | EMA output) go to ``<out>/samples``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..image_io import fit_max_side, load_image, pil_to_tensor, tensor_to_pil
from ..models import build_model
from ..models.stylize_net import PatchSampleMLP, patch_nce_loss
from ..datasets.folders import DATA, list_images
from .loop import (EMA, LOADER_TIMEOUT_S, BudgetedRun, MetricLog, load_checkpoint, save_checkpoint, start_run,
                   train_or_export)

N_VAL = 8
MODES = {"fastcut": {"w_nce": 10.0, "nce_idt": False, "flip_equivariance": True},
         "cut": {"w_nce": 1.0, "nce_idt": True, "flip_equivariance": False}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("runs/stylize"))
    p.add_argument("--mode", choices=sorted(MODES), default="fastcut")
    p.add_argument("--steps", type=int, default=0, help="step budget (0 = none; then --minutes)")
    p.add_argument("--minutes", type=float, default=0, help="wall-clock budget (0 = none; then --steps); the "
                                                             "cosine LR is laid over whichever ends first")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--workers", type=int, default=0, help="crop-building worker processes (0 = in the loop)")
    p.add_argument("--crop", type=int, default=160, help="square crop side, px (a multiple of 4)")
    p.add_argument("--long-side", type=int, nargs=2, default=[384, 768], metavar=("MIN", "MAX"),
                   help="photos are seen at a long side drawn from this range (px)")
    p.add_argument("--paint-long-side", type=int, nargs=2, default=[384, 640], metavar=("MIN", "MAX"),
                   help="paintings (stored at long side 512) are seen at a long side from this range")
    p.add_argument("--init", default=None, help="start G from a registered stylize model (e.g. stylize-titian); "
                                                 "its config replaces --config")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=float, default=0.0, help="fraction of the budget for the LR warm-up")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--gan-loss", choices=["lsgan", "nonsat"], default="lsgan")
    p.add_argument("--w-gan", type=float, default=1.0)
    p.add_argument("--w-nce", type=float, default=None, help="PatchNCE weight (default: 10 fastcut, 1 cut)")
    p.add_argument("--w-tex", type=float, default=0.0, help="texture loss: sliced Wasserstein distance between "
                   "normalised 7x7 Laplacian-pyramid patches of G's output and of painting crops (0 = off)")
    p.add_argument("--w-colour", type=float, default=0.0, help="colour loss: sliced Wasserstein distance "
                   "between RGB pixels of G's output and of painting crops (0 = off)")
    p.add_argument("--tex-crops", type=int, default=4, help="painting crops per step for the texture/colour losses")
    p.add_argument("--tex-patches", type=int, default=1024, help="patches per pyramid level in the texture loss")
    p.add_argument("--nce-layers", default="0,1,2,3,4", help="encoder taps (0 input, 1 stem, 2/3 downsamplers, "
                                                             "4 middle residual block)")
    p.add_argument("--num-patches", type=int, default=256)
    p.add_argument("--tau", type=float, default=0.07)
    p.add_argument("--config", type=json.loads, default={}, help='generator config overrides, e.g. \'{"ngf": 16}\'')
    p.add_argument("--disc-config", type=json.loads, default={}, help='discriminator config, e.g. \'{"ndf": 32}\'')
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--val-every", type=int, default=500, help="watch the cheap texture SWD every N steps "
                                                               "(and keep the best snapshot)")
    p.add_argument("--min-edge", type=float, default=0.6, help="the best snapshot must keep at least this watched "
                                                               "edge SSIM")
    p.add_argument("--ckpt-minutes", type=float, default=5.0, help="write the resume checkpoint this often")
    p.add_argument("--max-paintings", type=int, default=None, help="use only the first N paintings (tests)")
    p.add_argument("--max-photos", type=int, default=None, help="use only the first N training photos (tests)")
    args = p.parse_args(argv)
    if not args.steps and not args.minutes:
        p.error("give --steps or --minutes")
    return args


class DomainSampler:
    """Images of one domain in memory (uint8 RGB, long side <= ``store_side``); draws square crops at a random
    pixel scale (long side log-uniform in ``long_side``) with horizontal flips."""

    def __init__(self, paths, store_side: int):
        self.images = []
        for p in paths:
            self.images.append(fit_max_side(np.asarray(load_image(p, mode="RGB")), store_side))
        if not self.images:
            raise ValueError("no images for a training domain")

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, crop: int, long_side, rng: np.random.Generator) -> torch.Tensor:
        out = np.empty((n, crop, crop, 3), np.uint8)
        for i in range(n):
            img = self.images[rng.integers(len(self.images))]
            h, w = img.shape[:2]
            lo, hi = long_side
            target = math.exp(rng.uniform(math.log(lo), math.log(hi))) if hi > lo else lo
            win = crop * max(h, w) / target            # the source window that becomes the crop
            win = int(round(min(win, h, w)))           # a window larger than the image: use its short side
            win = max(win, 4)
            y, x = int(rng.integers(h - win + 1)), int(rng.integers(w - win + 1))
            c = img[y:y + win, x:x + win]
            if win != crop:
                c = cv2.resize(c, (crop, crop), interpolation=cv2.INTER_AREA if win > crop else cv2.INTER_CUBIC)
            if rng.random() < 0.5:
                c = c[:, ::-1]
            out[i] = c
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def gan_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    if kind == "lsgan":
        return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))
    return F.softplus(-logits).mean() if real else F.softplus(logits).mean()


def nce_loss(G, head, src: torch.Tensor, out: torch.Tensor, layers, num_patches: int, tau: float,
             gen: torch.Generator, flipped: bool = False) -> torch.Tensor:
    """PatchNCE between ``src`` and its translation ``out``, averaged over layers. The keys (src features)
    carry no gradient (CUT detaches them too); the queries train G and the head."""
    with torch.no_grad():
        feat_k = G.encode(src, layers)
    feat_q = G.encode(out, layers)
    if flipped:  # out came from the flipped src: flip its features back (flip equivariance)
        feat_q = [torch.flip(f, [3]) for f in feat_q]
    k, ids = head(feat_k, num_patches, generator=gen)
    q, _ = head(feat_q, num_patches, ids=ids)
    return sum(patch_nce_loss(a, b, src.shape[0], tau) for a, b in zip(q, k)) / len(layers)


def patch_swd_loss(fake: torch.Tensor, real: torch.Tensor, gen: torch.Generator, patches: int = 1024,
                   levels: int = 4, directions: int = 64) -> torch.Tensor:
    """Texture loss: per Laplacian level, the sliced Wasserstein distance (L1 between sorted projections on
    ``directions`` random unit vectors) between ``patches`` random 7x7 patches of ``fake`` and of ``real``,
    each set normalised per channel by its own mean and spread (the descriptors of the texture SWD of
    :mod:`imgen.evaluation.stylize`); mean over the levels. fake, real: (N, 3, H, W) in [0, 1]."""
    from ..metrics.swd import gather_patches
    from ..pyramid import laplacian_pyramid
    side = min(fake.shape[-2:] + real.shape[-2:])
    levels = max(1, min(levels, int(math.log2(side / 7)) + 1))     # the coarsest level still holds a patch
    loss = fake.new_zeros(())
    for lf, lr_ in zip(laplacian_pyramid(fake * 2 - 1, levels), laplacian_pyramid(real * 2 - 1, levels)):
        descs = []
        for lvl in (lf, lr_):
            n, c, h, w = lvl.shape
            k = -(-patches // n)
            ys = torch.randint(0, h - 6, (n, k), generator=gen)
            xs = torch.randint(0, w - 6, (n, k), generator=gen)
            d = gather_patches(lvl, ys.to(lvl.device), xs.to(lvl.device))[:patches].view(patches, c, -1)
            d = (d - d.mean((0, 2), keepdim=True)) / d.std((0, 2), keepdim=True).clamp_min(1e-6)
            descs.append(d.flatten(1))
        proj = torch.randn(descs[0].shape[1], directions, generator=gen).to(fake)
        proj = proj / proj.norm(dim=0, keepdim=True)
        pa, pb = (descs[0] @ proj).sort(0)[0], (descs[1] @ proj).sort(0)[0]
        loss = loss + (pa - pb).abs().mean()
    return loss / levels


def pixel_swd_loss(fake: torch.Tensor, real: torch.Tensor, gen: torch.Generator, pixels: int = 4096,
                   directions: int = 32) -> torch.Tensor:
    """Colour loss: sliced Wasserstein distance between ``pixels`` random RGB pixels of ``fake`` and ``real``."""
    def pick(x):
        flat = x.permute(0, 2, 3, 1).reshape(-1, 3)
        return flat[torch.randint(0, len(flat), (pixels,), generator=gen).to(x.device)]
    a, b = pick(fake), pick(real)
    proj = torch.randn(3, directions, generator=gen).to(fake)
    proj = proj / proj.norm(dim=0, keepdim=True)
    return ((a @ proj).sort(0)[0] - (b @ proj).sort(0)[0]).abs().mean()


class CropStream(torch.utils.data.IterableDataset):
    """Endless training batches: photo crops, painting crops (for D) and ``tex_crops`` more painting crops
    (for the texture / colour losses), with the flip-equivariance coin. In ``--workers`` processes each worker
    draws from its own seed (run seed, worker id, start step); in the loop (0 workers) from ``rng``."""

    def __init__(self, domain_a, domain_b, args, start_step: int = 0, rng: np.random.Generator | None = None):
        self.a, self.b, self.args, self.start, self.rng = domain_a, domain_b, args, start_step, rng

    def batch(self, rng: np.random.Generator) -> dict:
        a = self.args
        out = {"real_a": self.a.sample(a.batch, a.crop, a.long_side, rng),
               "real_b": self.b.sample(a.batch, a.crop, a.paint_long_side, rng),
               "flip": bool(MODES[a.mode]["flip_equivariance"] and rng.random() < 0.5)}
        if a.w_tex > 0 or a.w_colour > 0:
            out["tex_b"] = self.b.sample(a.tex_crops, a.crop, a.paint_long_side, rng)
        return out

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        if info is None:
            rng = self.rng if self.rng is not None else np.random.default_rng([self.args.seed, self.start])
        else:
            torch.set_num_threads(1)   # not cv2.setNumThreads: in a forked worker it deadlocks (train_inpaint)
            rng = np.random.default_rng([self.args.seed, 1 + info.id, self.start])
        while True:
            yield self.batch(rng)


def batches(stream: CropStream, workers: int):
    """An iterator over the stream's batches, built in ``workers`` processes (0 = here)."""
    if workers <= 0:
        return iter(stream)
    return iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers, prefetch_factor=4,
                                            persistent_workers=True, timeout=LOADER_TIMEOUT_S))


def validation_photos(paths, multiple: int = 4, max_side: int = 512) -> list[torch.Tensor]:
    """Held-out photos as (1, 3, H, W) tensors, long side <= ``max_side``, sides cut to a multiple of 4."""
    out = []
    for p in paths:
        img = load_image(p, mode="RGB")
        img.thumbnail((max_side, max_side))
        t = pil_to_tensor(img)
        h, w = t.shape[-2] // multiple * multiple, t.shape[-1] // multiple * multiple
        out.append(t[:, :, :h, :w])
    return out


@torch.no_grad()
def validate(model, photos: list[torch.Tensor], target, device) -> dict:
    """The cheap watch on the held-out photos: edge SSIM to the photo (content kept), and the texture and
    colour SWD of the set of outputs to the paintings' ``target`` (:class:`~imgen.evaluation.stylize.SwdTarget`)."""
    from ..evaluation.stylize import edge_ssim
    from ..image_io import tensor_to_array
    pairs = [(tensor_to_array(x), tensor_to_array(model(x.to(device)).float().cpu())) for x in photos]
    swd = target.distances([b for _, b in pairs])
    return {"val_edge_ssim": float(np.mean([edge_ssim(a, b) for a, b in pairs])),
            "val_texture_swd": swd["texture_swd"], "val_colour_swd": swd["colour_swd"]}


@torch.no_grad()
def save_sample_sheet(model, photos: list[torch.Tensor], path: Path, device, rows: int = 4, side: int = 256) -> None:
    """Rows of (photo | output), each resized to ``side`` px high."""
    strips = []
    for x in photos[:rows]:
        y = model(x.to(device)).float().cpu().clamp(0, 1)
        pair = torch.cat([x, y], dim=3)
        w = round(pair.shape[3] * side / pair.shape[2])
        strips.append(F.interpolate(pair, size=(side, w), mode="area"))
    width = max(s.shape[3] for s in strips)
    sheet = torch.cat([F.pad(s, (0, width - s.shape[3]), value=1.0) for s in strips], dim=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(sheet).save(path)


class GanRun(BudgetedRun):
    """:class:`BudgetedRun` whose checkpoint also holds D, the PatchNCE head, D's optimiser and the crop
    RNG (``state()`` is called at each checkpoint)."""

    def __init__(self, *a, state=None, **kw):
        self.state = state
        super().__init__(*a, **kw)

    def checkpoint(self) -> None:
        self.extra = self.state() if self.state else {}
        super().checkpoint()


def build_generator(args, device) -> torch.nn.Module:
    if args.init:
        import copy
        from ..store import load
        G = copy.deepcopy(load(args.init)).train().requires_grad_(True)
        if getattr(G.config, "to_dict", None) is None or type(G).__name__ != "StylizeNet":
            raise SystemExit(f"--init {args.init}: not a stylize_net generator")
        return G.to(device)
    return build_model("stylize_net", args.config).to(device)


def main(argv=None) -> int:
    """Train (or resume) a run; returns the last step. ``argv``: the command-line arguments (a list)."""
    args = parse_args(argv)
    if args.crop % 4 or args.crop < 32:
        raise SystemExit("--crop must be a multiple of 4, at least 32")
    mode = MODES[args.mode]
    w_nce = mode["w_nce"] if args.w_nce is None else args.w_nce
    layers = [int(s) for s in args.nce_layers.split(",")]
    device, gen = start_run(args)                          # gen: PatchNCE locations, texture-loss samples
    rng = np.random.default_rng(args.seed)                 # crops (in the loop)

    photos = list_images([args.data / "photos/cbsd432"])
    val_paths, photos = photos[-N_VAL:], photos[:-N_VAL] + list_images([args.data / "photos/urban80"])
    photos = photos[: args.max_photos]
    paintings = list_images([args.data / "paintings/titian"])[: args.max_paintings]
    domain_a = DomainSampler(photos, store_side=max(args.long_side))
    domain_b = DomainSampler(paintings, store_side=max(512, max(args.paint_long_side)))

    G = build_generator(args, device)
    D = build_model("stylize_disc", args.disc_config).to(device)
    head = PatchSampleMLP([G.feature_channels()[i] for i in layers]).to(device)
    ema = EMA(G, args.ema)
    opt_g = torch.optim.Adam(list(G.parameters()) + list(head.parameters()), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    best = {"val_texture_swd": float("inf"), "step": -1}

    def state() -> dict:
        return {"disc": D.state_dict(), "head": head.state_dict(), "opt_d": opt_d.state_dict(),
                "rng": json.dumps(rng.bit_generator.state), "best": json.dumps(best),
                "disc_config": json.dumps(D.config.to_dict())}

    # the watch's targets and the step-0 baseline come before the run's clock starts
    from ..evaluation.stylize import SwdTarget
    target = SwdTarget([d for d in domain_b.images[::max(1, len(domain_b) // 64)]], patches=2048, pixels=16384)
    val = validation_photos(val_paths)
    if not (args.out / "ckpt.pt").exists():   # the unstyled photos' numbers, and the starting model's
        first = MetricLog(args.out)
        first.log(step=0, **{k.replace("val_", "val_photo_"): v
                             for k, v in validate(torch.nn.Identity(), val, target, device).items()})
        if args.init:
            first.log(step=0, **validate(ema.model, val, target, device))

    run = GanRun(args.out, args, G, ema, opt_g, gen, args.ckpt_minutes, state=state)
    ckpt = load_checkpoint(args.out / "ckpt.pt") if run.step else None
    if ckpt is not None:
        D.load_state_dict(ckpt["disc"])
        head.load_state_dict(ckpt["head"])
        opt_d.load_state_dict(ckpt["opt_d"])
        rng.bit_generator.state = json.loads(ckpt["rng"])
        best.update(json.loads(ckpt.get("best", "{}")))
    del ckpt

    log = run.log

    stream = batches(CropStream(domain_a, domain_b, args, run.step, rng), args.workers)
    t_last, s_last = time.time(), run.step
    while run.running():
        lr = run.set_lr(args.lr, args.warmup)
        for g in opt_d.param_groups:
            g["lr"] = lr
        b = next(stream)
        real_a, real_b, flipped = b["real_a"].to(device), b["real_b"].to(device), b["flip"]
        src = torch.flip(real_a, [3]) if flipped else real_a
        both = torch.cat([src, real_b]) if mode["nce_idt"] else src
        out = G(both)
        fake_b = out[:args.batch]

        # ---- discriminator step
        D.requires_grad_(True)
        loss_d = 0.5 * (gan_loss(D(fake_b.detach()), False, args.gan_loss) +
                        gan_loss(D(real_b), True, args.gan_loss))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        # ---- generator + PatchNCE head step
        D.requires_grad_(False)
        l_gan = gan_loss(D(fake_b), True, args.gan_loss)
        l_nce = nce_loss(G, head, real_a, fake_b, layers, args.num_patches, args.tau, gen, flipped)
        stats = {"gan_g": l_gan.item(), "nce": l_nce.item(), "loss_d": loss_d.item()}
        l_nce_total = l_nce
        if mode["nce_idt"]:
            l_idt = nce_loss(G, head, real_b, out[args.batch:], layers, args.num_patches, args.tau, gen)
            l_nce_total = 0.5 * (l_nce + l_idt)
            stats["nce_idt"] = l_idt.item()
        loss_g = args.w_gan * l_gan + w_nce * l_nce_total
        if args.w_tex > 0:
            l_tex = patch_swd_loss(fake_b, b["tex_b"].to(device), gen, args.tex_patches)
            loss_g = loss_g + args.w_tex * l_tex
            stats["tex"] = l_tex.item()
        if args.w_colour > 0:
            l_col = pixel_swd_loss(fake_b, b["tex_b"].to(device), gen)
            loss_g = loss_g + args.w_colour * l_col
            stats["colour"] = l_col.item()
        step = run.update(loss_g)

        if step % args.log_every == 0:
            now = time.time()
            log.log(step=step, loss=loss_g.item(), **stats, lr=lr, progress=round(run.progress, 4),
                    sec_per_step=(now - t_last) / max(1, step - s_last))
            t_last, s_last = now, step
        if step % args.val_every == 0:
            watch(run, ema, val, target, device, best, args.out, args.min_edge)
            t_last = time.time()
    run.finish()
    if run.step % args.val_every:                          # the end state is watched too
        watch(run, ema, val, target, device, best, args.out, args.min_edge)
    log.log(step=run.step, final=True, progress=round(run.progress, 4), best_step=best["step"],
            best_texture_swd=best["val_texture_swd"])
    return run.step


def watch(run, ema, val, target, device, best: dict, out: Path, min_edge: float = 0.6) -> None:
    """Log the cheap watch for the EMA generator, write a sample sheet, and keep the best snapshot
    (lowest texture SWD among those that keep edge SSIM >= ``min_edge``) in ``<out>/best.pt``."""
    ema.model.eval()
    m = validate(ema.model, val, target, device)
    run.log.log(step=run.step, **m)
    save_sample_sheet(ema.model, val, out / "samples" / f"step{run.step:06d}.png", device)
    if m["val_edge_ssim"] >= min_edge and m["val_texture_swd"] < best["val_texture_swd"]:
        best.update(m, step=run.step)
        save_checkpoint(out / "best.pt", {"ema": ema.model.state_dict(), "step": run.step,
                                          "config": json.dumps(ema.model.config.to_dict()), "metrics": json.dumps(m)})


# ------------------------------------------------------------------------------------------------- export
NAME = "stylize-titian"
LICENCE_NOTE = ("Photos: BSDS500 (CBSD432: non-commercial research and education) and Urban100 images 21-100 "
                "(academic benchmark): use these weights for non-commercial research and education only. "
                "Paintings: 255 works by Titian, public domain. The evaluation photos (CBSD68) were never "
                "trained on.")
REGISTRY_LICENCE = "other (non-commercial research and education; see card)"
DATA_LINE = "BSDS500 CBSD432 + Urban100 21-100 (photos); Titian paintings (public domain)"
DATASETS = ["BSDS500 (CBSD432)", "Urban100 (images 21-100)", "Titian paintings (public domain)"]


def metrics_table(metrics: dict) -> str:
    reports = metrics.get("reports") or []
    if not reports:
        return "Not evaluated yet."

    def f(r, k, spec):
        return format(r[k], spec) if r.get(k) is not None else "–"
    n = metrics.get("n") or next((r["n"] for r in reports if r["method"].startswith("photo")), reports[0]["n"])
    lines = [f"On {n} CBSD68 photos (never trained on), strength {metrics.get('strength', 1.0):g}, max side "
             f"{metrics.get('max_side', '?')}. Style reached, against the 255 Titian paintings, both sets at long "
             "side 512: **texture SWD** (sliced Wasserstein distance between 7x7 patches of a 4-level Laplacian "
             "pyramid, each level's patches normalised per channel by their set's mean and spread, 256 random "
             "directions, x10^3, mean over levels) and **colour SWD** (the same on CIE Lab pixels, not "
             "normalised, Lab units); the paintings' halves against each other are the floor. Content kept: "
             "**edge SSIM** (SSIM between Sobel edge maps of input and output). *To own ref*: texture SWD of "
             "each result to its own reference painting alone (reference rows; the photo row: the unstyled "
             "photo to the same painting). Older measures: Lab-histogram W1 and random-net Gram distances.",
             "", "| method | texture SWD ↓ | colour SWD ↓ | edge SSIM ↑ | to own ref ↓ | colour W1 ↓ | Gram ↓ | "
                 "Gram luma ↓ | s/image | n |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {r['method']} | {f(r, 'texture_swd', '.1f')} | {f(r, 'colour_swd', '.2f')} | "
                     f"{f(r, 'edge_ssim', '.4f')} | {f(r, 'ref_texture_swd', '.1f')} | {f(r, 'colour_w1', '.3f')} | "
                     f"{f(r, 'gram', '.4f')} | {f(r, 'gram_gray', '.4f')} | {f(r, 'seconds_per_image', '.3f')} | "
                     f"{r['n']} |")
    if metrics.get("command"):
        lines += ["", "Command: `" + metrics["command"] + "`"]
    return "\n".join(lines)


def export(run_dir: Path, weights_dir: Path | None, name: str = NAME, metrics: dict | None = None,
           sheet_data: Path | None = None, history: str | None = None, snapshot: str = "last") -> str:
    """Export the EMA generator of ``run_dir/ckpt.pt`` to ``weights_dir/<name>.safetensors`` + card + registry
    (task "stylize"). With ``sheet_data`` (a photo folder, e.g. CBSD68; else the ``data`` of ``metrics``),
    also writes ``<name>-sheet.png``: 8 photos before | after, and ``<name>-detail.png``: a full-resolution crop.
    ``history``: how the run really went when it was resumed with other arguments (goes into the card)."""
    from .release import Release, publish, weights_folder
    weights_dir = weights_folder(weights_dir)

    ckpt = load_checkpoint(run_dir / "ckpt.pt")
    if ckpt is None:
        raise SystemExit(f"no checkpoint in {run_dir}")
    snap = load_checkpoint(run_dir / "best.pt") if snapshot == "best" else None
    snap = snap or ckpt
    config = json.loads(snap["config"])
    model = build_model("stylize_net", config)
    model.load_state_dict(snap["ema"])
    model.eval()
    args = json.loads((run_dir / "args.json").read_text())
    wall_h = ckpt.get("seconds", ckpt.get("wall_seconds", 0.0)) / 3600
    n_params = sum(p.numel() for p in model.parameters())
    budget = (f"--minutes {args['minutes']:g}" if args.get("minutes") else f"--steps {args.get('steps')}")
    cmd = (f"python -m imgen.training.train_stylize --out runs/stylize --mode {args.get('mode')} {budget} "
           f"--batch {args.get('batch')} --crop {args.get('crop')}"
           + (f" --init {args['init']}" if args.get("init") else "")
           + (f" --config '{json.dumps(args['config'])}'" if args.get("config") and not args.get("init") else "")
           + (f" --disc-config '{json.dumps(args['disc_config'])}'" if args.get("disc_config") else "")
           + (f" --w-gan {args['w_gan']:g}" if args.get("w_gan", 1.0) != 1.0 else "")
           + (f" --w-nce {args['w_nce']:g}" if args.get("w_nce") is not None else "")
           + (f" --w-tex {args['w_tex']:g}" if args.get("w_tex") else "")
           + (f" --w-colour {args['w_colour']:g}" if args.get("w_colour") else "")
           + (f" --warmup {args['warmup']:g}" if args.get("warmup") else ""))
    losses = (f"; texture loss x{args['w_tex']:g} (sliced Wasserstein distance between normalised 7x7 patches of a "
              f"4-level Laplacian pyramid of the output and of {args.get('tex_crops')} painting crops per step)"
              if args.get("w_tex") else "")
    losses += (f"; colour loss x{args['w_colour']:g} (sliced Wasserstein distance between RGB pixels of the "
               "output and of the painting crops)" if args.get("w_colour") else "")
    picked = (f" of {ckpt['step']} run: the snapshot with the lowest watched texture SWD among those with edge "
              "SSIM >= 0.6;" if snap is not ckpt else "")
    data = sheet_data or (Path(metrics["data"]) if metrics and metrics.get("data") else None)
    sheet_md = "Rows of photo | output are written to `runs/stylize/samples/` during training."
    if data is not None and Path(data).is_dir():
        from ..evaluation.stylize import results_sheet
        from ..tasks.stylize import DEFAULT_STRENGTH
        from ..evaluation.stylize import detail_crop
        results_sheet(model, data, weights_dir / f"{name}-sheet.png", strength=DEFAULT_STRENGTH)
        detail_crop(model, data, weights_dir / f"{name}-detail.png", strength=DEFAULT_STRENGTH)
        sheet_md = (f"![photo | stylized]({name}-sheet.png)\n\nThe first eight photos of `{Path(data).name}` "
                    f"(never trained on): photo | the network's output at the default strength "
                    f"{DEFAULT_STRENGTH:.0%} (without the brushwork pass), made at export.\n\n"
                    f"![detail: photo | stylized]({name}-detail.png)\n\nA detail at full resolution (photo | "
                    "stylized), where the change of texture shows: the sheet above is too small for it.")
    mode = args.get("mode", "fastcut")
    return publish(Release(
        name=name, task="stylize", arch="stylize_net", model=model,
        title=f"{name}: photo → Titian-style painting on a CPU (unpaired, {mode.upper() if mode == 'cut' else 'FastCUT'})",
        licence="other", registry_licence=REGISTRY_LICENCE, data=DATA_LINE, datasets=DATASETS,
        tags=["image-to-image", "style-transfer", "unpaired-translation", "imgen"],
        metadata={"step": snap["step"]},
        summary=(f"A {n_params / 1e6:.2f} M-parameter fully convolutional ResNet generator (config "
                    f"`{json.dumps(config)}`): 7x7 stem, two stride-2 convolutions, residual blocks at 1/4 scale, "
                    "bilinear-upsample + convolution decoder, tanh; instance norm. Trained without paired data "
                    "with contrastive unpaired translation (PatchNCE + PatchGAN). In the app it runs on the whole "
                    "photo at a capped size (default long side 768 px) and its change is brought to full "
                    "resolution, so any photo size works."),
        sections={
            "Training data and licence": LICENCE_NOTE,
            "Training": (f"- command: `{cmd}`\n- steps: {snap['step']}{picked or ','} batch {args.get('batch')}, {args.get('crop')} px "
                         f"crops; photos seen at long side {args.get('long_side')}, paintings at "
                         f"{args.get('paint_long_side')} px; flips\n"
                         f"- mode {mode}: PatchNCE weight {args.get('w_nce') or MODES[mode]['w_nce']} over encoder taps "
                         f"{args.get('nce_layers')} ({args.get('num_patches')} patches per layer, tau {args.get('tau')})"
                         f"{', identity PatchNCE on paintings' if MODES[mode]['nce_idt'] else ', flip equivariance'}; "
                         f"{args.get('gan_loss')} PatchGAN loss x{args.get('w_gan')} (D config "
                         f"{json.dumps(args.get('disc_config') or {})}){losses}\n"
                         f"- Adam lr {args.get('lr')} (betas 0.5/0.999), cosine decay; EMA {args.get('ema')} (shipped)\n"
                         f"- compute: {wall_h:.2f} wall-clock hours, {args.get('hardware', 'a 2-core CPU (no GPU)')}"
                         + (f"\n- history: {history}" if history else "")),
            "Metrics": metrics_table(metrics or {}),
            "Before / after": sheet_md,
        }), weights_dir)


def export_cli(argv=None) -> str:
    """``python -m imgen.training.train_stylize export ...`` with ``argv`` the arguments after "export"."""
    from .release import export_parser
    ap = export_parser("stylize", "runs/stylize", NAME)
    ap.add_argument("--snapshot", choices=["best", "last"], default="best",
                    help="best: the watched snapshot with the lowest texture SWD (best.pt); last: ckpt.pt's EMA")
    ap.add_argument("--metrics", type=Path, default=None, help="an `eval stylize` JSON report")
    ap.add_argument("--sheet-data", type=Path, default=None,
                    help="photos for the before/after sheet (default: the report's data, e.g. CBSD68)")
    ap.add_argument("--history", default=None, help="for the card: how the run went if resumed with other arguments")
    a = ap.parse_args(argv)
    metrics = json.loads(a.metrics.read_text()) if a.metrics else None
    sha = export(a.run, a.weights, a.name, metrics=metrics, sheet_data=a.sheet_data, history=a.history,
                 snapshot=a.snapshot)
    print(sha)
    return sha


if __name__ == "__main__":
    train_or_export(main, export_cli)
