"""Fit a style's brushwork model (:class:`imgen.models.patch_texture.PatchTexture`) to its paintings and ship it.

    python -m imgen train stylize-texture                       # Titian, long side 512, -> stylize-titian-texture
    python -m imgen train stylize-texture --held-out            # fit on the even-numbered paintings only (a check)

No gradient training: the paintings' Laplacian-pyramid patches are summarised once (per-channel mean and
spread, principal axes, quantiles along fixed random rotations); about 20 s on 2 CPU cores. The paintings are
read at the long side the app's painting model sees a photo at (the evaluation's 512 px; the app's default
processing size is 768), so the brushstrokes keep their size relative to the picture. The result is written
as ``weights/NAME.safetensors`` with a card and a registry entry (task "stylize-texture"); the style
``NAME`` minus ``-texture`` picks it up (:func:`imgen.tasks.stylize.get_brushwork`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..datasets.folders import DATA, list_images
from ..device import configure_threads
from ..image_io import at_long_side
from ..image_io import load_image
from ..models.patch_texture import PatchTexture, PatchTextureConfig
from .loop import hardware_name
from .release import Release, publish


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="the data root (or a pack) with paintings/titian")
    p.add_argument("--paintings", default="paintings/titian", help="the paintings' folder under --data")
    p.add_argument("--name", default="stylize-titian-texture")
    p.add_argument("--side", type=int, default=512, help="long side the paintings are read at")
    p.add_argument("--per-image", type=int, default=128, help="patches per painting and pyramid level")
    p.add_argument("--config", default="{}", help="PatchTextureConfig overrides as JSON")
    p.add_argument("--held-out", action="store_true", help="fit on the even-numbered paintings only")
    p.add_argument("--limit", type=int, default=None, help="the first N paintings only (tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None, help="where to write (default: the store's weights/)")
    p.add_argument("--metrics", default=None, help="an 'eval stylize --json' report for the card")
    return p.parse_args(argv)


def fit(paths: list[Path], config: PatchTextureConfig, side: int, per_image: int, seed: int) -> PatchTexture:
    def images():
        for p in paths:
            rgb = at_long_side(np.asarray(load_image(p, mode="RGB")), side)
            yield torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255
    return PatchTexture(config).fit(images(), per_image=per_image, seed=seed).eval()


def metrics_section(path: str | None) -> str:
    if not path:
        return "Not measured in this export: run `python -m imgen eval stylize` and export again with `--metrics`."
    from ..evaluation.stylize import format_table
    report = json.loads(Path(path).read_text())
    return (f"Command: `{report.get('command', 'python -m imgen eval stylize')}`\n\n```\n{format_table(report)}\n```")


def main(argv=None) -> int:
    args = parse(argv)
    configure_threads()
    paths = list_images([args.data / args.paintings])
    if args.held_out:
        paths = paths[0::2]
    paths = paths[: args.limit or None]
    if not paths:
        raise SystemExit(f"no paintings in {args.data / args.paintings}")
    config = PatchTextureConfig.from_dict(json.loads(args.config))
    started = time.perf_counter()
    model = fit(paths, config, args.side, args.per_image, args.seed)
    seconds = time.perf_counter() - started
    style = args.name.removesuffix("-texture")
    command = "python -m imgen train stylize-texture" + (f" {' '.join(argv)}" if argv else "")
    release = Release(
        name=args.name, task="stylize-texture", arch="patch_texture", model=model,
        title=f"{args.name}: the brushwork of the {style} style (patch texture of {len(paths)} paintings)",
        summary=(f"The distribution of small patches of {len(paths)} paintings, level by level of a 4-level Laplacian "
                 f"pyramid, and a pass that moves a picture's patches onto it (sliced optimal transport within the "
                 f"paintings' {config.dims} principal patch axes, {config.rounds} fixed rotations, {config.passes} "
                 f"passes). The `{style}` style runs it after its network, so the result takes the paintings' "
                 "brushwork and broad tones while its outlines stay put. Config: `" + json.dumps(config.to_dict()) + "`."),
        licence="other", registry_licence="public domain paintings (see card)",
        data=f"{args.paintings} ({len(paths)} paintings)", datasets=["Titian paintings (public domain)"],
        tags=["style-transfer", "texture", "imgen"],
        sections={
            "Data and licence": (f"{len(paths)} paintings from `{args.paintings}` (public domain), read at a long "
                                 f"side of {args.side} px, {args.per_image} random 7x7 patches per painting and "
                                 "level. No photo is used."),
            "Fitting": (f"- command: `{command}`\n- no gradient steps: statistics of the patches (per-channel "
                        f"mean and spread, principal axes, {config.quantiles} quantiles per rotated axis)\n"
                        f"- compute: {seconds:.0f} s on {hardware_name(torch.device('cpu'))}"),
            "Metrics": metrics_section(args.metrics),
        },
        metadata={"paintings": str(len(paths)), "side": str(args.side)})
    sha = publish(release, args.weights)
    print(f"{args.name}: {len(paths)} paintings in {seconds:.1f} s, sha256 {sha[:12]}")
    return 0


def export_cli(argv=None) -> int:
    """Fitting writes its weights directly; ``export`` fits again (deterministic, seconds), e.g. with --metrics."""
    return main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
