"""Command line: ``python -m imgen <command> ...``. Run ``python -m imgen --help`` for the list."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .image_io import ImageInputError
from .datasets.folders import IMAGE_SUFFIXES


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


def save_result(img, dest: Path) -> None:
    """Save a result image, creating its folder; JPEG has no alpha, so RGBA/LA results lose it there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() in (".jpg", ".jpeg") and img.mode in ("RGBA", "LA"):
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    img.save(dest)


def writable_suffix(path: Path, command: str) -> Path:
    """``path`` if Pillow can write its file type, else a one-line SystemExit (before any work is done)."""
    from PIL import Image
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise SystemExit(f"{command}: cannot write {path.name!r}: {path.suffix or 'no'} file extension is not an "
                         "image type this program writes (use .png, .jpg, .webp or .tif)")
    return path


def check_outputs(command: str, jobs: list[tuple[Path, Path]], inputs: list[Path], overwrite: bool) -> None:
    """Refuse (one line, before any work) a run whose result would replace one of its inputs (images, masks, the
    reference) or whose results would land on the same file twice, unless ``--overwrite`` was given."""
    if overwrite:
        return
    def key(p: Path) -> Path:
        return Path(p).expanduser().resolve()
    ins = {key(p): p for p in inputs if p is not None and Path(p).is_file()}
    seen: dict[Path, Path] = {}
    for src, dest in jobs:
        k = key(dest)
        if k in ins:
            raise SystemExit(f"{command}: the result for {src} would overwrite the input {ins[k]}; choose another "
                             "output (-o) or pass --overwrite")
        if k in seen:
            raise SystemExit(f"{command}: the results for {seen[k]} and {src} would both be written to {dest}; "
                             "process them into different folders or pass --overwrite")
        seen[k] = src


def with_notes(summary: str, notes) -> str:
    return summary + "".join(f"\n  note: {n}" for n in notes)


def process_each(jobs: list[tuple[Path, Path]], run, describe, quiet: bool) -> int:
    """The per-image loop of denoise / inpaint / stylize: for each (source, destination), ``run(source)`` gives a
    result with an ``.image``, saved to the destination, and one line ``source -> destination  describe(result)``.
    An unreadable image or a bad value is reported on stderr and skipped. Returns the exit status (1 if any failed)."""
    from tqdm import tqdm
    failed = 0
    bar = tqdm(jobs, unit="img", disable=quiet)
    for src, dest in bar:
        bar.set_postfix_str(src.name)
        try:
            res = run(src)
        except (ImageInputError, ValueError) as e:
            tqdm.write(f"{src}: {e}", file=sys.stderr)
            failed += 1
            continue
        save_result(res.image, dest)
        tqdm.write(f"{src} -> {dest}  {describe(res)}")
    return 1 if failed else 0


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
    from .store import StoreError
    from .tasks.denoise import denoise_image, get_denoiser
    try:
        sigma = "auto" if args.sigma.strip().lower() == "auto" else float(args.sigma)
    except ValueError:
        raise SystemExit(f"denoise: --sigma must be 'auto' or a number from 0 to 75, not {args.sigma!r}") from None
    paths = expand_inputs(args.inputs)
    out_dir = Path(args.output)
    jobs = [(p, out_dir / (p.stem + ".png")) for p in paths]
    check_outputs("denoise", jobs, paths, args.overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        get_denoiser(args.model, args.device)
    except StoreError as e:
        print(f"denoise: {e}", file=sys.stderr)
        return 2

    def describe(res) -> str:
        est = f", estimated σ={res.sigma_estimated:.1f}" if res.sigma_estimated is not None else ""
        return with_notes(f"(σ={res.sigma:.1f}{est}, {res.seconds:.2f} s)",
                          [n for n in res.notes if not n.startswith("Estimated")])

    return process_each(jobs, lambda p: denoise_image(p, sigma=sigma, model=args.model, gray=args.gray,
                                                      device=args.device),
                        describe, args.quiet)


# ------------------------------------------------------------------------------------------ inpaint
def _mask_for(image: Path, masks: Path) -> Path | None:
    """A folder of masks: the file with the image's stem (any image suffix); a file: that file."""
    if not masks.is_dir():
        return masks
    for q in sorted(masks.iterdir()):
        if q.stem == image.stem and q.suffix.lower() in IMAGE_SUFFIXES:
            return q
    return None


def cmd_inpaint(args) -> int:
    from .store import StoreError
    from .tasks.inpaint import get_inpainter, inpaint_image
    if args.masks is None:  # single form: IMAGE MASK -o OUT
        if len(args.inputs) != 2:
            raise SystemExit("inpaint: give IMAGE MASK -o OUT, or images/folders with --masks MASK_OR_DIR -o OUT_DIR")
        jobs = [(Path(args.inputs[0]), Path(args.inputs[1]))]
        out = Path(args.output)
        dests = [out / (jobs[0][0].stem + ".png") if out.is_dir() or not out.suffix else writable_suffix(out, "inpaint")]
    else:
        masks = Path(args.masks)
        if not masks.exists():
            raise SystemExit(f"inpaint: --masks {masks} does not exist")
        images = expand_inputs(args.inputs)
        jobs = [(p, _mask_for(p, masks)) for p in images]
        out_dir = Path(args.output)
        dests = [out_dir / (p.stem + ".png") for p in images]
    check_outputs("inpaint", [(img, dest) for (img, _), dest in zip(jobs, dests)],
                  [p for job in jobs for p in job], args.overwrite)
    if args.masks is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    try:
        inpainter = get_inpainter(args.model, args.device)
    except StoreError as e:
        print(f"inpaint: {e}", file=sys.stderr)
        return 2
    mask_of = dict(jobs)

    def run(img_path: Path):
        if mask_of[img_path] is None:
            raise ValueError(f"no mask with the stem '{img_path.stem}' in {args.masks}")
        return inpaint_image(img_path, mask_of[img_path], model=inpainter, mode=args.mode, max_side=args.max_side,
                             grow=args.grow, feather=args.feather, invert=args.invert)

    return process_each([(img, dest) for (img, _), dest in zip(jobs, dests)], run,
                        lambda r: with_notes(f"({r.backend}, {r.regions} region(s), {r.seconds:.2f} s)", r.notes),
                        args.quiet or len(jobs) == 1)


# ------------------------------------------------------------------------------------------ stylize
def cmd_stylize(args) -> int:
    from .image_io import open_image
    from .store import StoreError
    from .tasks.stylize import REFERENCE, default_style, get_stylizer, stylize_image
    if not 0 <= args.strength <= 1:
        raise SystemExit(f"stylize: --strength must be between 0 and 1, not {args.strength:g}")
    if args.max_side < 16:
        raise SystemExit(f"stylize: --max-side must be at least 16, not {args.max_side}")
    style = args.style or (REFERENCE if args.reference else default_style())
    reference = None
    if style == REFERENCE:
        if not args.reference:
            raise SystemExit("stylize: --style reference needs --reference IMAGE "
                             "(or name a trained style; see 'python -m imgen models')")
        try:
            reference = open_image(args.reference)
        except ImageInputError as e:
            raise SystemExit(f"stylize: --reference: {e}") from None
    else:
        try:
            get_stylizer(style, args.device)
        except StoreError as e:
            print(f"stylize: {e}", file=sys.stderr)
            return 2
    paths = expand_inputs(args.inputs)
    if not paths:
        raise SystemExit("stylize: no images found in the given inputs")
    out_dir = Path(args.output)
    jobs = [(p, out_dir / (p.stem + ".png")) for p in paths]
    check_outputs("stylize", jobs, paths + ([Path(args.reference)] if args.reference else []), args.overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    return process_each(jobs, lambda p: stylize_image(p, style, reference=reference, strength=args.strength,
                                                      max_side=args.max_side, method=args.method, device=args.device,
                                                      brushwork=args.brushwork),
                        lambda r: with_notes(f"({r.style}, {r.backend}, {r.seconds:.2f} s)", r.notes),
                        args.quiet or len(paths) == 1)


# --------------------------------------------------------------------------------------------- eval
def command_line(args) -> str:
    """The command that ran, as the user typed it (``main``'s argv, global options included), for reports."""
    import shlex
    return "python -m imgen " + " ".join(shlex.quote(a) for a in args.argv)


def _write_json(path: str | None, report: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2))


def cmd_eval(args) -> int:
    if args.task == "denoise":
        from .evaluation.denoise import evaluate_denoise, format_table
        from .store import StoreError
        try:
            report = evaluate_denoise(args.data, args.sigma, gray=args.gray, limit=args.limit,
                                      model=args.model or "denoise-unet", device=args.device)
        except (StoreError, ValueError) as e:
            raise SystemExit(f"eval denoise: {e}") from None
    elif args.task == "inpaint":
        from .evaluation.inpaint import evaluate_inpaint, format_table
        from .store import StoreError
        from .tasks.inpaint import DEFAULT_MODEL
        try:
            report = evaluate_inpaint(args.data, model=args.model or DEFAULT_MODEL, limit=args.limit,
                                      mode=args.mode, max_side=args.max_side, device=args.device,
                                      masks=args.masks)
        except StoreError as e:
            raise SystemExit(f"eval inpaint: {e}") from None
    elif args.task == "inpaint-tint":
        from .evaluation.tint import evaluate_tint, format_table
        from .store import StoreError
        from .tasks.inpaint import DEFAULT_MODEL
        try:
            report = evaluate_tint(args.model or DEFAULT_MODEL, n=args.n, device=args.device)
        except StoreError as e:
            raise SystemExit(f"eval inpaint-tint: {e}") from None
    elif args.task == "gan":
        return eval_gan(args)
    elif args.task == "projection":
        from .evaluation.projection import evaluate_projection, format_table
        from .store import StoreError
        try:
            report = evaluate_projection(args.model or "kaokore-gan", n=args.n or 32, steps=args.steps)
        except StoreError as e:
            raise SystemExit(f"eval projection: {e}") from None
        report["command"] = command_line(args)
    elif args.task == "stylize":
        return eval_stylize(args)
    else:
        raise SystemExit(f"unknown task {args.task}")
    print(format_table(report))
    _write_json(args.json, report)
    return 0


def eval_stylize(args) -> int:
    from .evaluation.stylize import PAINTINGS, evaluate_stylize, format_table
    from .store import StoreError
    from .tasks.stylize import DEFAULT_STRENGTH, trained_styles
    model = args.model or next(iter(trained_styles()), None)
    try:
        report = evaluate_stylize(args.data, model=model, paintings=args.paintings or PAINTINGS,
                                  strength=DEFAULT_STRENGTH if args.strength is None else args.strength,
                                  max_side=args.max_side, limit=args.limit, device=args.device)
    except StoreError as e:
        raise SystemExit(f"eval stylize: {e}") from None
    report["command"] = command_line(args)
    print(format_table(report))
    _write_json(args.json, report)
    return 0


def eval_gan(args) -> int:
    from .evaluation import gan
    if args.train_classifier:
        from .store import default_store
        out = default_store().weights_dir / f"{gan.CLASSIFIER}.safetensors"   # honours IMGEN_WEIGHTS_DIR
        info = gan.train_classifier(out, epochs=args.epochs)
        from .store import update_entry
        from .store import sha256_file
        from safetensors import safe_open
        with safe_open(str(out), "pt") as f:
            config = json.loads(f.metadata()["config"])
        update_entry(gan.CLASSIFIER, task="evaluation", arch="label_classifier", file=out.name,
                     sha256=sha256_file(out), config=config, licence="cc-by-sa-4.0",
                     data="KaoKore train split (labels from the file names)")
        print(json.dumps(info, indent=2))
        _write_json(args.json, info)
        return 0
    report = gan.evaluate(args.model or "kaokore-gan", reference=args.reference, n=args.n or 5000, psi=args.psi,
                          sheets_dir=Path(args.sheets) if args.sheets else None, data_set=args.set)
    report["command"] = command_line(args)
    gan.print_table(report)
    _write_json(args.json, report)
    return 0


# --------------------------------------------------------------------------------------------- explore
def _explorer(args):
    from .store import StoreError
    from .tasks.explore import get_explorer
    try:
        return get_explorer(args.model, device=args.device)
    except StoreError as e:
        raise SystemExit(f"{args.command}: {e}") from None


MAX_SCALE = 16        # crisp enlargement of the 64 px images (sample, interpolate)
FPS_RANGE = (0.1, 100.0)  # GIF frame times are whole hundredths of a second


def _check_scale(args) -> None:
    if not 1 <= args.scale <= MAX_SCALE:
        raise SystemExit(f"{args.command}: --scale must be between 1 and {MAX_SCALE}, not {args.scale}")


def _png_output(args) -> Path:
    """The checked ``-o`` of a command that writes a PNG carrying the explorer state (and its ``--scale``)."""
    _check_scale(args)
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise SystemExit(f"{args.command}: the output must be a .png file (it carries the state), not {out.name!r}")
    return out


def cmd_sample(args) -> int:
    from .image_io import max_pixels, megapixels
    from .tasks.explore import ExploreError, ExploreState, save_png, tile, upscale
    out = _png_output(args)
    ex = _explorer(args)
    try:
        base = ExploreState(model=args.model, seed=args.seed, psi=args.psi,
                            directions=[float(v) for v in (args.directions or [])]).validate()
        if not 1 <= args.n <= 1024:
            raise ExploreError(f"--n must be between 1 and 1024 (got {args.n}).")
        states = [ExploreState(model=args.model, seed=base.seed + i,
                               psi=base.psi, directions=base.directions) for i in range(args.n)]
        images = ex.render([ex.w_for(s) for s in states]) if args.n > 1 else ex.image(base)[None]
    except ExploreError as e:
        raise SystemExit(f"sample: {e}") from None
    img = tile(images) if args.n > 1 else images[0]
    pixels = img.shape[0] * img.shape[1] * args.scale ** 2
    if pixels > max_pixels():
        raise SystemExit(f"sample: {args.n} samples at --scale {args.scale} would be {megapixels(pixels)} megapixels; "
                         f"the limit is {megapixels(max_pixels())} (use a smaller --scale or --n)")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(upscale(img, img.shape[1] * args.scale), out, base)
    print(f"{out} ({args.n} sample{'s' if args.n > 1 else ''}, seeds {base.seed}..{states[-1].seed}, psi {base.psi})")
    return 0


def cmd_interpolate(args) -> int:
    from .tasks.explore import ExploreError, frame_strip, save_gif, upscale
    _check_scale(args)
    if not (math.isfinite(args.fps) and FPS_RANGE[0] <= args.fps <= FPS_RANGE[1]):
        raise SystemExit(f"interpolate: --fps must be between {FPS_RANGE[0]:g} and {FPS_RANGE[1]:g}, not {args.fps:g}")
    out = Path(args.output)
    if out.suffix.lower() not in (".gif", ".webp", ".png"):
        raise SystemExit(f"interpolate: the output must be an animated .gif, .webp or .png, not {out.name!r}")
    ex = _explorer(args)
    try:
        frames = ex.interpolate(args.seeds[0], args.seeds[1], args.frames, args.psi)
    except ExploreError as e:
        raise SystemExit(f"interpolate: {e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    save_gif(frames, out, fps=args.fps, size=64 * args.scale)
    strip = out.with_name(out.stem + "-strip.png")
    upscale(frame_strip(frames), frame_strip(frames).shape[1] * 2).save(strip)
    print(f"{out} ({len(frames)} frames) and {strip}")
    return 0


def cmd_project(args) -> int:
    from .image_io import ImageInputError
    from .tasks.explore import ExploreError, save_png, upscale
    out = _png_output(args)
    if out.resolve() == Path(args.picture).resolve():
        raise SystemExit(f"project: {out} is the input picture; choose another output file")
    ex = _explorer(args)
    try:
        state, _, rep = ex.project(args.picture, steps=args.steps, use_encoder=not args.no_encoder)
    except (ExploreError, ImageInputError) as e:
        raise SystemExit(f"project: {e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    img = ex.image(state)
    save_png(upscale(img, img.shape[1] * args.scale), out, state)
    print(f"{out} (from {'the encoder' if rep['start'] == 'encoder' else 'the average latent'}, "
          f"{rep['steps']} steps, {rep['psnr']:.2f} dB)")
    return 0


def cmd_bench(args) -> int:
    from .evaluation import inpaint, speed
    if args.what == "denoise":
        report = speed.denoise_vs_ffdnet(args.data, limit=args.limit or 8, repeats=args.repeats)
    elif args.what == "denoise-large":
        report = speed.denoise_large(args.width, args.height, source=args.source)
    elif args.what == "inpaint":
        report = {"methods": inpaint.method_timing(args.size, repeats=args.repeats),
                  "generator_vs_ffdnet": inpaint.speed_vs_ffdnet(args.size, repeats=args.repeats)}
    elif args.what == "stylize":
        from .evaluation.stylize import bench
        report = bench(args.model, size=args.size, width=args.width, height=args.height,
                       max_side=args.max_side, repeats=max(args.repeats, 5))
    else:
        report = inpaint.large_image_timing(args.width, args.height, model=args.model, mode=args.mode,
                                            max_side=args.max_side, repeats=args.repeats)
    print(json.dumps(report, indent=2))
    _write_json(args.json, report)
    return 0


# --------------------------------------------------------------------------------------------- main
def cmd_train(args) -> int:
    from .training import trainers
    argv = list(args.args)
    if args.device and "--device" not in argv:
        argv = ["--device", args.device, *argv]
    trainers.train(args.task, argv)
    return 0


def cmd_export(args) -> int:
    from .training import trainers
    trainers.export(args.task, list(args.args))
    return 0


def cmd_data(args) -> int:
    from .training.packs import build_pack
    try:
        manifest = build_pack(args.task, args.data, args.output, args.max_mb, args.set)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"data pack: {e}", file=sys.stderr)
        return 1
    print(f"{args.output}: {manifest['pack']} pack, {manifest['bytes'] / 1e6:.1f} MB (limit {args.max_mb:g} MB)")
    for line in manifest["summary"]:
        print("  " + line)
    return 0


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
    s.add_argument("--overwrite", action="store_true", help="allow results to replace input files or each other")
    s.set_defaults(func=cmd_denoise)

    s = sub.add_parser("inpaint", help="fill masked areas of photos (white in the mask = fill)",
                       description="Single: IMAGE MASK -o OUT.png. Batch: images and/or folders --masks MASK_OR_DIR "
                                   "-o OUT_DIR (one mask for every image, or a folder of masks with the images' stems).")
    s.add_argument("inputs", nargs="+", help="IMAGE MASK, or (with --masks) image files and/or folders")
    s.add_argument("--masks", default=None, help="batch: a mask file for all images, or a folder of per-image masks")
    s.add_argument("-o", "--output", required=True, help="output file (single) or folder (batch; PNG, same names)")
    s.add_argument("--model", default="context-fill",
                   help="context-fill (default: removes objects; PatchMatch completion from the surroundings, colour "
                        "from the boundary), pypatchmatch (the library alone), net-patchmatch (a network's layout + "
                        "the photo's texture), inpaint-net (the network alone), or classical: patchmatch, telea, ns")
    s.add_argument("--grow", type=int, default=0, help="grow (>0) or shrink (<0) the mask by N px")
    s.add_argument("--feather", type=float, default=0, help="blend the fill into its surroundings over N px")
    s.add_argument("--invert", action="store_true", help="fill what is black in the mask instead")
    s.add_argument("--mode", choices=["crop", "resize"], default="crop",
                   help="crop (default): only around the masked areas, at full resolution where possible; "
                        "resize: the whole image at most --max-side px")
    s.add_argument("--max-side", type=int, default=512, help="largest side the model runs at (default 512)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--overwrite", action="store_true", help="allow results to replace input files or each other")
    s.set_defaults(func=cmd_inpaint)

    s = sub.add_parser("stylize", help="turn photos into paintings (a trained style) or give them a reference's colours",
                       description="Trained style: --style NAME (see 'python -m imgen models', task stylize). "
                                   "Classical colour and tone transfer: --reference IMAGE (--style reference).")
    s.add_argument("inputs", nargs="+", help="image files and/or folders")
    s.add_argument("-o", "--output", required=True, help="output folder (PNG files, same names)")
    s.add_argument("--style", default=None, help="a trained style's model name, or 'reference' (default: "
                                                  "reference when --reference is given, else the first trained style)")
    s.add_argument("--reference", default=None, help="an image whose style (texture and colours) to take (--style reference)")
    s.add_argument("--method", choices=["texture", "reinhard", "histogram"], default="texture",
                   help="reference transfer: texture (the reference's patch texture and colours, default), "
                        "reinhard (Lab mean/spread) or histogram (matching per channel)")
    s.add_argument("--strength", type=float, default=0.8, help="0..1 blend with the original (default 0.8)")
    s.add_argument("--max-side", type=int, default=768, help="long side the painting model runs at (default 768); "
                                                             "the result always has the input's size")
    s.add_argument("--no-brushwork", dest="brushwork", action="store_false",
                   help="the painting network only, without its paintings' brushwork pass")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--overwrite", action="store_true", help="allow results to replace input files or each other")
    s.set_defaults(func=cmd_stylize)

    s = sub.add_parser("sample", help="draw images from a latent-space generator (PNG with the state in its metadata)")
    s.add_argument("--model", default="kaokore-gan")
    s.add_argument("--seed", type=float, default=0, help="whole number >= 0 (fractional: seed walk)")
    s.add_argument("--n", type=int, default=1, help="number of samples (seeds seed..seed+n-1), tiled in a grid")
    s.add_argument("--psi", type=float, default=0.7, help="truncation 0..1.5 (1 = none)")
    s.add_argument("--directions", type=float, nargs="*", default=None, help="direction slider values (in σ)")
    s.add_argument("--scale", type=int, default=4, help="crisp enlargement factor, 1..16 (default 4)")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("interpolate", help="animated GIF of the slerp between two seeds (and a strip of frames)")
    s.add_argument("--model", default="kaokore-gan")
    s.add_argument("--seeds", type=float, nargs=2, required=True, metavar=("A", "B"))
    s.add_argument("--frames", type=int, default=48)
    s.add_argument("--fps", type=float, default=24, help="frames per second, 0.1..100 (default 24)")
    s.add_argument("--psi", type=float, default=0.7)
    s.add_argument("--scale", type=int, default=4, help="crisp enlargement factor, 1..16 (default 4)")
    s.add_argument("-o", "--output", required=True, help="the GIF; the strip goes next to it as NAME-strip.png")
    s.set_defaults(func=cmd_interpolate)

    s = sub.add_parser("project", help="put your own picture into a generator's latent space (PNG with the state)")
    s.add_argument("picture")
    s.add_argument("--model", default="kaokore-gan")
    s.add_argument("--steps", type=int, default=100,
                   help="optimisation steps after the encoder's guess (0 = the guess alone; default 100)")
    s.add_argument("--no-encoder", action="store_true", help="start from the average latent, not the encoder")
    s.add_argument("--scale", type=int, default=4, help="crisp enlargement factor, 1..16 (default 4)")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=cmd_project)

    from .tasks.inpaint import MAX_SIDE as INPAINT_SIDE
    from .tasks.stylize import DEFAULT_MAX_SIDE as STYLIZE_SIDE
    s = sub.add_parser("eval", help="benchmark a model on an evaluation set (prints a table, writes JSON)",
                       description="One evaluation per task; 'python -m imgen eval TASK --help' lists its options.")
    tasks = s.add_subparsers(dest="task", metavar="TASK", required=True)

    def task_parser(name: str, help_: str, data: str | None = None) -> argparse.ArgumentParser:
        t = tasks.add_parser(name, help=help_)
        if data:
            t.add_argument("--data", required=True, help=data)
            t.add_argument("--limit", type=int, default=None, help="use only the first N images")
        t.add_argument("--json", default=None, help="write the report here")
        t.set_defaults(func=cmd_eval)
        return t

    t = task_parser("denoise", "PSNR/SSIM at given noise levels (the published protocol)",
                    data="folder of clean evaluation images (e.g. ../shared/data/eval/denoise/CBSD68)")
    t.add_argument("--sigma", type=float, nargs="+", default=[15, 25, 50], help="noise levels (0..255 scale)")
    t.add_argument("--gray", action="store_true", help="evaluate on the gray channel")
    t.add_argument("--model", default=None, help="model name (default denoise-unet), or a classical baseline: nlm, bm3d")

    t = task_parser("inpaint", "PSNR/SSIM and texture in the holes of an image + mask set",
                    data="folder with images/ and masks/ (e.g. ../shared/data/eval/inpaint/places2_512_freeform)")
    t.add_argument("--model", default=None, help="context-fill (default), pypatchmatch, net-patchmatch, inpaint-net, "
                                                 "patchmatch, telea, ns; "
                                                 "truth-blur:SIGMA scores the ground truth blurred by SIGMA px in "
                                                 "the hole (a yardstick)")
    t.add_argument("--mode", choices=["crop", "resize"], default="resize",
                   help="how the model is run (default resize: the whole image, at most --max-side px)")
    t.add_argument("--masks", choices=["objects"], default=None,
                   help="replace the folder's masks/ by the object-mask set (one silhouette per photo: people, "
                        "animals, birds, poles and signs, boards and cars; 5-30 %% of the area, a third cut by the "
                        "border; fixed seed); DATA may then be any folder of photos")
    t.add_argument("--max-side", type=int, default=INPAINT_SIDE, help=f"processing size (default {INPAINT_SIDE})")

    t = task_parser("inpaint-tint", "colour shift of fills on smooth skies (synthetic, the truth known): CIE ΔE")
    t.add_argument("--model", default=None, help="an inpainting method (default context-fill)")
    t.add_argument("--n", type=int, default=24, help="how many skies (default 24; fixed seed)")

    t = task_parser("stylize", "distance of the results to the paintings, and structure kept",
                    data="photos never trained on (e.g. ../shared/data/eval/denoise/CBSD68)")
    t.add_argument("--model", default=None, help="a trained style (default: the first one)")
    t.add_argument("--paintings", default=None, help="the style target's paintings (default: Titian)")
    t.add_argument("--strength", type=float, default=None, help="the model's strength (default: the app's, 0.8)")
    t.add_argument("--max-side", type=int, default=STYLIZE_SIDE, help=f"the model's processing size (default {STYLIZE_SIDE})")

    t = task_parser("gan", "FID/KID (KaoKore) and multi-scale SWD of generators against held-out images")
    t.add_argument("--model", default=None, help="the generator (default kaokore-gan)")
    t.add_argument("--reference", nargs="*", default=None, help="more generators to compare (names or .safetensors)")
    t.add_argument("--set", choices=["kaokore", "emoji"], default="kaokore",
                   help="the data set the generators model (FID/KID only for kaokore; SWD for both)")
    t.add_argument("--n", type=int, default=None, help="samples per generator (default 5000)")
    t.add_argument("--psi", type=float, default=1.0, help="truncation of the samples")
    t.add_argument("--sheets", default=None, help="write samples.png and nearest.png here")
    t.add_argument("--train-classifier", action="store_true", help="(re)train the feature classifier")
    t.add_argument("--epochs", type=int, default=8, help="--train-classifier: epochs")

    t = task_parser("projection", "how well pictures are put into a generator's latent space")
    t.add_argument("--model", default=None, help="the generator (default kaokore-gan)")
    t.add_argument("--n", type=int, default=None, help="faces projected step by step (default 32)")
    t.add_argument("--steps", type=int, nargs="+", default=[0, 20, 100], help="optimisation step counts to measure")

    s = sub.add_parser("bench", help="speed benchmarks on this machine (each model vs FFDNet; a 12 MP photo)",
                       epilog="Harnesses of the whole app (start-up, load, Explore through the API) live outside the "
                              "package: python -m benchmarks.app_startup | benchmarks.load_test | benchmarks.explore_speed")
    whats = s.add_subparsers(dest="what", metavar="WHAT", required=True)

    def bench_parser(name: str, help_: str, repeats: int = 3) -> argparse.ArgumentParser:
        b = whats.add_parser(name, help=help_)
        b.add_argument("--repeats", type=int, default=repeats)
        b.add_argument("--json", default=None, help="write the report here")
        b.set_defaults(func=cmd_bench)
        return b

    def photo_size(b: argparse.ArgumentParser) -> None:
        b.add_argument("--width", type=int, default=4000)
        b.add_argument("--height", type=int, default=3000)

    b = bench_parser("denoise", "denoise-unet against FFDNet on the same images, same runtime")
    b.add_argument("--data", required=True, help="folder of images to time on")
    b.add_argument("--limit", type=int, default=None)
    b = bench_parser("denoise-large", "a 12 MP photo: time, tiles, peak RSS")
    photo_size(b)
    b.add_argument("--source", default=None, help="photo to upscale (default: a synthetic pattern)")
    b = bench_parser("inpaint", "every method at one size, and the network against FFDNet's cost")
    b.add_argument("--size", type=int, default=512, help="image side")
    b = bench_parser("inpaint-large", "a 12 MP photo with a stroke: time and peak RSS")
    photo_size(b)
    b.add_argument("--model", default=None, help="model name (default: the untrained default-config network)")
    b.add_argument("--mode", choices=["crop", "resize"], default="crop")
    b.add_argument("--max-side", type=int, default=INPAINT_SIDE)
    b = bench_parser("stylize", "512² and a 12 MP photo: time, peak RSS", repeats=5)
    b.add_argument("--model", default=None)
    b.add_argument("--size", type=int, default=512, help="image side")
    photo_size(b)
    b.add_argument("--max-side", type=int, default=STYLIZE_SIDE)

    from .training.trainers import TRAINERS
    s = sub.add_parser("train", help="train a model: python -m imgen train TASK [--minutes M] [--data PACK] ...",
                       description="Run a trainer; the arguments after TASK are the trainer's own "
                                   "('python -m imgen train TASK --help' lists them).")
    s.add_argument("task", choices=list(TRAINERS))
    s.add_argument("args", nargs=argparse.REMAINDER, help="the trainer's arguments")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("export", help="ship a training run: weights, model card, registry entry",
                       description="Export a run; the arguments after TASK are the export's own (--run DIR ...).")
    s.add_argument("task", choices=list(TRAINERS))
    s.add_argument("args", nargs=argparse.REMAINDER, help="the export's arguments")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("data", help="prepare training data: 'data pack TASK -o PACK' (one folder to carry to a GPU)")
    data_sub = s.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = data_sub.add_parser("pack", help="write the data a trainer reads, at the size it uses, within --max-mb")
    s.add_argument("task", choices=["denoise", "inpaint", "stylize", "gan"])
    s.add_argument("-o", "--output", type=Path, required=True, help="the pack folder (replaced if it is a pack)")
    s.add_argument("--max-mb", type=float, default=60.0, help="size limit in MB (10^6 bytes)")
    s.add_argument("--set", choices=["kaokore", "emoji"], default=None, help="gan: which set (default kaokore)")
    s.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data",
                   help="the shared data folder (default: ../shared/data)")
    s.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    from .device import configure_threads, pick_device
    configure_threads()
    if args.device:
        try:
            pick_device(args.device)
        except RuntimeError as e:
            print(f"{args.command}: --device: {e}", file=sys.stderr)
            return 2
    if args.command == "eval" and args.task == "denoise":
        args.sigma = [int(s) if float(s).is_integer() else s for s in args.sigma]
    try:
        return args.func(args) or 0
    except OSError as e:  # an output folder that cannot be created, a full disk...: one line, no traceback
        print(f"{args.command}: {e}", file=sys.stderr)
        return 1
