"""Distil a trained stylize generator into a cheaper one: the same painting, less CPU time (issue #17).

    python -m imgen train stylize-distill --teacher stylize-titian-teacher --minutes 45 \
        --config '{"n_blocks": 3, "pad": "zeros"}'
    python -m imgen export stylize-distill --run runs/stylize-distill --metrics eval.json

The teacher (a registered stylize model) is run once on every training photo as the app runs it: the whole
photo at a long side from ``--sides`` (the app's processing size is at most 768 px); half of the photos are
first given a random colour change (saturation, gamma, a channel mix), so the student also sees colours the
photo sets are short of. Those (photo, teacher output) pairs are kept in memory, and in ``<out>/teacher.npz``
so a resumed run skips the teacher. Photos: CBSD432 (the last 8 held out, as in ``train_stylize``) + Urban100
21-100; never CBSD68.

The student (``--config``: changes to the teacher's :class:`~imgen.models.stylize_net.StylizeNetConfig`;
``--init teacher`` starts it from the teacher's weights, its fewer residual blocks taken evenly from the
teacher's) learns, on random
``--crop`` px crops of those pairs at batch ``--batch``, the teacher's output at the same pixels: L1 plus
``--w-grad`` x L1 between their horizontal and vertical differences (the texture is in the differences). Where
a crop cuts through the photo, its ``--margin`` px strip is left out of the loss (the teacher saw what lies
beyond, the student does not); where it lies on the photo's edge (``--edge``: the chance for each side) the
strip counts, so the student learns the borders (it may pad differently from the teacher).

Adam, warm-up and cosine LR over the ``--steps``/``--minutes`` budget, EMA (exported), resumable
(:class:`~imgen.training.loop.BudgetedRun`; the crops of a resumed run are drawn afresh). Every ``--val-every``
steps the 8 held-out photos are watched: PSNR of the student to the teacher, and the texture / colour SWD to the
paintings as ``train_stylize`` watches them; the snapshot closest to the teacher goes to ``<out>/best.pt``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ..datasets.folders import DATA, list_images
from ..image_io import at_long_side, load_image, tensor_to_array, to_uint8
from ..metrics.fidelity import psnr
from ..models import build_model
from ..runtime import ModelRunner
from .data import colour_change
from .loop import EMA, BudgetedRun, load_checkpoint, save_checkpoint, start_run, train_or_export

N_VAL = 8


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("runs/stylize-distill"))
    p.add_argument("--teacher", default="stylize-titian-teacher", help="a registered stylize model")
    p.add_argument("--config", type=json.loads, default={"n_blocks": 3, "pad": "zeros"},
                   help="the student's StylizeNetConfig: changes to the teacher's (JSON)")
    p.add_argument("--init", choices=["teacher", "random"], default="teacher",
                   help="teacher: start from the teacher's weights (its residual blocks spread over the student's "
                        "fewer ones; needs the same norm and width); random: a fresh init")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--minutes", type=float, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=160, help="square crop side, px (a multiple of 4)")
    p.add_argument("--margin", type=int, default=12, help="px along each side where a crop cuts through the photo "
                                                          "left out of the loss")
    p.add_argument("--edge", type=float, default=0.2, help="chance that a crop's side lies on the photo's edge")
    p.add_argument("--sides", type=int, nargs="+", default=[448, 768],
                   help="the teacher sees each photo at these long sides (px)")
    p.add_argument("--jitter", type=float, default=0.5, help="fraction of teacher inputs given a colour change")
    p.add_argument("--w-grad", type=float, default=1.0, help="weight of the L1 between image differences")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.02)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--max-photos", type=int, default=None, help="use only the first N training photos (tests)")
    args = p.parse_args(argv)
    if not args.steps and not args.minutes:
        p.error("give --steps or --minutes")
    if args.crop % 4 or args.crop - 2 * args.margin < 16:
        p.error("--crop must be a multiple of 4 and leave at least 16 px inside --margin")
    return args


def training_photos(data: Path) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos): CBSD432 minus its last 8 + Urban100 21-100; the last 8 CBSD432."""
    cbsd = list_images([data / "photos/cbsd432"])
    return cbsd[:-N_VAL] + list_images([data / "photos/urban80"]), cbsd[-N_VAL:]


class TeacherPairs:
    """(photo, teacher output) uint8 pairs in memory; random aligned crops as float tensors."""

    def __init__(self, inputs: list[np.ndarray], outputs: list[np.ndarray]):
        self.inputs, self.outputs = inputs, outputs

    @classmethod
    def build(cls, teacher, paths, sides, jitter: float, rng: np.random.Generator, cache: Path | None = None):
        """Run ``teacher`` (uint8 RGB -> float RGB 0..255, as :class:`~imgen.tasks.stylize.NetworkStylizer`)
        on every photo at every side; loads ``cache`` (an .npz) instead when it exists, writes it otherwise."""
        if cache is not None and cache.exists():
            with np.load(cache) as z:
                n = len([k for k in z.files if k.startswith("in")])
                return cls([z[f"in{i}"] for i in range(n)], [z[f"out{i}"] for i in range(n)])
        ins, outs = [], []
        t0 = time.time()
        for k, p in enumerate(paths):
            rgb = np.asarray(load_image(p, mode="RGB"))
            for side in sides:
                x = at_long_side(rgb, side)
                x = np.ascontiguousarray(x[: x.shape[0] // 4 * 4, : x.shape[1] // 4 * 4])   # the network's multiple
                if rng.random() < jitter:
                    x = colour_change(x, rng)
                ins.append(x)
                outs.append(to_uint8(teacher(x)))
            if k % 50 == 0:
                print(f"teacher: {k + 1}/{len(paths)} photos, {time.time() - t0:.0f} s", flush=True)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **{f"in{i}": a for i, a in enumerate(ins)}, **{f"out{i}": a for i, a in enumerate(outs)})
        return cls(ins, outs)

    def __len__(self) -> int:
        return len(self.inputs)

    def sample(self, n: int, crop: int, rng: np.random.Generator, margin: int = 0,
               edge: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` aligned (input, target) crops and a loss weight for each: 0 on the ``margin`` px strips along
        the sides where the crop cuts through the picture (the teacher saw beyond them), 1 elsewhere, so the
        student does learn the picture's own borders. Each side of a crop lies on the picture's edge with
        probability ``edge`` (twice that per axis)."""
        xs, ys, ws = [], [], []
        for _ in range(n):
            i = int(rng.integers(len(self)))
            x, y = self.inputs[i], self.outputs[i]
            h, w = x.shape[:2]
            c = min(crop, h, w) // 4 * 4
            top, left = (self._offset(size - c, rng, edge) for size in (h, w))
            weight = np.ones((c, c), np.float32)
            if margin:
                if top > 0:
                    weight[:margin] = 0
                if top + c < h:
                    weight[-margin:] = 0
                if left > 0:
                    weight[:, :margin] = 0
                if left + c < w:
                    weight[:, -margin:] = 0
            xc, yc = x[top:top + c, left:left + c], y[top:top + c, left:left + c]
            if c < crop:
                xc, yc = (cv2.resize(a, (crop, crop), interpolation=cv2.INTER_LINEAR) for a in (xc, yc))
                weight = cv2.resize(weight, (crop, crop), interpolation=cv2.INTER_NEAREST)
            xs.append(xc)
            ys.append(yc)
            ws.append(weight)
        return (ModelRunner.batch_tensor(np.stack(xs)), ModelRunner.batch_tensor(np.stack(ys)),
                torch.from_numpy(np.stack(ws))[:, None])

    @staticmethod
    def _offset(room: int, rng: np.random.Generator, edge: float) -> int:
        r = rng.random()
        return 0 if r < edge else room if r < 2 * edge else int(rng.integers(room + 1))


def student_from_teacher(teacher: torch.nn.Module, config: dict) -> torch.nn.Module:
    """A student of ``config`` (the teacher's config with these changes) holding the teacher's weights: every
    layer it shares, and of the residual blocks an evenly spread subset (e.g. 0, 2, 5 of 6 for 3)."""
    student = build_model("stylize_net", {**teacher.config.to_dict(), **config})
    if student.config.ngf != teacher.config.ngf or student.config.norm != teacher.config.norm:
        raise SystemExit("--init teacher: the student needs the teacher's width (ngf) and norm; use --init random")
    n_t, n_s = teacher.config.n_blocks, student.config.n_blocks
    keep = np.linspace(0, n_t - 1, n_s).round().astype(int) if n_s > 1 else np.zeros(1, int)
    src = teacher.state_dict()
    state = {}
    for k in student.state_dict():
        if k.startswith("blocks."):
            i = int(k.split(".")[1])
            k_src = f"blocks.{keep[i]}." + k.split(".", 2)[2]
        else:
            k_src = k
        state[k] = src[k_src].detach().clone()
    student.load_state_dict(state)
    return student


def distill_loss(out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, w_grad: float) -> torch.Tensor:
    """Weighted L1 (``weight``: (N, 1, H, W)) plus ``w_grad`` x the weighted L1 of horizontal and vertical
    differences (a difference counts where both of its pixels do)."""
    def l1(a, b, wt):
        return ((a - b).abs() * wt).sum() / (wt.sum() * a.shape[1]).clamp_min(1)
    loss = l1(out, target, weight)
    if w_grad:
        dx = lambda a: a[..., :, 1:] - a[..., :, :-1]
        dy = lambda a: a[..., 1:, :] - a[..., :-1, :]
        loss = loss + w_grad * (l1(dx(out), dx(target), weight[..., :, 1:] * weight[..., :, :-1])
                                + l1(dy(out), dy(target), weight[..., 1:, :] * weight[..., :-1, :]))
    return loss


@torch.no_grad()
def validate(model, pairs: TeacherPairs, target, device) -> dict:
    """PSNR of the student to the teacher on the held-out pairs, and the watched texture / colour SWD."""
    psnrs, outs = [], []
    for x, y in zip(pairs.inputs, pairs.outputs):
        o = tensor_to_array(model(ModelRunner.batch_tensor(x[None]).to(device)).float().cpu())
        psnrs.append(psnr(y, o))
        outs.append(o)
    swd = target.distances(outs)
    return {"val_psnr_to_teacher": float(np.mean(psnrs)), "val_texture_swd": swd["texture_swd"],
            "val_colour_swd": swd["colour_swd"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    device, gen = start_run(args)
    rng = np.random.default_rng(args.seed)
    from ..store import load
    from ..tasks.stylize import NetworkStylizer
    teacher = NetworkStylizer(load(args.teacher))
    train_paths, val_paths = training_photos(args.data)
    train_paths = train_paths[: args.max_photos]
    pairs = TeacherPairs.build(teacher, train_paths, args.sides, args.jitter, np.random.default_rng([args.seed, 1]),
                               args.out / "teacher.npz")
    val = TeacherPairs.build(teacher, val_paths, [448], 0.0, np.random.default_rng([args.seed, 2]),
                             args.out / "teacher-val.npz")
    from ..evaluation.stylize import SwdTarget
    paintings = list_images([args.data / "paintings/titian"])
    target = SwdTarget([np.asarray(load_image(p, mode="RGB")) for p in paintings[::4]], patches=2048, pixels=16384)

    student = (student_from_teacher(teacher.module, args.config) if args.init == "teacher"
               else build_model("stylize_net", {**teacher.module.config.to_dict(), **args.config})).to(device).train()
    ema = EMA(student, args.ema)
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    best = {"val_psnr_to_teacher": -1.0, "step": -1}
    run = BudgetedRun(args.out, args, student, ema, opt, gen, args.ckpt_minutes,
                      extra={"teacher": args.teacher})
    if run.step and (args.out / "best.pt").exists():
        best.update(json.loads(load_checkpoint(args.out / "best.pt")["metrics"]), step=-1)
    if not run.step:                                     # where the untrained student starts
        run.log.log(step=0, **validate(ema.model.eval(), val, target, device))
    t_last, s_last = time.time(), run.step
    while run.running():
        lr = run.set_lr(args.lr, args.warmup)
        x, y, weight = pairs.sample(args.batch, args.crop, rng, args.margin, args.edge)
        loss = distill_loss(student(x.to(device)), y.to(device), weight.to(device), args.w_grad)
        step = run.update(loss)
        if step % args.log_every == 0:
            now = time.time()
            run.log.log(step=step, loss=loss.item(), lr=lr, progress=round(run.progress, 4),
                        sec_per_step=(now - t_last) / max(1, step - s_last))
            t_last, s_last = now, step
        if step % args.val_every == 0:
            watch(run, ema, val, target, device, best, args.out)
            t_last = time.time()
    run.finish()
    if run.step % args.val_every:
        watch(run, ema, val, target, device, best, args.out)
    run.log.log(step=run.step, final=True, best_step=best["step"], best_psnr=best["val_psnr_to_teacher"])
    return run.step


def watch(run, ema, val, target, device, best: dict, out: Path) -> None:
    ema.model.eval()
    m = validate(ema.model, val, target, device)
    run.log.log(step=run.step, **m)
    if m["val_psnr_to_teacher"] > best["val_psnr_to_teacher"]:
        best.update(m, step=run.step)
        save_checkpoint(out / "best.pt", {"ema": ema.model.state_dict(), "step": run.step,
                                          "config": json.dumps(ema.model.config.to_dict()), "metrics": json.dumps(m)})


# ------------------------------------------------------------------------------------------------- export
def export(run_dir: Path, weights_dir: Path | None, name: str = "stylize-titian", metrics: dict | None = None,
           sheet_data: Path | None = None, snapshot: str = "best", history: str | None = None) -> str:
    """The student of ``run_dir`` (its best snapshot, else the last EMA) as ``<name>`` (task "stylize"): weights,
    card (with the teacher's own training, from the teacher's card) and registry entry."""
    from ..store import StoreError, entry
    from .release import Release, card_section, load_run, publish, weights_folder
    from .train_stylize import DATA_LINE, DATASETS, LICENCE_NOTE, REGISTRY_LICENCE, metrics_table
    weights_dir = weights_folder(weights_dir)
    run = load_run(run_dir, "stylize_net")
    snap = load_checkpoint(run_dir / "best.pt") if snapshot == "best" else None
    model, step, watched = run.model, run.ckpt["step"], {}
    if snap is not None:
        model = build_model("stylize_net", json.loads(snap["config"]))
        model.load_state_dict(snap["ema"])
        model.eval().requires_grad_(False)
        step, watched = snap["step"], json.loads(snap["metrics"])
    a = run.args
    teacher = a.get("teacher", "?")
    try:
        t_entry = entry(teacher)
    except StoreError:
        t_entry = None
    t_training = card_section(teacher, "Training", weights_dir)
    t_config = t_entry.config if t_entry is not None else {}
    changes = [f"{t_config.get('n_blocks')} -> {run.config['n_blocks']} residual blocks"
               if t_config.get("n_blocks") != run.config["n_blocks"] else "",
               "zero padding (ONNX Runtime fuses it into the convolutions) instead of reflection"
               if run.config.get("pad") == "zeros" and t_config.get("pad", "reflect") != "zeros" else "",
               "no instance norm" if run.config.get("norm") == "none" and t_config.get("norm") != "none" else ""]
    changes = "; ".join(c for c in changes if c) or "the teacher's architecture"
    n_params = sum(p.numel() for p in model.parameters())
    cmd = (f"python -m imgen train stylize-distill --teacher {teacher} {run.budget} --batch {a.get('batch')} "
           f"--crop {a.get('crop')} --lr {a.get('lr'):g} --sides {' '.join(str(s) for s in a.get('sides', []))} "
           f"--config '{json.dumps(run.config)}'")
    data = sheet_data or (Path(metrics["data"]) if metrics and metrics.get("data") else None)
    sheets = data is not None and Path(data).is_dir()
    # the sheets show what the app shows: the style by its name, so its brushwork pass runs too (when the export
    # writes to the store's own folder and NAME-texture is registered there)
    from ..store import entries_for_task
    from ..tasks.stylize import BRUSHWORK_SUFFIX, DEFAULT_STRENGTH
    by_name = weights_dir.resolve() == weights_folder(None).resolve()
    brush = by_name and name + BRUSHWORK_SUFFIX in {e.name for e in entries_for_task("stylize-texture")}
    what = ("the app's result at the default strength {:.0%} (the network, then the brushwork pass of "
            f"`{name}{BRUSHWORK_SUFFIX}`)" if brush else
            "the network's output at the default strength {:.0%} (no brushwork pass)").format(DEFAULT_STRENGTH)
    sheet_md = (f"![photo | stylized]({name}-sheet.png)\n\nThe first eight photos of `{Path(data).name}` (never "
                f"trained on): photo | {what}, made at export.\n\n![detail: photo | stylized]({name}-detail.png)"
                "\n\nA detail at full resolution (photo | stylized), where the brush marks show."
                if sheets else "No sheet: export with --sheet-data PHOTOS.")
    if not watched:                                   # the last snapshot's watch is in the run's log
        rows = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
                if '"val_psnr_to_teacher"' in x] if (Path(run_dir) / "metrics.jsonl").exists() else []
        watched = next((r for r in reversed(rows) if r["step"] == step), {})
    watched_md = (f" (on the 8 held-out CBSD432 photos its output is {watched['val_psnr_to_teacher']:.1f} dB PSNR "
                  "from the teacher's: the same painting, not the same brush marks)" if watched else "")
    sha = publish(Release(
        name=name, task="stylize", arch="stylize_net", model=model,
        title=f"{name}: photo → Titian-style painting on a CPU (distilled from {teacher})",
        licence="other", registry_licence=REGISTRY_LICENCE, data=DATA_LINE, datasets=DATASETS,
        tags=["image-to-image", "style-transfer", "distillation", "imgen"],
        metadata={"step": step, "teacher": teacher},
        summary=(f"A {n_params / 1e6:.2f} M-parameter fully convolutional generator (config `{json.dumps(run.config)}`"
                 f"), distilled from the FastCUT generator `{teacher}`{watched_md}. It keeps the teacher's "
                 f"painting at less CPU time: {changes}. In the app it runs on the whole photo at a capped "
                 "size (default long side 768 px), its change is brought to full resolution, and the brushwork "
                 "pass (`stylize-titian-texture`) follows."),
        sections={
            "Training data and licence": LICENCE_NOTE,
            "Training": (f"- command: `{cmd}`\n- steps: {step}"
                         + (f" of {run.ckpt['step']} (the snapshot closest to the teacher on the held-out photos)"
                            if step != run.ckpt["step"] else "")
                         + f"; L1 + {a.get('w_grad')} x L1 of image differences "
                         f"to the teacher's output on {a.get('crop')} px crops ({a.get('margin')} px border left "
                         f"out), the teacher run on each whole photo at long sides {a.get('sides')}, "
                         f"{a.get('jitter', 0):.0%} of them colour-changed first\n"
                         f"- Adam lr {a.get('lr')}, warm-up {a.get('warmup')}, cosine decay; EMA {a.get('ema')} "
                         f"(shipped)\n- compute: {run.ckpt.get('seconds', 0) / 3600:.2f} wall-clock hours, "
                         f"{a.get('hardware', 'a 2-core CPU (no GPU)')}"
                         + (f"\n- history: {history}" if history else "")
                         + (f"\n\n### The teacher, `{teacher}`\n\n{t_training}" if t_training else "")),
            "Metrics": metrics_table(metrics or {}),
            "Before / after": sheet_md,
        }), weights_dir)
    if sheets:                          # after publishing, so the style is registered under its name
        from ..evaluation.stylize import detail_crop, results_sheet
        style = name if by_name else model
        results_sheet(style, data, weights_dir / f"{name}-sheet.png", strength=DEFAULT_STRENGTH)
        detail_crop(style, data, weights_dir / f"{name}-detail.png", strength=DEFAULT_STRENGTH)
    return sha


def export_cli(argv=None) -> str:
    from .release import export_parser
    ap = export_parser("stylize-distill", "runs/stylize-distill", "stylize-titian")
    ap.add_argument("--snapshot", choices=["best", "last"], default="best")
    ap.add_argument("--metrics", type=Path, default=None, help="an `eval stylize` JSON report")
    ap.add_argument("--sheet-data", type=Path, default=None, help="photos for the sheet (default: the report's)")
    ap.add_argument("--history", default=None, help="for the card: how the run went (tries, choices)")
    a = ap.parse_args(argv)
    metrics = json.loads(a.metrics.read_text()) if a.metrics else None
    sha = export(a.run, a.weights, a.name, metrics, a.sheet_data, a.snapshot, a.history)
    print(sha)
    return sha


if __name__ == "__main__":
    train_or_export(main, export_cli)
