"""``python -m benchmarks.request_cost``: small hostile files must finish or be refused quickly (issue #19).

Each case is a file of at most a few hundred KB that, taken at face value, cost minutes of CPU or GBs of
memory. It goes through the surface an attacker would use (the denoiser, the stylizer, the inpaint editor's
preprocessing, or only the decoder for the allowed worst case) and is timed. The bar: the worst case
finishes or is refused within ``BAR_S`` seconds.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

from imgen.evaluation import hostile

BAR_S = 5.0


def _denoise(path: Path) -> str:
    from imgen.tasks.denoise import denoise_image
    res = denoise_image(path, sigma=10)
    return f"denoised {res.image.size[0]}x{res.image.size[1]}"


def _stylize(path: Path) -> str:
    from imgen.tasks.stylize import stylize_image
    res = stylize_image(path)
    return f"stylized {res.image.size[0]}x{res.image.size[1]}"


def _decode(path: Path) -> str:
    from imgen.image_io import open_image
    img = open_image(path)
    return f"decoded {img.size[0]}x{img.size[1]}"


def _editor(layers: int) -> Callable[[Path], str]:
    def run(path: Path) -> str:
        from gradio.components.image_editor import EditorData
        from gradio.data_classes import FileData

        from imgen.ui.common import MaskEditor
        editor = MaskEditor(type="numpy", image_mode="RGBA", render=False)
        f = FileData(path=str(path))
        value = editor.preprocess(EditorData(background=f, layers=[f] * layers, composite=None))
        return f"editor value with {len(value['layers'])} layers"
    return run


# name -> (the file's bytes, its suffix, what runs it)
CASES: dict[str, tuple[Callable[[], bytes], str, Callable[[Path], str]]] = {
    "1x3,000,000 PNG -> denoise": (lambda: hostile.thin_png(3_000_000), ".png", _denoise),
    "1x30,000,000 PNG -> denoise": (lambda: hostile.thin_png(30_000_000), ".png", _denoise),
    "6000x6000 JPEG with 64x64 of data -> denoise": (lambda: hostile.grey_jpeg(6000, 6000), ".jpg", _denoise),
    "progressive JPEG, 3000 scans -> stylize": (lambda: hostile.many_scans_jpeg(3000, 2048), ".jpg", _stylize),
    "progressive JPEG 6000x6000, 22 scans (the most allowed) -> decode":
        (lambda: hostile.many_scans_jpeg(22, 6000), ".jpg", _decode),
    "16x16 ICO holding a 13000x13000 PNG -> denoise": (lambda: hostile.ico_with_big_png(13000), ".ico", _denoise),
    "editor: 16 layers of 6000x6000 -> preprocess": (lambda: hostile.flat_png(6000, 6000, "RGBA"), ".png", _editor(16)),
    "editor: 3 layers of 6000x6000 -> preprocess": (lambda: hostile.flat_png(6000, 6000, "RGBA"), ".png", _editor(3)),
    "PSD 40x32 -> denoise": (lambda: hostile.psd(), ".psd", _denoise),
}


def _warm() -> None:
    """What a running app has loaded already (not part of a request's cost): Gradio, the default models."""
    from imgen.tasks.denoise import get_denoiser
    from imgen.tasks.stylize import default_style, get_stylizer
    from imgen.ui.common import MaskEditor
    MaskEditor(render=False)
    get_denoiser()
    if default_style() != "reference":
        get_stylizer(default_style())


def run_cost_bench(names: list[str] | None = None) -> dict:
    """Build each case's file, run it, time it (models loaded beforehand). Returns a report with every case and
    the worst time."""
    from imgen.image_io import ImageInputError
    _warm()
    rows = []
    with tempfile.TemporaryDirectory(prefix="imgen-cost-") as tmp:
        for name, (build, suffix, run) in CASES.items():
            if names and name not in names:
                continue
            data = build()
            path = Path(tmp) / f"case{len(rows)}{suffix}"
            path.write_bytes(data)
            t0 = time.perf_counter()
            try:
                outcome = run(path)
            except ImageInputError as e:
                outcome = f"refused: {e}"
            except Exception as e:  # noqa: BLE001 - gr.Error from the editor, or a failure worth reporting
                outcome = f"refused ({type(e).__name__}): {getattr(e, 'message', e)}"
            seconds = time.perf_counter() - t0
            rows.append({"case": name, "bytes": len(data), "seconds": round(seconds, 3), "outcome": outcome})
            path.unlink()
    worst = max(rows, key=lambda r: r["seconds"]) if rows else None
    return {"bar_s": BAR_S, "cases": rows, "worst": worst,
            "passed": worst is None or worst["seconds"] <= BAR_S}


def main() -> int:
    import json
    import sys
    report = run_cost_bench(sys.argv[1:] or None)
    for r in report["cases"]:
        print(f"{r['seconds']:7.2f} s  {r['bytes']:>9} B  {r['case']}: {r['outcome'][:110]}", file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
