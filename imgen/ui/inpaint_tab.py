"""The Inpaint tab: paint over what to remove (or upload a mask), pick a method, get a before/after slider."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from ..store import StoreError, default_store
from ..tasks import inpaint as task
from .editor import make_example_masks, mask_from_editor
from .common import (ImageUpload, MaskEditor, NumberSlider, UserError, chosen, gpu, progress_callback, sample_image,
                     save_png, took, user_errors)

# the menu, in the order measured (README, "Inpaint": object removal and free-form holes, tint on skies)
DEFAULT_LABEL = "Remove an object: fill from its surroundings"
LIBRARY_LABEL = "PatchMatch library (pypatchmatch) alone"
TEXTURE_LABEL = "Network layout + the photo's own texture"
CLASSICAL_LABELS = {"PatchMatch: copy the photo's own patches (classical)": "patchmatch",
                    "OpenCV Telea (classical)": "telea", "OpenCV Navier–Stokes (classical)": "ns"}
METHOD_HINT = ("Keep the default to make something vanish: it rebuilds the area from what surrounds it and keeps "
               "the colours. The others are there to compare; the network ones are softer.")
COPIED_HINT = (f"Rebuilt from the photo's surroundings. If something from nearby was copied into the hole (a "
               f"second face, a repeated post), try “{TEXTURE_LABEL}” in More options: it is softer but never copies.")
PROCESSING = {"Only the masked area at full resolution": "crop", "Whole image resized to ≤ max side": "resize"}


def model_choices() -> dict[str, str]:
    """Dropdown label -> model name: the default (from the photo's surroundings) and the library it builds on,
    then the trained networks registered for "inpaint" (with the photo's texture on top, and alone), when there
    are any; then the classical methods."""
    out: dict[str, str] = {}
    if task.FROM_THE_PHOTO_READY:
        out[DEFAULT_LABEL] = task.DEFAULT_MODEL
        out[LIBRARY_LABEL] = "pypatchmatch"
    try:
        entries = default_store().entries_for_task("inpaint")
    except StoreError:
        entries = []
    if any(e.name == task.NETWORK for e in entries):
        out[TEXTURE_LABEL] = "net-patchmatch"
    for e in entries:
        out[f"Trained network alone ({e.name})"] = e.name
    out.update(CLASSICAL_LABELS)
    return out


def _photo(background: np.ndarray) -> Image.Image:
    """The editor's background as the photo: RGB if fully opaque, else RGBA (alpha kept)."""
    a = np.asarray(background)
    if a.ndim == 2:
        return Image.fromarray(a.astype(np.uint8), "L")
    if a.shape[2] == 4:
        if (a[:, :, 3] == 255).all():
            return Image.fromarray(np.ascontiguousarray(a[:, :, :3]), "RGB")
        return Image.fromarray(a, "RGBA")
    return Image.fromarray(a[:, :, :3], "RGB")


@gpu
@user_errors
def inpaint(editor, mask_file=None, grow: float = task.DEFAULT_GROW, feather: float = task.DEFAULT_FEATHER,
            invert: bool = False,
            processing: str = next(iter(PROCESSING)), max_side: float = 512, model: str | None = None,
            progress=gr.Progress()):
    """Returns ((before, after) paths for the slider, after path for download, the mask used, a Markdown report)."""
    started = time.perf_counter()
    progress(0, desc="Filling")
    if editor is None or editor.get("background") is None:
        raise UserError("Upload a photo first.")
    choices = model_choices()
    name = chosen(model, choices, "method")
    mode = chosen(processing, PROCESSING, "processing choice")
    photo = _photo(editor["background"])
    w, h = photo.size
    notes: list[str] = []
    painted = mask_from_editor(editor, notes)   # notes: a painted layer of another size than the photo
    res = task.inpaint_image(photo, [painted, mask_file], model=name, mode=mode, max_side=max_side, grow=grow,
                             feather=feather, invert=bool(invert),
                             progress=progress_callback(progress, "Filling"))
    if res.regions == 0 and not invert:
        gr.Warning("Nothing is masked: paint over the area to fill, or upload a mask (white = fill).")
    after = save_png(res.image, "inpainted")
    before, used = save_png(photo, "before"), save_png(res.mask_used, "mask")
    label = next(k for k, v in choices.items() if v == name)   # what was used, also when model is None
    lines = [f"**{label}**: {w}×{h} px in {took(started, res.seconds)} ({res.backend}; "
             f"{res.regions} region(s) processed)."]
    lines += notes + res.notes
    hole_share = float((np.asarray(res.mask_used) > 0).mean())
    lines.append(f"Filled {hole_share:.1%} of the image (grow {round(grow)} px, feather {float(feather):g} px"
                 f"{', inverted' if invert else ''}). Pixels outside the filled area are unchanged.")
    if name == task.DEFAULT_MODEL and res.regions and TEXTURE_LABEL in choices:
        lines.append(COPIED_HINT)
    return (before, after), after, used, "\n\n".join(lines)


def inpaint_example(editor, grow: float = task.DEFAULT_GROW, feather: float = task.DEFAULT_FEATHER,
                    invert: bool = False,
                    processing: str = next(iter(PROCESSING)), max_side: float = 512, model: str | None = None,
                    progress=gr.Progress()):
    """An example row: the inputs of :func:`inpaint` but the mask file (no example has one; Gradio drops a column
    that is empty in every row, and the cached examples then failed with HTTP 500)."""
    return inpaint(editor, None, grow, feather, invert, processing, max_side, model, progress=progress)


# ------------------------------------------------------------------------------------------------ examples
EXAMPLE_SHAPES = {
    "astronaut": ("astronaut.png", [("ellipse", 410, 158, 62, 172)]),
    "coffee": ("coffee.png", [("line", 420, 70, 398, 200, 26), ("ellipse", 366, 278, 46, 46)]),
    "chelsea": ("chelsea.png", [("line", 40, 40, 420, 260, 7), ("line", 20, 230, 430, 110, 5),
                                ("line", 250, 10, 300, 290, 4)]),
    "rocket": ("rocket.jpg", [("box", 158, 110, 218, 426)]),
}
EXAMPLE_LABELS = ["astronaut: remove the shuttle", "coffee: remove the spoon", "cat: repair scratches",
                  "rocket: remove a tower"]


def example_dir() -> Path:
    """Pre-drawn example masks (in the system temp dir, which Gradio may serve; outside its cleaned cache)."""
    return Path(tempfile.gettempdir()) / "imgen-examples"


def example_values(model_label: str) -> list[list]:
    made = make_example_masks(example_dir(), {k: (sample_image(f), shapes)
                                                   for k, (f, shapes) in EXAMPLE_SHAPES.items()})
    rows = []
    for name in EXAMPLE_SHAPES:
        photo, layer = made[name]
        feather = 0 if name == "chelsea" else task.DEFAULT_FEATHER
        rows.append([{"background": photo, "layers": [layer], "composite": None}, task.DEFAULT_GROW, feather, False,
                     next(iter(PROCESSING)), 512, model_label])
    return rows


def build() -> None:
    choices = model_choices()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            editor = MaskEditor(  # gr.ImageMask's frontend; imgen decodes the files (clear errors, EXIF, 16 bit)
                type="numpy", image_mode="RGBA", format="png", label="Photo: paint over what to remove",
                sources=["upload", "clipboard"], layers=False, transforms=(), fixed_canvas=False,
                brush=gr.Brush(default_size=24, colors=["#ff00ff"], color_mode="fixed"),
                eraser=gr.Eraser(default_size=24), height=520, elem_id="inpaint-editor")
            run = gr.Button("Fill the painted area", variant="primary", elem_id="inpaint-run")
            with gr.Accordion("More options: method, mask, edges, size", open=False, elem_id="inpaint-options"):
                model = gr.Dropdown(list(choices), value=next(iter(choices)), label="Method",
                                    info=METHOD_HINT,
                                    elem_id="inpaint-model")
                mask_file = ImageUpload(label="Or upload a mask (white = fill; optional)",
                                        sources=["upload", "clipboard"], height=160)
                with gr.Row():
                    grow = NumberSlider(-16, 48, value=task.DEFAULT_GROW, step=1, label="Cover more around the painting, px",
                                        info="Negative values cover less.")
                    feather = NumberSlider(0, 32, value=task.DEFAULT_FEATHER, step=1, label="Soften the edge, px",
                                           info="Fades the fill into its surroundings over this width (feather).")
                invert = gr.Checkbox(False, label="Fill everything that is NOT painted")
                processing = gr.Radio(list(PROCESSING), value=next(iter(PROCESSING)), label="Processing",
                                      info="Full resolution works only around the mask; the whole-image option "
                                           "fills everything at the size below.")
                max_side = NumberSlider(256, 1024, value=512, step=32, label="Size the model works at, px",
                                        info="The long side; larger is slower.")
        with gr.Column(scale=1, min_width=300):
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png", max_height=640,
                                     elem_id="inpaint-result")
            download = gr.DownloadButton("Download result (full-resolution PNG)", elem_id="inpaint-download")
            report = gr.Markdown(elem_id="inpaint-report")
            used = gr.Image(label="Mask used (white = filled)", type="filepath", format="png", height=200,
                            interactive=False, elem_id="inpaint-mask-used")
    inputs = [editor, mask_file, grow, feather, invert, processing, max_side, model]
    outputs = [slider, download, used, report]
    run.click(inpaint, inputs, outputs, api_name="inpaint", concurrency_limit=1, concurrency_id="model")
    gr.Examples(example_values(next(iter(choices))), [editor, grow, feather, invert, processing, max_side, model],
                outputs, fn=inpaint_example, cache_examples=True, cache_mode="lazy", example_labels=EXAMPLE_LABELS,
                elem_id="inpaint-examples")
