"""Train the photo -> painting translator (CUT / FastCUT, Park et al. 2020) on CPU.

    python -m imgen.training.train_stylize --out runs/stylize --steps 20000 --mode fastcut
    python -m imgen.training.train_stylize export --run runs/stylize [--metrics eval.json]

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

Adam (lr 2e-4, betas 0.5/0.999) for G, D and the head, cosine decay; an EMA of G is what gets exported.
Resumes from ``<out>/ckpt.pt`` (weights, optimisers, EMA, step, RNG states). Single process (CPU or one GPU).
Validation every ``--val-every`` steps on the 8 held-out photos: edge SSIM (content kept) and colour /
Gram distances to the paintings (style reached), see :mod:`imgen.evaluation.stylize`; sample sheets
(photo | EMA output) go to ``<out>/samples``.
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

from ..device import configure_threads, pick_device
from ..image_io import load_image, pil_to_tensor, tensor_to_pil
from ..models import build_model
from ..models.stylize_net import PatchSampleMLP, patch_nce_loss
from ..datasets.folders import list_images
from .loop import EMA, MetricLog, cosine_lr, load_checkpoint, save_checkpoint

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
N_VAL = 8
MODES = {"fastcut": {"w_nce": 10.0, "nce_idt": False, "flip_equivariance": True},
         "cut": {"w_nce": 1.0, "nce_idt": True, "flip_equivariance": False}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("runs/stylize"))
    p.add_argument("--mode", choices=sorted(MODES), default="fastcut")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--crop", type=int, default=160, help="square crop side, px (a multiple of 4)")
    p.add_argument("--long-side", type=int, nargs=2, default=[384, 768], metavar=("MIN", "MAX"),
                   help="photos are seen at a long side drawn from this range (px)")
    p.add_argument("--paint-long-side", type=int, nargs=2, default=[384, 640], metavar=("MIN", "MAX"),
                   help="paintings (stored at long side 512) are seen at a long side from this range")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--grad-clip", type=float, default=0.0, help="clip G's gradient norm (0 = off, as in CUT)")
    p.add_argument("--gan-loss", choices=["lsgan", "nonsat"], default="lsgan")
    p.add_argument("--w-gan", type=float, default=1.0)
    p.add_argument("--w-nce", type=float, default=None, help="PatchNCE weight (default: 10 fastcut, 1 cut)")
    p.add_argument("--nce-layers", default="0,1,2,3,4", help="encoder taps (0 input, 1 stem, 2/3 downsamplers, "
                                                             "4 middle residual block)")
    p.add_argument("--num-patches", type=int, default=256)
    p.add_argument("--tau", type=float, default=0.07)
    p.add_argument("--config", type=json.loads, default={}, help='generator config overrides, e.g. \'{"ngf": 16}\'')
    p.add_argument("--disc-config", type=json.loads, default={}, help='discriminator config, e.g. \'{"ndf": 32}\'')
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--max-paintings", type=int, default=None, help="use only the first N paintings (tests)")
    return p.parse_args(argv)


class DomainSampler:
    """Images of one domain in memory (uint8 RGB, long side <= ``store_side``); draws square crops at a random
    pixel scale (long side log-uniform in ``long_side``) with horizontal flips."""

    def __init__(self, paths, store_side: int):
        self.images = []
        for p in paths:
            a = np.asarray(load_image(p, mode="RGB"))
            h, w = a.shape[:2]
            if max(h, w) > store_side:
                s = store_side / max(h, w)
                a = cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            self.images.append(a)
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
    from ..evaluation.stylize import edge_ssim
    from ..image_io import tensor_to_array
    rows = []
    for x in photos:
        y = model(x.to(device)).float().cpu()
        a, b = tensor_to_array(x), tensor_to_array(y)
        rows.append({"val_edge_ssim": edge_ssim(a, b), **{f"val_{k}": v for k, v in target.distances(b).items()}})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


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


def main(argv=None):
    args = parse_args(argv)
    if args.crop % 4 or args.crop < 32:
        raise SystemExit("--crop must be a multiple of 4, at least 32")
    mode = MODES[args.mode]
    w_nce = mode["w_nce"] if args.w_nce is None else args.w_nce
    layers = [int(s) for s in args.nce_layers.split(",")]
    device = pick_device(args.device)
    configure_threads()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 7)     # PatchNCE patch locations

    photos = list_images([args.data / "photos/cbsd432"])
    val_paths, photos = photos[-N_VAL:], photos[:-N_VAL] + list_images([args.data / "photos/urban80"])
    paintings = list_images([args.data / "paintings/titian"])[: args.max_paintings]
    domain_a = DomainSampler(photos, store_side=max(args.long_side))
    domain_b = DomainSampler(paintings, store_side=max(512, max(args.paint_long_side)))

    G = build_model("stylize_net", args.config).to(device)
    D = build_model("stylize_disc", args.disc_config).to(device)
    head = PatchSampleMLP([G.feature_channels()[i] for i in layers]).to(device)
    ema = EMA(G, args.ema)
    opt_g = torch.optim.Adam(list(G.parameters()) + list(head.parameters()), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    step = 0
    ckpt = load_checkpoint(args.out / "ckpt.pt")
    if ckpt is not None:
        G.load_state_dict(ckpt["model"])
        D.load_state_dict(ckpt["disc"])
        head.load_state_dict(ckpt["head"])
        ema.model.load_state_dict(ckpt["ema"])
        opt_g.load_state_dict(ckpt["opt"])
        opt_d.load_state_dict(ckpt["opt_d"])
        step = ckpt["step"]
        rng.bit_generator.state = json.loads(ckpt["rng"])
        gen.set_state(ckpt["gen"])
        torch.set_rng_state(ckpt["torch_rng"])
        print(f"resumed from step {step}")
    log = MetricLog(args.out)
    (args.out / "args.json").write_text(json.dumps({k: str(v) if isinstance(v, Path) else v
                                                     for k, v in vars(args).items()}, indent=1))
    from ..evaluation.stylize import StyleTarget
    target = StyleTarget(args.data / "paintings/titian", limit=args.max_paintings)
    val = validation_photos(val_paths)
    if step == 0:   # the unstyled photos' numbers: the point the validation metrics start from
        log.log(step=0, **{k.replace("val_", "val_photo_"): v
                           for k, v in validate(torch.nn.Identity(), val, target, device).items()})

    cpu_before = float(ckpt.get("cpu_seconds", 0.0)) if ckpt else 0.0   # compute spent before this session
    wall_before = float(ckpt.get("wall_seconds", 0.0)) if ckpt else 0.0
    t_last = wall_start = time.time()
    cpu_start = time.process_time()
    while step < args.steps:
        lr = cosine_lr(step, args.steps, args.lr, args.warmup)
        for opt in (opt_g, opt_d):
            for g in opt.param_groups:
                g["lr"] = lr
        real_a = domain_a.sample(args.batch, args.crop, args.long_side, rng).to(device)
        real_b = domain_b.sample(args.batch, args.crop, args.paint_long_side, rng).to(device)
        flipped = mode["flip_equivariance"] and rng.random() < 0.5
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
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(G.parameters(), args.grad_clip or float("inf"))
        opt_g.step()
        ema.update(G, step)
        step += 1

        if not math.isfinite(loss_g.item()):
            raise SystemExit(f"loss is not finite at step {step}: {stats}")
        if step % args.log_every == 0:
            now = time.time()
            log.log(step=step, loss=loss_g.item(), **stats, gnorm=gnorm.item(), lr=lr,
                    sec_per_step=(now - t_last) / args.log_every)
            t_last = now
        if step % args.val_every == 0 or step == args.steps:
            ema.model.eval()
            log.log(step=step, **validate(ema.model, val, target, device))
            save_sample_sheet(ema.model, val, args.out / "samples" / f"step{step:06d}.png", device)
        if step % args.ckpt_every == 0 or step == args.steps:
            save_checkpoint(args.out / "ckpt.pt", {
                "model": G.state_dict(), "disc": D.state_dict(), "head": head.state_dict(),
                "ema": ema.model.state_dict(), "opt": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "step": step, "rng": json.dumps(rng.bit_generator.state), "gen": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "config": json.dumps(G.config.to_dict()), "disc_config": json.dumps(D.config.to_dict()),
                "cpu_seconds": cpu_before + time.process_time() - cpu_start,
                "wall_seconds": wall_before + time.time() - wall_start,
            })


# ------------------------------------------------------------------------------------------------- export
NAME = "stylize-titian"
LICENCE_NOTE = ("Photos: BSDS500 (CBSD432: non-commercial research and education) and Urban100 images 21-100 "
                "(academic benchmark): use these weights for non-commercial research and education only. "
                "Paintings: 255 works by Titian, public domain. The evaluation photos (CBSD68) were never "
                "trained on.")


def _metrics_table(metrics: dict) -> str:
    reports = metrics.get("reports") or []
    if not reports:
        return "Not evaluated yet."
    lines = [f"On {metrics.get('n', reports[0]['n'])} CBSD68 photos (never trained on), strength "
             f"{metrics.get('strength', 1.0):g}, max side {metrics.get('max_side', '?')}. Content kept: SSIM "
             "between Sobel edge maps of input and output (higher = structure kept). Style reached: distance "
             "to the Titian paintings' pooled Lab histograms (Wasserstein, summed over L/a/b) and to their mean "
             "Gram matrices in a fixed random conv net, of the colour image and of its luma alone (lower = "
             "closer to the paintings; the colour Gram also follows the palette, the luma Gram tone and texture).",
             "", "| method | edge SSIM ↑ | colour W1 ↓ | Gram ↓ | Gram luma ↓ | s/image | n |",
             "|---|---|---|---|---|---|---|"]
    for r in reports:
        gg = r.get("gram_gray")
        lines.append(f"| {r['method']} | {r['edge_ssim']:.4f} | {r['colour_w1']:.3f} | {r['gram']:.4f} | "
                     f"{'–' if gg is None else format(gg, '.4f')} | {r['seconds_per_image']:.3f} | {r['n']} |")
    if metrics.get("command"):
        lines += ["", "Command: `" + metrics["command"] + "`"]
    return "\n".join(lines)


def export(run_dir: Path, weights_dir: Path, name: str = NAME, metrics: dict | None = None,
           sheet_data: Path | None = None, history: str | None = None) -> str:
    """Export the EMA generator of ``run_dir/ckpt.pt`` to ``weights_dir/<name>.safetensors`` + card + registry
    (task "stylize"). With ``sheet_data`` (a photo folder, e.g. CBSD68; else the ``data`` of ``metrics``),
    also writes ``<name>-sheet.png``: 8 photos before | after, and ``<name>-detail.png``: a full-resolution crop.
    ``history``: how the run really went when it was resumed with other arguments (goes into the card)."""
    from ..store import update_entry
    from ..store import export_safetensors
    from .export import write_model_card

    ckpt = load_checkpoint(run_dir / "ckpt.pt")
    if ckpt is None:
        raise SystemExit(f"no checkpoint in {run_dir}")
    config = json.loads(ckpt["config"])
    model = build_model("stylize_net", config)
    model.load_state_dict(ckpt["ema"])
    model.eval()
    args = json.loads((run_dir / "args.json").read_text())
    file = f"{name}.safetensors"
    sha = export_safetensors(model, "stylize_net", weights_dir / file, extra={"step": ckpt["step"]})
    cpu_h, wall_h = ckpt.get("cpu_seconds", 0.0) / 3600, ckpt.get("wall_seconds", 0.0) / 3600
    n_params = sum(p.numel() for p in model.parameters())
    cmd = (f"python -m imgen.training.train_stylize --out runs/stylize --mode {args.get('mode')} "
           f"--steps {args.get('steps')} --batch {args.get('batch')} --crop {args.get('crop')}"
           + (f" --config '{json.dumps(args['config'])}'" if args.get("config") else "")
           + (f" --disc-config '{json.dumps(args['disc_config'])}'" if args.get("disc_config") else "")
           + (f" --w-gan {args['w_gan']:g}" if args.get("w_gan", 1.0) != 1.0 else ""))
    data = sheet_data or (Path(metrics["data"]) if metrics and metrics.get("data") else None)
    sheet_md = "Rows of photo | output are written to `runs/stylize/samples/` during training."
    if data is not None and Path(data).is_dir():
        from ..evaluation.stylize import results_sheet
        from ..evaluation.stylize import detail_crop
        results_sheet(model, data, weights_dir / f"{name}-sheet.png")
        detail_crop(model, data, weights_dir / f"{name}-detail.png")
        sheet_md = (f"![photo | stylized]({name}-sheet.png)\n\nThe first eight photos of `{Path(data).name}` "
                    "(never trained on): photo | stylized (strength 100 %), made at export.\n\n"
                    f"![detail: photo | stylized]({name}-detail.png)\n\nA detail at full resolution (photo | "
                    "stylized), where the change of texture shows: the sheet above is too small for it.")
    mode = args.get("mode", "fastcut")
    write_model_card(weights_dir / f"{name}.md", {
        "title": f"{name}: photo → Titian-style painting on a CPU (unpaired, {mode.upper() if mode == 'cut' else 'FastCUT'})",
        "licence": "other", "tags": ["image-to-image", "style-transfer", "unpaired-translation", "imgen"],
        "datasets": ["BSDS500 (CBSD432)", "Urban100 (images 21-100)", "Titian paintings (public domain)"],
        "summary": (f"A {n_params / 1e6:.2f} M-parameter fully convolutional ResNet generator (config "
                    f"`{json.dumps(config)}`): 7x7 stem, two stride-2 convolutions, residual blocks at 1/4 scale, "
                    "bilinear-upsample + convolution decoder, tanh; instance norm. Trained without paired data "
                    "with contrastive unpaired translation (PatchNCE + PatchGAN). In the app it runs on the whole "
                    "photo at a capped size (default long side 768 px) and its change is brought to full "
                    "resolution, so any photo size works."),
        "sections": {
            "Training data and licence": LICENCE_NOTE,
            "Training": (f"- command: `{cmd}`\n- steps: {ckpt['step']} (batch {args.get('batch')}, {args.get('crop')} px "
                         f"crops; photos seen at long side {args.get('long_side')}, paintings at "
                         f"{args.get('paint_long_side')} px; flips)\n"
                         f"- mode {mode}: PatchNCE weight {args.get('w_nce') or MODES[mode]['w_nce']} over encoder taps "
                         f"{args.get('nce_layers')} ({args.get('num_patches')} patches per layer, tau {args.get('tau')})"
                         f"{', identity PatchNCE on paintings' if MODES[mode]['nce_idt'] else ', flip equivariance'}; "
                         f"{args.get('gan_loss')} PatchGAN loss x{args.get('w_gan')}\n"
                         f"- Adam lr {args.get('lr')} (betas 0.5/0.999), cosine decay; EMA {args.get('ema')} (shipped)\n"
                         f"- compute: {cpu_h:.2f} CPU-process hours, {wall_h:.2f} wall-clock hours, 2-core CPU, no GPU"
                         + (f"\n- history: {history}" if history else "")),
            "Metrics": _metrics_table(metrics or {}),
            "Before / after": sheet_md,
        },
    })
    update_entry(name, task="stylize", arch="stylize_net", config=config, file=file, sha256=sha,
                 licence="other (non-commercial research and education; see card)",
                 data="BSDS500 CBSD432 + Urban100 21-100 (photos); Titian paintings (public domain)",
                 card=f"{name}.md")
    return sha


if __name__ == "__main__":
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "export":
        ap = argparse.ArgumentParser(prog="python -m imgen.training.train_stylize export")
        ap.add_argument("--run", type=Path, default=Path("runs/stylize"))
        ap.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[2] / "weights")
        ap.add_argument("--name", default=NAME)
        ap.add_argument("--metrics", type=Path, default=None, help="an `eval stylize` JSON report")
        ap.add_argument("--sheet-data", type=Path, default=None,
                        help="photos for the before/after sheet (default: the report's data, e.g. CBSD68)")
        ap.add_argument("--history", default=None, help="for the card: how the run went if resumed with other arguments")
        a = ap.parse_args(sys.argv[2:])
        metrics = json.loads(a.metrics.read_text()) if a.metrics else None
        print(export(a.run, a.weights, a.name, metrics=metrics, sheet_data=a.sheet_data, history=a.history))
    else:
        main()
