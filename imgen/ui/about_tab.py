"""The About tab: the models (what each does, licences, where each file came from) and their model cards.

The device line is the app's footer (app.py), shown once."""
from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import torch

from .. import __version__
from ..device import cpu_count, pick_device
from ..store import default_store

# checkpoints the app uses behind the scenes (FID features) or that only train others (the stylize network's
# teacher): not models to pick
INTERNAL_TASKS = {"evaluation", "stylize-teacher"}
TASKS = {"denoise": "Denoise", "inpaint": "Inpaint", "explore": "Explore", "stylize": "Stylize",
         "explore-encoder": "Explore (helper: encodes your picture for kaokore-gan)"}
IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`(\{[^`]*\})`")


def registry_rows() -> list[list[str]]:
    """One row per model a user can run (internal checkpoints left out): name, tab, licence, data, file."""
    return [[r["name"], TASKS.get(r["task"], r["task"]), r["licence"], r["data"],
             f"{r['source']}" + (f", Hub revision {r['revision']}" if r["revision"] else ", not on the Hub yet")]
            for r in default_store().describe() if r["task"] not in INTERNAL_TASKS]


def registry_table() -> str:
    """The models as a Markdown list (a wide table was cut off on a desktop and unreadable on a phone)."""
    return "\n".join(f"- **{name}** ({tab}): trained on {data}. Licence: {licence}. File: {file}."
                      for name, tab, licence, data, file in registry_rows())


def _readable_config(match: re.Match) -> str:
    """A config written as inline JSON (``{"z_dim": 128, ...}``) as plain text: ``z_dim 128 · ...`` (escapes such as
    \\u2212 decoded)."""
    try:
        config = json.loads(match.group(1))
    except ValueError:
        return match.group(0)
    if not isinstance(config, dict):
        return match.group(0)
    parts = []
    for key, value in config.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "; ".join(v for v in value if v) or "none"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key} {value}")
    return "*" + " · ".join(parts) + "*"


def card_markdown(card: Path) -> tuple[str, list[Path]]:
    """A model card's body for the page: its images linked to files the app serves, inline JSON configs readable.
    Returns (markdown, the image files it shows)."""
    text = card.read_text().split("---", 2)[-1]
    images: list[Path] = []

    def link(m: re.Match) -> str:
        target = m.group(2)
        if "://" in target or target.startswith("/"):
            return m.group(0)
        path = (card.parent / target).resolve()
        if not path.is_file():
            return f"*(image {m.group(1)!r} is missing)*"
        images.append(path)
        return f"![{m.group(1)}](/gradio_api/file={path.as_posix()})"
    text = IMAGE_LINK.sub(link, text)
    return CODE_SPAN.sub(_readable_config, text), images


METHODS_WITHOUT_WEIGHTS = (
    "### Methods with no trained model\n"
    "- **Inpaint, the default (context-fill)**: PatchMatch completion by the compiled core of the "
    "[pypatchmatch](https://pypi.org/project/pypatchmatch/) library (MIT), the colour taken from the hole's "
    "boundary (SciPy, BSD-3-Clause; OpenCV's Telea, Apache-2.0). Also offered alone, as *pypatchmatch*.\n"
    "- OpenCV's Telea and Navier–Stokes inpainting and non-local-means denoising (Apache-2.0).")


def device_line() -> str:
    dev = pick_device()
    extra = f", {torch.get_num_threads()} threads of {cpu_count()} CPUs" if dev.type == "cpu" else ""
    return f"imgen {__version__} · torch {torch.__version__} · gradio {gr.__version__} · device: {dev.type}{extra}"


def build() -> None:
    gr.Markdown(
        "## imgen\nRepair, denoise, explore and stylize images with small models trained for plain CPUs. "
        "Every model below was trained by this project; each has a model card with its data, licence, "
        "training command and measured metrics.")
    gr.Markdown("### Models\n" + registry_table(), elem_id="about-models")
    gr.Markdown(METHODS_WITHOUT_WEIGHTS, elem_id="about-methods")
    store = default_store()
    served: list[Path] = []
    for e in store.entries():
        if e.task in INTERNAL_TASKS:
            continue
        card = Path(store.weights_dir) / e.card if e.card else None
        if card is not None and card.exists():
            text, images = card_markdown(card)
            served += images
            with gr.Accordion(f"Model card: {e.name}", open=False):
                gr.Markdown(text, elem_classes="imgen-card")
    if served:
        gr.set_static_paths(served)   # the cards' images, and nothing else from weights/
