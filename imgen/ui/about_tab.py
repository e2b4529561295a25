"""The About tab: the model registry (licences, where each file came from), the device, model cards."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import torch

from .. import __version__
from ..device import cpu_count, pick_device
from ..store import default_store


def registry_rows() -> list[list[str]]:
    return [[r["name"], r["task"], r["arch"], r["source"], r["licence"], r["data"], r["revision"] or "not published"]
            for r in default_store().describe()]


def device_line() -> str:
    dev = pick_device()
    extra = f", {torch.get_num_threads()} threads of {cpu_count()} CPUs" if dev.type == "cpu" else ""
    return f"imgen {__version__} · torch {torch.__version__} · gradio {gr.__version__} · device: {dev.type}{extra}"


def build() -> None:
    gr.Markdown(
        "## imgen\nRepair, denoise, explore and stylize images with small models trained for plain CPUs. "
        "Every model below was trained by this project; each has a model card with its data, licence, "
        "training command and measured metrics.")
    gr.Dataframe(registry_rows(), headers=["model", "task", "architecture", "file found", "licence",
                                           "training data", "Hub revision"],
                 label="Models", interactive=False, wrap=True)
    store = default_store()
    for e in store.entries():
        card = Path(store.weights_dir) / e.card if e.card else None
        if card is not None and card.exists():
            with gr.Accordion(f"Model card: {e.name}", open=False):
                gr.Markdown(card.read_text().split("---", 2)[-1])
    gr.Markdown(device_line())
