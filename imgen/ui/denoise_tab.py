"""The Denoise tab: upload, Auto or manual noise level, optional synthetic noise, before/after slider."""
from __future__ import annotations

import gradio as gr

from ..image_io import load_image, open_image
from ..tasks import denoise as task
from .common import (ImageUpload, NumberSlider, UserError, gpu, progress_callback, sample_image, save_png,
                     user_errors)

MODELS = {"Trained U-Net (imgen)": task.DEFAULT_MODEL, "OpenCV non-local means (classical)": "nlm"}


@gpu
@user_errors
def denoise(image, noise_mode: str = "Auto", sigma: float = 25, add_noise: bool = False, noise_sigma: float = 25,
            model: str = "Trained U-Net (imgen)", gray: bool = False, progress=gr.Progress()):
    """Returns ((before, after) paths for the slider, after path for download, a Markdown report)."""
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
        lines = [f"Added noise σ = {float(noise_sigma):g}: noisy PSNR **{trial.psnr_noisy:.2f} dB** → "
                 f"denoised PSNR **{trial.psnr_denoised:.2f} dB** (against your clean upload)."]
    else:
        res = task.denoise_image(image, sigma=level, model=model_name, gray=bool(gray), progress=cb)
        before, lines = load_image(image), []   # an 8-bit copy (alpha kept) for the slider
    if res.sigma_estimated is not None:
        lines.append(f"Estimated noise level (wavelet MAD): **σ ≈ {res.sigma_estimated:.1f}**")
    else:
        lines.append(f"Noise level: σ = {res.sigma:g}")
    lines += [n for n in res.notes if not n.startswith("Estimated")]
    w, h = res.image.size
    lines.append(f"{w}×{h} px in {res.seconds:.2f} s ({model}, {res.backend}).")
    after = save_png(res.image, "denoised")
    return (save_png(before, "before"), after), after, "\n\n".join(lines)


def build() -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image = ImageUpload(label="Photo", sources=["upload", "clipboard"])
            noise_mode = gr.Radio(["Auto", "Manual"], value="Auto", label="Noise level",
                                  info="Auto estimates σ from the image; Manual uses the slider.")
            sigma = NumberSlider(0, 75, value=25, step=1, label="σ (manual, 0–255 scale)")
            with gr.Accordion("Try it: add synthetic noise first", open=False):
                add_noise = gr.Checkbox(False, label="Add Gaussian noise to my photo, then denoise it")
                noise_sigma = NumberSlider(0, 75, value=25, step=1, label="σ of the added noise")
            model = gr.Dropdown(list(MODELS), value=next(iter(MODELS)), label="Method")
            gray = gr.Checkbox(False, label="Convert to grayscale")
            run = gr.Button("Denoise", variant="primary")
        with gr.Column(scale=2):
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png", max_height=640)
            download = gr.DownloadButton("Download result (full-resolution PNG)")
            report = gr.Markdown()
    inputs = [image, noise_mode, sigma, add_noise, noise_sigma, model, gray]
    outputs = [slider, download, report]
    run.click(denoise, inputs, outputs, api_name="denoise", concurrency_limit=1, concurrency_id="model")
    gr.Examples(
        [[sample_image("astronaut.png"), "Auto", 25, True, 25, next(iter(MODELS)), False],
         [sample_image("coffee.png"), "Auto", 25, True, 50, next(iter(MODELS)), False],
         [sample_image("camera.png"), "Manual", 15, True, 15, next(iter(MODELS)), False],
         [sample_image("logo.png"), "Manual", 30, True, 30, next(iter(MODELS)), False]],
        inputs, outputs, fn=denoise, cache_examples=True, cache_mode="lazy",
        example_labels=["astronaut, σ 25", "coffee, σ 50", "camera (gray), σ 15", "logo (RGBA), σ 30"])
