"""The Stylize tab: a photo becomes a painting (a trained style) or takes its colours from a reference picture."""
from __future__ import annotations

import time

import gradio as gr

from ..image_io import load_image, open_image
from ..tasks import stylize as task
from .common import (ImageUpload, NumberSlider, UserError, chosen, gpu, progress_callback, sample_image, save_png,
                     took, user_errors)

REFERENCE_LABEL = "The style of a reference image (texture and colours)"
METHODS = {"Texture and colours (patch transport)": "texture", "Reinhard (Lab mean and spread)": "reinhard",
           "Histogram matching (per channel)": "histogram"}


def style_choices() -> dict[str, str]:
    """Dropdown label -> style: the trained painting models registered for "stylize", then the reference option."""
    out = {f"Painting: {name} (trained network)": name for name in task.trained_styles()}
    out[REFERENCE_LABEL] = task.REFERENCE
    return out


@gpu
@user_errors
def stylize(image, style: str | None = None, reference=None, strength: float = 80,
            max_side: float = task.DEFAULT_MAX_SIDE, method: str = next(iter(METHODS)), brushwork: bool = True,
            progress=gr.Progress()):
    """Returns ((before, after) paths for the slider, after path for download, a Markdown report)."""
    started = time.perf_counter()
    progress(0, desc="Stylizing")
    if image is None:
        raise UserError("Upload a photo first.")
    name = chosen(style, style_choices(), "style")
    method_name = chosen(method, METHODS, "reference method")
    if name == task.REFERENCE and reference is None:
        raise UserError("Upload a reference image to take the style from.")
    image = open_image(image)   # decoded once, here: the task and the "before" image share it
    res = task.stylize_image(image, name, reference=reference if name == task.REFERENCE else None,
                             strength=float(strength) / 100.0, max_side=int(max_side), method=method_name,
                             progress=progress_callback(progress, "Stylizing"), brushwork=bool(brushwork))
    after = save_png(res.image, "stylized")
    before = save_png(load_image(image), "before")
    w, h = res.image.size
    how = (f"the style of your reference ({method})" if name == task.REFERENCE
           else f"painting model {name}" + (f" at {res.processed_size[0]}×{res.processed_size[1]} px"
                                            if res.processed_size else ""))
    lines = [f"{w}×{h} px in {took(started, res.seconds)}: {how}, strength {float(strength):g} % ({res.backend})."]
    lines += res.notes
    return (before, after), after, "\n\n".join(lines)


def build() -> None:
    choices = style_choices()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            image = ImageUpload(label="Photo", sources=["upload", "clipboard"], elem_id="stylize-image")
            style = gr.Dropdown(list(choices), value=next(iter(choices)), label="Style",
                                info="A painting style learned by a network, or the style (texture and colours) "
                                     "of any picture you upload under “More options”.",
                                elem_id="stylize-style")
            run = gr.Button("Stylize", variant="primary", elem_id="stylize-run")
            with gr.Accordion("More options: reference picture, strength, size", open=False,
                              elem_id="stylize-options"):
                reference = ImageUpload(label="Reference picture (for “the style of a reference image”)",
                                        sources=["upload", "clipboard"], height=200, elem_id="stylize-reference")
                method = gr.Radio(list(METHODS), value=next(iter(METHODS)), label="How the reference is copied",
                                  info="Texture: the reference's brushwork and colours, matched patch by patch at "
                                       "several scales (a few seconds). Reinhard moves only the overall palette; "
                                       "histogram matching copies it more exactly (and can posterise).")
                strength = NumberSlider(0, 100, value=80, step=1, label="Strength, % (0 = the original)")
                max_side = NumberSlider(256, 1536, value=task.DEFAULT_MAX_SIDE, step=32,
                                        label="Size the painting model works at (long side, px)",
                                        info="Larger = finer brushwork, slower. The result always has your "
                                             "photo's full size.")
                brushwork = gr.Checkbox(value=True, label="Brushwork from the paintings",
                                        info="After the painting model, move the picture's small-scale texture "
                                             "and tones onto its paintings' (full from 50 % strength). Off: the "
                                             "network alone.", elem_id="stylize-brushwork")
        with gr.Column(scale=1, min_width=300):
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png", max_height=640,
                                    elem_id="stylize-result")
            download = gr.DownloadButton("Download result (full-resolution PNG)", elem_id="stylize-download")
            report = gr.Markdown(elem_id="stylize-report")
    inputs = [image, style, reference, strength, max_side, method, brushwork]
    outputs = [slider, download, report]
    run.click(stylize, inputs, outputs, api_name="stylize", concurrency_limit=1, concurrency_id="model")
    first = next(iter(choices))
    texture, reinhard, histogram = list(METHODS)
    rows, labels = [], []
    if first != REFERENCE_LABEL:
        rows.append([sample_image("astronaut.png"), first, None, 80, task.DEFAULT_MAX_SIDE, reinhard, True])
        labels.append("astronaut as a painting")
    rows += [[sample_image("chelsea.png"), REFERENCE_LABEL, sample_image("coffee.png"), 100, task.DEFAULT_MAX_SIDE,
              texture, True],
             [sample_image("coffee.png"), REFERENCE_LABEL, sample_image("astronaut.png"), 80, task.DEFAULT_MAX_SIDE,
              histogram, True]]
    labels += ["cat with the coffee photo's texture and colours", "coffee with the astronaut's colours (histogram)"]
    if first != REFERENCE_LABEL:
        rows.append([sample_image("chelsea.png"), first, None, 100, task.DEFAULT_MAX_SIDE, reinhard, True])
        labels.append("cat as a painting")
    gr.Examples(rows, inputs, outputs, fn=stylize, cache_examples=True, cache_mode="lazy", example_labels=labels,
                elem_id="stylize-examples")
