"""The Explore tab: seed, seed walk, truncation and direction sliders over a trained GAN; variations, an
interpolation GIF, projection of your own picture, and a JSON state (also in the PNG's metadata)."""
from __future__ import annotations

import random

import gradio as gr
import numpy as np

from ..store import StoreError, default_store
from ..tasks import explore as task
from .common import ImageUpload, NumberSlider, UserError, gpu, output_dir, sample_image, user_errors

N_SLIDERS = 12
EXAMPLES = [[0, 0, 0.7, 0, 0, 0], [7, 0.5, 0.7, 0, 0, 0], [42, 0, 1.0, 0, 0, 0], [3, 0, 0.5, 2.5, 0, 0],
            [3, 0, 0.5, -2.5, 0, 0], [11, 0, 0.7, 0, 2.5, -2.0]]
EXAMPLE_LABELS = ["seed 0", "halfway between seeds 7 and 8", "seed 42, no truncation", "seed 3, direction 1 +2.5σ",
                  "seed 3, direction 1 −2.5σ", "seed 11, directions 2 and 3"]
DISPLAY = 512                       # px: the 64 px images are enlarged 8x, nearest neighbour (crisp)
WALK_RANGE = 10.0


def model_names() -> list[str]:
    try:
        return [e.name for e in default_store().entries_for_task("explore")]
    except StoreError:
        return []


def slider_labels(name: str) -> list[str]:
    try:
        labels = list((default_store().entry(name).config or {}).get("direction_labels") or [])
    except StoreError:
        labels = []
    return [f"{k + 1} · {labels[k]}" if k < len(labels) and labels[k] else f"Direction {k + 1}"
            for k in range(N_SLIDERS)]


def _explorer(name: str):
    if name not in model_names():
        raise UserError(f"Unknown model {name!r}; choose one of: {', '.join(model_names()) or 'none installed'}.")
    return task.get_explorer(name)


def _state(model, seed, walk, psi, dirs, w) -> task.ExploreState:
    seed = task.check_seed(seed)
    if isinstance(seed, float):
        raise task.ExploreError(f"The seed must be a whole number (got {seed:g}); use the walk slider for "
                                "fractional steps.")
    walk = float(walk)
    total = seed + int(walk) if walk.is_integer() else seed + walk
    return task.ExploreState(model=model, seed=total, psi=psi, directions=[float(d) for d in dirs], w=w).validate()


def _save(img: np.ndarray, state: task.ExploreState, stem: str, size: int = DISPLAY) -> str:
    import uuid
    path = output_dir() / f"{stem}-{uuid.uuid4().hex[:10]}.png"
    task.save_png(task.upscale(img, size), path, state)
    return str(path)


@gpu
@user_errors
def sample(model: str, seed: float, walk: float, psi: float, *rest):
    """(model, seed, walk, psi, direction 1..12[, projected w]) -> (image PNG with its state, the same PNG to
    download, the state JSON). The projected latent is a per-session value, not an API input."""
    dirs, w = rest[:N_SLIDERS], (rest[N_SLIDERS] if len(rest) > N_SLIDERS else None)
    ex = _explorer(model)
    state = _state(model, seed, walk, psi, dirs, w)
    path = _save(ex.image(state), state, "explore")
    return path, path, state.to_json()


@gpu
@user_errors
def variations(model: str, seed: float, walk: float, psi: float, spread: float, *rest):
    dirs, w = rest[:N_SLIDERS], (rest[N_SLIDERS] if len(rest) > N_SLIDERS else None)
    ex = _explorer(model)
    state = _state(model, seed, walk, psi, dirs, w)
    grid = task.tile(ex.variations(state, 16, spread, seed=int(float(seed)) % 2 ** 32))
    return _save(grid, state, "variations", size=4 * grid.shape[1])


@gpu
@user_errors
def interpolate(model: str, seed_a: float, seed_b: float, frames: float, psi: float, progress=gr.Progress()):
    ex = _explorer(model)
    progress(0.1, desc="Rendering frames")
    images = ex.interpolate(seed_a, seed_b, int(frames), psi)
    progress(0.7, desc="Writing the GIF")
    import uuid
    gif = output_dir() / f"interpolate-{uuid.uuid4().hex[:10]}.gif"
    task.save_gif(images, gif, size=256)
    strip = task.frame_strip(images)
    strip_path = output_dir() / f"strip-{uuid.uuid4().hex[:10]}.png"
    task.upscale(strip, strip.shape[1] * 2).save(strip_path)
    return str(gif), str(strip_path)


@gpu
@user_errors
def project(model: str, image, steps: float = 150, progress=gr.Progress()):
    """Yields (target as the model sees it, reconstruction), state JSON, projected w for the session, report:
    first the encoder's guess at once (when the model has an encoder), then the refined result."""
    if image is None:
        raise UserError("Upload a picture to project first.")
    ex = _explorer(model)
    steps = int(steps)
    tgt = None
    if ex.can_encode:
        state, target, rep = ex.project(image, steps=0)
        tgt = _save_target(target)
        more = f" Refining with {steps} optimisation steps…" if steps else ""
        yield ((tgt, _save(ex.image(state), state, "projected")), state.to_json(), state.w,
               f"The encoder's guess: **{rep['psnr']:.1f} dB** PSNR.{more}")
        if not steps:
            return
    state, target, rep = ex.project(image, steps=max(1, steps),
                                    progress=lambda i, n: progress((i, n), desc="Refining", unit="steps"))
    tgt = tgt or _save_target(target)
    start = "the encoder's guess" if rep["start"] == "encoder" else "the average face"
    report = (f"Reconstruction **{rep['psnr']:.1f} dB** PSNR after {rep['steps']} steps from {start} (error "
              f"{rep['loss_start']:.4f} → {rep['loss_end']:.4f}). The sliders now edit your picture's latent; "
              "change the seed to leave it.")
    yield (tgt, _save(ex.image(state), state, "projected")), state.to_json(), state.w, report


def _save_target(target: np.ndarray) -> str:
    """The picture as the model sees it, enlarged for display."""
    path = output_dir() / f"target-{random.getrandbits(40):010x}.png"
    task.upscale(target, DISPLAY).save(path)
    return str(path)


@gpu
@user_errors
def compare_families(seed: float, psi: float):
    """The same seeds (seed .. seed + 7) through every installed model of the KaoKore faces (GAN and VAE):
    a gallery of one strip per model, captioned with its name and family."""
    names = [n for n in model_names() if _dataset(n) == _dataset(task.DEFAULT_MODEL)]
    explorers = [_explorer(n) for n in names]
    strips = task.compare(explorers, seed, psi)
    out = []
    for ex, strip in zip(explorers, strips):
        path = output_dir() / f"compare-{ex.name}-{random.getrandbits(40):010x}.png"
        task.upscale(strip, 2 * strip.shape[1]).save(path)
        out.append((str(path), f"{ex.name} ({ex.family})"))
    return out


def _dataset(name: str) -> str:
    try:
        return default_store().entry(name).data
    except StoreError:
        return ""


@user_errors
def apply_state(text: str):
    """State JSON -> the control values (model, seed, walk, psi, 12 directions, projected w)."""
    state = task.ExploreState.from_json(text or "")
    if state.model not in model_names():
        raise UserError(f"The state names model {state.model!r}, which is not installed.")
    seed = state.seed
    base, walk = (seed, 0.0) if isinstance(seed, int) else (int(seed // 1), float(seed - seed // 1))
    dirs = (list(state.directions) + [0.0] * N_SLIDERS)[:N_SLIDERS]
    return [state.model, base, walk, state.psi, *dirs, state.w]


@user_errors
def state_from_file(path):
    if path is None:
        raise UserError("Upload a PNG saved from this tab.")
    return task.state_from_png(path).to_json()


def _initial(name: str) -> tuple[str, str]:
    """The image and state shown when a page loads (seed 0, ψ 0.7, no directions)."""
    state = task.ExploreState(model=name, seed=0, psi=0.7, directions=[0.0] * N_SLIDERS)
    return _save(task.get_explorer(name).image(state), state, "explore"), state.to_json()


def build() -> None:
    names = model_names()
    if not names:
        gr.Markdown("No explorer model is installed yet (train one: `python -m imgen.training.train_gan`).")
        return
    first = names[0]
    labels = slider_labels(first)
    w_state = gr.State(None)  # a projected latent, per browser session
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(names, value=first, label="Model", elem_id="explore-model",
                                info="kaokore: faces from Japanese picture scrolls (KaoKore); emoji: Noto emoji. "
                                     "GAN: sharper samples. VAE: softer, but encodes any picture at once.")
            with gr.Row():
                seed = gr.Number(0, precision=0, minimum=0, label="Seed", scale=3, elem_id="explore-seed")
                dice = gr.Button("🎲", scale=1, min_width=40, elem_id="explore-dice")
            walk = NumberSlider(0, WALK_RANGE, value=0, step=0.01, label="Seed walk",
                                info="Fractional steps blend neighbouring seeds smoothly (seed + walk).")
            psi = NumberSlider(*task.PSI_RANGE, value=0.7, step=0.05, label="Truncation ψ",
                               info="Lower: closer to the average face, cleaner; 1: full variety.")
            with gr.Accordion("Directions (principal components of w, in σ; ordered by variance)", open=True):
                sliders = [NumberSlider(*task.SLIDER_RANGE, value=0, step=0.1, label=labels[k],
                                        elem_id=f"explore-dir-{k + 1}")
                           for k in range(N_SLIDERS)]
                reset = gr.Button("Reset directions", size="sm")
        with gr.Column(scale=1):
            image = gr.Image(lambda: _initial(first)[0], label="Image (PNG carries its state)", type="filepath", format="png",
                             interactive=False, height=DISPLAY, elem_id="explore-image")
            download = gr.DownloadButton("Download PNG (with state)")
            state_json = gr.Code(lambda: _initial(first)[1], label="State (paste one here and press Apply to reproduce an image)",
                                 language="json", interactive=True, elem_id="explore-state")
            with gr.Row():
                apply = gr.Button("Apply state", size="sm")
                png_state = gr.UploadButton("Load state from a PNG", file_types=[".png"], size="sm")
    with gr.Tab("Variations"):
        spread = NumberSlider(0, 3, value=1.0, step=0.1, label="Spread (σ along the directions)")
        vary = gr.Button("16 variations around this image")
        grid = gr.Image(label="Variations (top left: the current image)", type="filepath", format="png",
                        interactive=False)
    with gr.Tab("Interpolate"):
        with gr.Row():
            seed_a = gr.Number(0, precision=0, minimum=0, label="From seed")
            seed_b = gr.Number(1, precision=0, minimum=0, label="To seed")
            frames = NumberSlider(2, task.MAX_FRAMES, value=48, step=1, label="Frames")
        go = gr.Button("Make GIF")
        gif = gr.Image(label="Interpolation (GIF)", type="filepath", interactive=False)
        strip = gr.Image(label="Frames", type="filepath", format="png", interactive=False)
    with gr.Tab("Project your picture"):
        with gr.Row():
            picture = ImageUpload(label="Your picture (centre square is used)", sources=["upload", "clipboard"],
                                  height=256)
            steps = NumberSlider(0, 500, value=100, step=10, label="Refinement steps",
                                 info="Models with an encoder show their guess at once; these steps then refine it.")
        proj = gr.Button("Project")
        pair = gr.ImageSlider(label="Your picture (as the model sees it) / reconstruction", type="filepath",
                              format="png")
        proj_report = gr.Markdown()
    with gr.Tab("GAN vs VAE"):
        gr.Markdown("The same seeds through each family trained on the same faces: a GAN (sharp, learned by a "
                    "critic) and a VAE (learned by reconstruction: softer, but it can encode any picture).")
        compare_btn = gr.Button("Compare seeds seed … seed + 7")
        compare_out = gr.Gallery(label="Same seeds, each model", columns=1, object_fit="contain", height="auto")

    controls = [model, seed, walk, psi, *sliders]
    outs = [image, download, state_json]
    live = dict(fn=sample, inputs=[*controls, w_state], outputs=outs, show_progress="hidden",
                trigger_mode="always_last", concurrency_limit=4, concurrency_id="explore")
    load_evt = gr.on([model.change, psi.release, walk.release, *[s.release for s in sliders]], api_name="sample",
                     **live)
    walk.change(**live, api_visibility="private")  # live preview while dragging
    seed_set = seed.submit(lambda: None, None, w_state, api_visibility="private").then(**live, api_visibility="private")
    dice.click(lambda: (random.randrange(2 ** 31), None), None, [seed, w_state], api_visibility="private").then(
        **live, api_visibility="private")
    reset.click(lambda: [0.0] * N_SLIDERS, None, sliders, api_visibility="private").then(**live, api_visibility="private")
    model.change(lambda m: [gr.update(label=lab) for lab in slider_labels(m)], model, sliders,
                 api_visibility="private")
    apply.click(apply_state, state_json, [*controls, w_state], api_name="apply_state").then(
        **live, api_visibility="private")
    png_state.upload(state_from_file, png_state, state_json, api_visibility="private").then(
        apply_state, state_json, [*controls, w_state], api_visibility="private").then(**live, api_visibility="private")
    vary.click(variations, [model, seed, walk, psi, spread, *sliders, w_state], grid, api_name="variations",
               concurrency_limit=2, concurrency_id="explore")
    go.click(interpolate, [model, seed_a, seed_b, frames, psi], [gif, strip], api_name="interpolate",
             concurrency_limit=1, concurrency_id="model")
    proj.click(project, [model, picture, steps], [pair, state_json, w_state, proj_report], api_name="project",
               concurrency_limit=1, concurrency_id="model").then(
        lambda: [0.0] * N_SLIDERS, None, sliders, api_visibility="private").then(**live, api_visibility="private")
    compare_btn.click(compare_families, [seed, psi], compare_out, api_name="compare",
                      concurrency_limit=2, concurrency_id="explore")
    del load_evt, seed_set
    gr.Examples(EXAMPLES, [seed, walk, psi, *sliders[:3]], outputs=None, label="Starting points",
                example_labels=EXAMPLE_LABELS)
    gr.Examples([[sample_image("astronaut.png")], [sample_image("coffee.png")]], [picture],
                label="Pictures to project", example_labels=["astronaut", "coffee"])
