"""The Explore tab: seed, seed walk, truncation and direction sliders over a trained GAN; variations, an
interpolation GIF, projection of your own picture, and a JSON state (also in the PNG's metadata)."""
from __future__ import annotations

import inspect
import json
import random

import gradio as gr
import numpy as np

from ..store import StoreError, default_store
from ..tasks import explore as task
from .common import ImageUpload, NumberSlider, UserError, gpu, result_path, sample_image, user_errors

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
    return [f"{k + 1} · {labels[k]}" if k < len(labels) and labels[k] else f"{k + 1} · (no clear meaning)"
            for k in range(N_SLIDERS)]


DATASETS = {"kaokore": "Faces from Japanese picture scrolls (KaoKore)", "emoji": "Emoji (Noto)"}
FAMILIES = {"gan": "GAN: sharp", "vae": "VAE: softer, encodes any picture at once"}


def model_label(name: str) -> str:
    """What a model draws, in words, for the dropdown (its name stays the value the API takes)."""
    data, _, family = name.partition("-")
    return f"{DATASETS.get(data, data)} · {FAMILIES.get(family, family.upper())} ({name})"


def _explorer(name: str):
    if name not in model_names():
        raise UserError(f"Unknown model {name!r}; choose one of: {', '.join(model_names()) or 'none installed'}.")
    return task.get_explorer(name)


def _state(model, seed, walk, psi, dirs, w) -> task.ExploreState:
    return task.ExploreState.from_controls(model, seed, walk, psi, dirs, w)


def _save(img: np.ndarray, state: task.ExploreState, stem: str, size: int = DISPLAY) -> str:
    path = result_path(stem)
    task.save_png(task.upscale(img, size), path, state)
    return str(path)


def _named_directions(fn):
    """Give ``fn(…, *rest)`` the signature ``(…, direction_1, …, direction_12, projected_w=None)`` so the API page
    names every parameter (a ``*rest`` was listed as param_4 … param_15); calls are unchanged."""
    sig = inspect.signature(fn)
    fixed = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    more = [inspect.Parameter(f"direction_{k + 1}", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=0.0)
            for k in range(N_SLIDERS)]
    more.append(inspect.Parameter("projected_w", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
    fn.__signature__ = sig.replace(parameters=fixed + more)
    return fn


@_named_directions
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


@_named_directions
@gpu
@user_errors
def variations(model: str, seed: float, walk: float, psi: float, spread: float, *rest):
    dirs, w = rest[:N_SLIDERS], (rest[N_SLIDERS] if len(rest) > N_SLIDERS else None)
    ex = _explorer(model)
    state = _state(model, seed, walk, psi, dirs, w)
    grid = task.tile(ex.variations(state, 16, spread, seed=int(state.seed) % 2 ** 32))   # checked: no overflow
    return _save(grid, state, "variations", size=4 * grid.shape[1])


@gpu
@user_errors
def interpolate(model: str, seed_a: float, seed_b: float, frames: float, psi: float, progress=gr.Progress()):
    ex = _explorer(model)
    progress(0.1, desc="Rendering frames")
    images = ex.interpolate(seed_a, seed_b, int(frames), psi)
    progress(0.7, desc="Writing the GIF")
    gif = result_path("interpolate", ".gif")
    task.save_gif(images, gif, size=256)
    strip = task.frame_strip(images)
    strip_path = result_path("strip")
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
    path = result_path("target")
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
        path = result_path(f"compare-{ex.name}")
        task.upscale(strip, 2 * strip.shape[1]).save(path)
        out.append((str(path), f"{ex.name} ({ex.family})"))
    return out


def _dataset(name: str) -> str:
    try:
        return default_store().entry(name).data
    except StoreError:
        return ""


@user_errors
def check_state(text: str) -> None:
    """Read the state JSON before any control is touched: a bad one is one message, not an error on every control."""
    state = task.ExploreState.from_json(text or "")
    if state.model not in model_names():
        raise UserError(f"The state names model {state.model!r}, which is not installed.")


@user_errors
def apply_state(text: str):
    """State JSON -> the control values (model, seed, walk, psi, 12 directions, projected w)."""
    check_state(text)
    return task.ExploreState.from_json(text or "").to_controls(N_SLIDERS)


@user_errors
def state_from_file(path):
    if path is None:
        raise UserError("Upload a PNG saved from this tab.")
    return task.state_from_png(path).to_json()


def seed_left(seed, state_text: str, w):
    """The projected latent stays only while the seed box still holds the seed it was shown with."""
    try:
        shown = json.loads(state_text or "{}").get("seed")
    except (TypeError, ValueError, AttributeError):
        shown = None
    return w if w is not None and shown is not None and shown == seed else None


def interpolation_seeds(seed):
    """Interpolate from the current seed to the next one."""
    try:
        a = int(seed)
    except (TypeError, ValueError, OverflowError):
        return gr.update(), gr.update()
    return a, a + 1


def _initial(name: str) -> tuple[str, str, str]:
    """The image (and its download) and state shown when a page loads (seed 0, ψ 0.7, no directions)."""
    state = task.ExploreState(model=name, seed=0, psi=0.7, directions=[0.0] * N_SLIDERS)
    path = _save(task.get_explorer(name).image(state), state, "explore")
    return path, path, state.to_json()


SHOWN = 3     # direction sliders shown; the rest are folded


def build() -> None:
    names = model_names()
    if not names:
        gr.Markdown("No explorer model is installed yet (train one: `python -m imgen.training.train_gan`).")
        return
    first = names[0]
    labels = slider_labels(first)
    w_state = gr.State(None)  # a projected latent, per browser session
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):   # first: on a phone the image comes before the controls
            image = gr.Image(label="Generated picture (the PNG carries its settings)", type="filepath",
                             format="png", interactive=False, height=DISPLAY, elem_id="explore-image",
                             buttons=["fullscreen"])
            with gr.Row():
                dice = gr.Button("New random face", variant="primary", scale=2, elem_id="explore-dice")
                download = gr.DownloadButton("Download PNG", scale=1, elem_id="explore-download")
        with gr.Column(scale=1, min_width=300):
            model = gr.Dropdown([(model_label(n), n) for n in names], value=first, label="Model",
                                elem_id="explore-model",
                                info="What the model learned to draw. GAN: sharper pictures. VAE: softer, but "
                                     "it turns any picture into its own version at once.")
            seed = gr.Number(0, precision=0, minimum=0, label="Seed (any whole number: each one is a different "
                             "face)", elem_id="explore-seed")
            psi = NumberSlider(*task.PSI_RANGE, value=0.7, step=0.05, label="Variety", elem_id="explore-psi",
                               info="Lower: closer to the average face, cleaner; 1: full variety (truncation ψ).")
            walk = NumberSlider(0, WALK_RANGE, value=0, step=0.01, label="Blend towards the next seeds",
                                elem_id="explore-walk",
                                info="0.5 = halfway between this seed and the next (a seed walk).")
            sliders = [NumberSlider(*task.SLIDER_RANGE, value=0, step=0.1, label=labels[k],
                                    info="Moves the face along one of the model's main directions of change."
                                    if k == 0 else None, elem_id=f"explore-dir-{k + 1}")
                       for k in range(SHOWN)]
            with gr.Accordion(f"More directions ({SHOWN + 1}–{N_SLIDERS})", open=False):
                sliders += [NumberSlider(*task.SLIDER_RANGE, value=0, step=0.1, label=labels[k],
                                         elem_id=f"explore-dir-{k + 1}") for k in range(SHOWN, N_SLIDERS)]
                gr.Markdown("Each slider moves along a principal component of the generator's style vector "
                            "(w), in standard deviations, strongest first.")
            reset = gr.Button("Reset the sliders", size="sm")
            with gr.Accordion("Settings as text (copy, download or load them to reproduce this picture)",
                              open=False, elem_id="explore-state-box"):
                state_json = gr.Code(label="Settings (JSON)", language="json", interactive=True,
                                     buttons=["copy", "download"], elem_id="explore-state", max_lines=8)
                with gr.Row():
                    apply = gr.Button("Apply these settings", size="sm", elem_id="explore-apply")
                    png_state = gr.UploadButton("Load settings from a PNG", file_types=[".png"], size="sm")
    starting = gr.Examples(EXAMPLES, [seed, walk, psi, *sliders[:3]], label="Starting points",
                           example_labels=EXAMPLE_LABELS)
    with gr.Tab("Variations"):
        spread = NumberSlider(0, 3, value=1.0, step=0.1, label="How different",
                              info="Spread around this picture along the directions, in standard deviations.")
        vary = gr.Button("Show 16 variations of this picture", variant="primary", elem_id="explore-vary")
        grid = gr.Image(label="Variations (top left: the current picture)", type="filepath", format="png",
                        interactive=False)
    with gr.Tab("Interpolate"):
        with gr.Row():
            seed_a = gr.Number(0, precision=0, minimum=0, label="From seed", elem_id="explore-seed-a")
            seed_b = gr.Number(1, precision=0, minimum=0, label="To seed", elem_id="explore-seed-b")
            frames = NumberSlider(2, task.MAX_FRAMES, value=48, step=1, label="Frames")
        go = gr.Button("Make an animation (GIF)", variant="primary", elem_id="explore-go")
        gif = gr.Image(label="Animation (GIF)", type="filepath", interactive=False)
        strip = gr.Image(label="Frames", type="filepath", format="png", interactive=False)
    with gr.Tab("Project your picture"):
        with gr.Row():
            picture = ImageUpload(label="Your picture (the centre square is used)", sources=["upload", "clipboard"],
                                  height=256)
            steps = NumberSlider(0, 500, value=100, step=10, label="Refinement steps",
                                 info="Models with an encoder show their guess at once; these steps then refine it.")
        proj = gr.Button("Find it in the model", variant="primary")
        pair = gr.ImageSlider(label="Your picture (as the model sees it) / the model's version", type="filepath",
                              format="png")
        proj_report = gr.Markdown()
    with gr.Tab("GAN vs VAE"):
        gr.Markdown("The same seeds through each family trained on the same faces: a GAN (sharp, learned by a "
                    "critic) and a VAE (learned by reconstruction: softer, but it can encode any picture).")
        compare_btn = gr.Button("Compare seeds seed … seed + 7", variant="primary")
        compare_out = gr.Gallery(label="Same seeds, each model", columns=1, object_fit="contain", height="auto")

    controls = [model, seed, walk, psi, *sliders]
    outs = [image, download, state_json]
    private = dict(api_visibility="private")
    live = dict(fn=sample, inputs=[*controls, w_state], outputs=outs, show_progress="hidden",
                trigger_mode="always_last", concurrency_limit=4, concurrency_id="explore")
    gr.on([model.change, psi.release, walk.release, *[s.release for s in sliders]], api_name="sample", **live)
    walk.change(**live, **private)  # live preview while dragging
    # the seed box: Enter or leaving it (a projected picture is kept while the seed is the one it was shown with)
    gr.on([seed.submit, seed.blur], seed_left, [seed, state_json, w_state], w_state, **private).then(**live, **private)
    seed.change(interpolation_seeds, seed, [seed_a, seed_b], **private)
    dice.click(lambda: (random.randrange(2 ** 31), None), None, [seed, w_state], **private).then(**live, **private)
    reset.click(lambda: [0.0] * N_SLIDERS, None, sliders, **private).then(**live, **private)
    model.change(lambda m: [gr.update(label=lab) for lab in slider_labels(m)], model, sliders, **private)
    # a bad state is one message (the check has no outputs); a good one sets the controls, then the picture
    apply.click(check_state, state_json, None, **private).success(
        apply_state, state_json, [*controls, w_state], api_name="apply_state").then(**live, **private)
    png_state.upload(state_from_file, png_state, state_json, **private).success(check_state, state_json, None,
                                                                                 **private).success(
        apply_state, state_json, [*controls, w_state], **private).then(**live, **private)
    # a starting point sets some controls: the rest go back to 0, the projected picture is left, the picture follows
    starting.load_input_event.then(lambda: [None, *[0.0] * (N_SLIDERS - 3)], None, [w_state, *sliders[3:]],
                                   **private).then(**live, **private)
    vary.click(variations, [model, seed, walk, psi, spread, *sliders, w_state], grid, api_name="variations",
               concurrency_limit=2, concurrency_id="explore")
    go.click(interpolate, [model, seed_a, seed_b, frames, psi], [gif, strip], api_name="interpolate",
             concurrency_limit=1, concurrency_id="model")
    proj.click(project, [model, picture, steps], [pair, state_json, w_state, proj_report], api_name="project",
               concurrency_limit=1, concurrency_id="model").then(
        lambda: [0.0] * N_SLIDERS, None, sliders, **private).then(**live, **private)
    compare_btn.click(compare_families, [seed, psi], compare_out, api_name="compare",
                      concurrency_limit=2, concurrency_id="explore")
    # the first picture, per page load (a private event: no /lambda endpoint on the API page)
    gr.context.Context.root_block.load(lambda: _initial(first), None, outs, **private)
    gr.Examples([[sample_image("astronaut.png")], [sample_image("coffee.png")]], [picture],
                label="Pictures to project", example_labels=["astronaut", "coffee"])
