"""Command line: ``python -m imgen <command> ...``. Run ``python -m imgen --help`` for the list."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .image_io import ImageInputError
from .training.data import IMAGE_SUFFIXES


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given, folders expanded to the images directly inside them (sorted)."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


# ------------------------------------------------------------------------------------------- models
def cmd_models(args) -> int:
    from .store import default_store
    rows = default_store().describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models registered")
    for r in rows:
        print(f"{r['name']:<22} {r['task']:<9} {r['arch']:<16} {r['source']:<28} {r['licence']}")
        print(f"{'':<22} file: {r['path'] or r['file']}   data: {r['data']}")
    return 0


def cmd_download(args) -> int:
    from .store import StoreError, default_store
    store = default_store()
    names = args.names or [e.name for e in store.entries()]
    failed = 0
    for name in names:
        try:
            path = store.fetch(name, progress=True)
            print(f"{name}: {path}")
        except StoreError as e:
            print(f"{name}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------ denoise
def cmd_denoise(args) -> int:
    from tqdm import tqdm
    from .tasks.denoise import denoise_image
    paths = expand_inputs(args.inputs)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    sigma = "auto" if args.sigma == "auto" else float(args.sigma)
    failed = 0
    bar = tqdm(paths, unit="img", disable=args.quiet)
    for p in bar:
        bar.set_postfix_str(p.name)
        try:
            res = denoise_image(p, sigma=sigma, model=args.model, gray=args.gray, device=args.device)
        except (ImageInputError, ValueError) as e:
            tqdm.write(f"{p}: {e}", file=sys.stderr)
            failed += 1
            continue
        dest = out_dir / (p.stem + ".png")
        res.image.save(dest)
        est = f", estimated σ={res.sigma_estimated:.1f}" if res.sigma_estimated is not None else ""
        tqdm.write(f"{p} -> {dest}  (σ={res.sigma:.1f}{est}, {res.seconds:.2f} s)")
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------ inpaint
def _mask_for(image: Path, masks: Path) -> Path | None:
    """A folder of masks: the file with the image's stem (any image suffix); a file: that file."""
    if not masks.is_dir():
        return masks
    for q in sorted(masks.iterdir()):
        if q.stem == image.stem and q.suffix.lower() in IMAGE_SUFFIXES:
            return q
    return None


def _save_result(img, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() in (".jpg", ".jpeg") and img.mode in ("RGBA", "LA"):
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    img.save(dest)


def cmd_inpaint(args) -> int:
    from tqdm import tqdm
    from .store import StoreError
    from .tasks.inpaint import get_inpainter, inpaint_image
    if args.masks is None:  # single form: IMAGE MASK -o OUT
        if len(args.inputs) != 2:
            raise SystemExit("inpaint: give IMAGE MASK -o OUT, or images/folders with --masks MASK_OR_DIR -o OUT_DIR")
        jobs = [(Path(args.inputs[0]), Path(args.inputs[1]))]
        out = Path(args.output)
        dests = [out / (jobs[0][0].stem + ".png") if out.is_dir() or not out.suffix else out]
    else:
        masks = Path(args.masks)
        if not masks.exists():
            raise SystemExit(f"inpaint: --masks {masks} does not exist")
        images = expand_inputs(args.inputs)
        jobs = [(p, _mask_for(p, masks)) for p in images]
        out_dir = Path(args.output)
        out_dir.mkdir(parents=True, exist_ok=True)
        dests = [out_dir / (p.stem + ".png") for p in images]
    try:
        inpainter = get_inpainter(args.model, args.device)
    except StoreError as e:
        print(f"inpaint: {e}", file=sys.stderr)
        return 2
    failed = 0
    bar = tqdm(list(zip(jobs, dests)), unit="img", disable=args.quiet or len(jobs) == 1)
    for (img_path, mask_path), dest in bar:
        bar.set_postfix_str(img_path.name)
        if mask_path is None:
            tqdm.write(f"{img_path}: no mask with the stem '{img_path.stem}' in {args.masks}", file=sys.stderr)
            failed += 1
            continue
        try:
            res = inpaint_image(img_path, mask_path, model=inpainter, mode=args.mode, max_side=args.max_side,
                                grow=args.grow, feather=args.feather, invert=args.invert)
        except (ImageInputError, ValueError) as e:
            tqdm.write(f"{img_path}: {e}", file=sys.stderr)
            failed += 1
            continue
        _save_result(res.image, dest)
        notes = "".join(f"\n  note: {n}" for n in res.notes)
        tqdm.write(f"{img_path} -> {dest}  ({res.backend}, {res.regions} region(s), {res.seconds:.2f} s){notes}")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    if args.task == "denoise":
        from .evaluation.denoise import evaluate_denoise, format_table
        report = evaluate_denoise(args.data, args.sigma, gray=args.gray, limit=args.limit,
                                  model=args.model or "denoise-unet", device=args.device)
    elif args.task == "inpaint":
        from .evaluation.inpaint import evaluate_inpaint, format_table
        from .store import StoreError
        try:
            report = evaluate_inpaint(args.data, model=args.model or "inpaint-net", limit=args.limit,
                                      mode=args.mode, max_side=args.max_side, device=args.device)
        except StoreError as e:
            raise SystemExit(f"eval inpaint: {e}") from None
    else:
        raise SystemExit(f"unknown task {args.task}")
    print(format_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def cmd_bench(args) -> int:
    from .evaluation import inpaint, speed
    if args.what == "denoise":
        if not args.data:
            raise SystemExit("bench denoise needs --data DIR (images to time on)")
        report = speed.denoise_vs_ffdnet(args.data, limit=args.limit or 8, repeats=args.repeats)
    elif args.what == "denoise-large":
        report = speed.denoise_large(args.width, args.height, source=args.source)
    elif args.what == "inpaint":
        report = inpaint.speed_vs_ffdnet(args.size, repeats=args.repeats)
    else:
        report = inpaint.large_image_timing(args.width, args.height, model=args.model, mode=args.mode,
                                            max_side=args.max_side, repeats=args.repeats)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


# --------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m imgen",
        description="imgen: generative image models from the command line (denoise, inpaint, explore, stylize).",
        epilog="Run 'python -m imgen COMMAND --help' for a command's options.")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: IMGEN_DEVICE or the best available)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("models", help="list the registered checkpoints and where each file was found")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("download", help="pre-fetch checkpoints from the Hugging Face Hub (for Spaces/containers)")
    s.add_argument("names", nargs="*", help="model names (default: all)")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("denoise", help="remove Gaussian noise from photos")
    s.add_argument("inputs", nargs="+", help="image files and/or folders")
    s.add_argument("-o", "--output", required=True, help="output folder (PNG files, same names)")
    s.add_argument("--sigma", default="auto", help="noise level 0..75 on the 0..255 scale, or 'auto' (default)")
    s.add_argument("--gray", action="store_true", help="convert to grayscale first")
    s.add_argument("--model", default="denoise-unet", help="denoise-unet (default) or nlm (OpenCV non-local means)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_denoise)

    s = sub.add_parser("inpaint", help="fill masked areas of photos (white in the mask = fill)",
                       description="Single: IMAGE MASK -o OUT.png. Batch: images and/or folders --masks MASK_OR_DIR "
                                   "-o OUT_DIR (one mask for every image, or a folder of masks with the images' stems).")
    s.add_argument("inputs", nargs="+", help="IMAGE MASK, or (with --masks) image files and/or folders")
    s.add_argument("--masks", default=None, help="batch: a mask file for all images, or a folder of per-image masks")
    s.add_argument("-o", "--output", required=True, help="output file (single) or folder (batch; PNG, same names)")
    s.add_argument("--model", default="inpaint-net", help="inpaint-net (default), telea or ns (OpenCV, classical)")
    s.add_argument("--grow", type=int, default=0, help="grow (>0) or shrink (<0) the mask by N px")
    s.add_argument("--feather", type=float, default=0, help="blend the fill into its surroundings over N px")
    s.add_argument("--invert", action="store_true", help="fill what is black in the mask instead")
    s.add_argument("--mode", choices=["crop", "resize"], default="crop",
                   help="crop (default): only around the masked areas, at full resolution where possible; "
                        "resize: the whole image at most --max-side px")
    s.add_argument("--max-side", type=int, default=512, help="largest side the model runs at (default 512)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_inpaint)

    s = sub.add_parser("eval", help="benchmark a model on an evaluation set (prints a table, writes JSON)")
    s.add_argument("task", choices=["denoise", "inpaint"])
    s.add_argument("--data", required=True, help="folder of evaluation images")
    s.add_argument("--sigma", type=float, nargs="+", default=[15, 25, 50], help="denoise: noise levels")
    s.add_argument("--gray", action="store_true", help="denoise: evaluate on the gray channel")
    s.add_argument("--limit", type=int, default=None, help="use only the first N images")
    s.add_argument("--model", default=None, help="model name, or a classical baseline (nlm, bm3d; inpaint: telea, ns)")
    s.add_argument("--mode", choices=["crop", "resize"], default="resize",
                   help="inpaint: how the model is run (default resize: the whole image, at most --max-side px)")
    s.add_argument("--max-side", type=int, default=512, help="inpaint: processing size (default 512)")
    s.add_argument("--json", default=None, help="write the report here")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("bench", help="speed benchmarks on this machine (each model vs FFDNet; a 12 MP photo)")
    s.add_argument("what", choices=["denoise", "denoise-large", "inpaint", "inpaint-large"])
    s.add_argument("--data", default=None, help="denoise: folder of images to time on")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--size", type=int, default=512, help="inpaint: image side")
    s.add_argument("--width", type=int, default=4000)
    s.add_argument("--height", type=int, default=3000)
    s.add_argument("--source", default=None, help="denoise-large: photo to upscale (default: a synthetic pattern)")
    s.add_argument("--model", default=None, help="inpaint-large: model name (default: the untrained default-config network)")
    s.add_argument("--mode", choices=["crop", "resize"], default="crop", help="inpaint-large")
    s.add_argument("--max-side", type=int, default=512, help="inpaint-large")
    s.add_argument("--json", default=None)
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .device import configure_threads
    configure_threads()
    if args.command == "eval":
        args.sigma = [int(s) if float(s).is_integer() else s for s in args.sigma]
    return args.func(args) or 0
