"""The Denoise tab: upload, Auto or manual noise level, optional synthetic noise, before/after slider."""
from __future__ import annotations

import time

import gradio as gr

from ..image_io import load_image, open_image
from ..tasks import denoise as task
from .common import (ImageUpload, NumberSlider, UserError, gpu, progress_callback, sample_image, save_png,
                     took, user_errors)

MODELS = {"Trained U-Net (imgen)": task.DEFAULT_MODEL, "OpenCV non-local means (classical)": "nlm"}


@gpu
@user_errors
def denoise(image, noise_mode: str = "Auto", sigma: float = 25, add_noise: bool = False, noise_sigma: float = 25,
            model: str = "Trained U-Net (imgen)", gray: bool = False, progress=gr.Progress()):
    """Returns ((before, after) paths for the slider, after path for download, a Markdown report)."""
    started = time.perf_counter()
    progress(0, desc="Denoising")
    if image is None:
        raise UserError("Upload a photo first.")
    model_name = MODELS.get(model, model)
    if model_name not in MODELS.values():
        raise UserError(f"Unknown model {model!r}; choose one of: {', '.join(MODELS)}.")
    level = "auto" if str(noise_mode).lower() == "auto" else float(sigma)
    cb = progress_callback(progress, "Denoising")
    image = open_image(image)   # decoded once, here: the task and the "before" image share it
    if add_noise:
        trial = task.denoise_with_synthetic_noise(image, float(noise_sigma), sigma=level, model=model_name,
                                                  gray=bool(gray), progress=cb)
        before, res = trial.noisy, trial.result
        lines = [f"**Practice run: noise of strength {float(noise_sigma):g} was added to your photo first** "
                 f"(untick “Add noise to my photo first” to denoise the photo as it is). Noisy PSNR "
                 f"**{trial.psnr_noisy:.2f} dB** → denoised PSNR **{trial.psnr_denoised:.2f} dB** (against your "
                 "clean upload)."]
    else:
        res = task.denoise_image(image, sigma=level, model=model_name, gray=bool(gray), progress=cb)
        before, lines = load_image(image), []   # an 8-bit copy (alpha kept) for the slider
    if res.sigma_estimated is not None:
        lines.append(f"Estimated noise level: **σ ≈ {res.sigma_estimated:.1f}** (on the 0–255 scale).")
    else:
        lines.append(f"Noise level: σ = {res.sigma:g}")
    lines += [n for n in res.notes if not n.startswith("Estimated")]
    after = save_png(res.image, "denoised")
    before = save_png(before, "before")
    w, h = res.image.size
    lines.append(f"{w}×{h} px in {took(started, res.seconds)} ({model}, {res.backend}).")
    return (before, after), after, "\n\n".join(lines)


TRIAL_ON = ("⚠️ **Practice run is on:** noise is added to your photo before it is denoised. Untick “Add noise to "
            "my photo first” to denoise your photo as it is.")


def trial_notice(add_noise: bool):
    """The banner under the Denoise button while synthetic noise is on, and the noise strength slider."""
    return gr.update(value=TRIAL_ON if add_noise else "", visible=bool(add_noise)), gr.update(visible=bool(add_noise))


def build() -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            image = ImageUpload(label="Photo", sources=["upload", "clipboard"], elem_id="denoise-image")
            run = gr.Button("Denoise", variant="primary", elem_id="denoise-run")
            trial = gr.Markdown(visible=False, elem_id="denoise-trial")
            add_noise = gr.Checkbox(False, label="Add noise to my photo first (a practice run: see how much "
                                                 "is removed)", elem_id="denoise-add-noise")
            noise_sigma = NumberSlider(0, 75, value=25, step=1, label="Strength of the added noise (σ)",
                                       visible=False, elem_id="denoise-noise-sigma")
            with gr.Accordion("More options: noise strength, method, grayscale", open=False):
                noise_mode = gr.Radio(["Auto", "Manual"], value="Auto", label="How noisy is the photo?",
                                      info="Auto measures it from the photo; Manual uses the slider below.")
                sigma = NumberSlider(0, 75, value=25, step=1, label="Noise strength (σ, manual, 0–255 scale)")
                model = gr.Dropdown(list(MODELS), value=next(iter(MODELS)), label="Method")
                gray = gr.Checkbox(False, label="Convert to grayscale")
        with gr.Column(scale=1, min_width=300):
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png", max_height=640,
                                    elem_id="denoise-result")
            download = gr.DownloadButton("Download result (full-resolution PNG)")
            report = gr.Markdown(elem_id="denoise-report")
    inputs = [image, noise_mode, sigma, add_noise, noise_sigma, model, gray]
    outputs = [slider, download, report]
    run.click(denoise, inputs, outputs, api_name="denoise", concurrency_limit=1, concurrency_id="model")
    add_noise.change(trial_notice, add_noise, [trial, noise_sigma], api_visibility="private")
    # a new photo is denoised as it is: a practice run that an example switched on ends with the user's upload
    image.upload(lambda: False, None, add_noise, api_visibility="private")
    gr.Examples(
        [[sample_image("astronaut.png"), "Auto", 25, True, 25, next(iter(MODELS)), False],
         [sample_image("coffee.png"), "Auto", 25, True, 50, next(iter(MODELS)), False],
         [sample_image("camera.png"), "Manual", 15, True, 15, next(iter(MODELS)), False],
         [sample_image("logo.png"), "Manual", 30, True, 30, next(iter(MODELS)), False]],
        inputs, outputs, fn=denoise, cache_examples=True, cache_mode="lazy", elem_id="denoise-examples",
        example_labels=["astronaut + noise 25", "coffee + noise 50", "camera (gray) + noise 15",
                        "logo (RGBA) + noise 30"])
