"""Explore: turn an explorer state (model, seed, truncation, direction sliders) into images, and back.

- A seed is a whole number >= 0; ``z = numpy.random.default_rng(seed).standard_normal(z_dim)``, so the same
  seed gives the same latent on every machine. A fractional seed (the "seed walk") is the spherical
  interpolation between the latents of its two neighbouring whole seeds.
- ``w = w_avg + psi * (mapping(z) - w_avg)`` (truncation), then each direction slider adds
  ``value * std_k * direction_k`` (GANSpace: principal components of w, in standard deviations).
- A projected image carries its own ``w`` in the state instead of a seed.
- The state is JSON (:meth:`ExploreState.to_json`) and rides along in the PNG metadata of downloads, so a
  picture can be reproduced exactly from itself.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from PIL import Image, PngImagePlugin

from ..cancel import checkpoint
from ..image_io import open_image, to_uint8
from ..runtime import ModelRunner

DEFAULT_MODEL = "kaokore-gan"
STATE_KEY = "imgen-explore"          # PNG text chunk holding the state JSON
STATE_FORMAT = "imgen-explore/1"
DISPLAY_SIZE = 256
PSI_RANGE = (0.0, 1.5)
SLIDER_RANGE = (-5.0, 5.0)           # direction values, in standard deviations
MAX_FRAMES = 240

Progress = Callable[[int, int], None]


class ExploreError(ValueError):
    """A user-facing problem with explorer input (bad seed, state JSON, ...); the message is a sentence."""


# ------------------------------------------------------------------------------------------------ state
@dataclass
class ExploreState:
    model: str = DEFAULT_MODEL
    seed: float = 0.0
    psi: float = 0.7
    directions: list[float] = field(default_factory=list)
    w: list[float] | None = None     # a projected latent; when set, seed and psi are not used

    @classmethod
    def from_controls(cls, model: str, seed, walk, psi, directions, w=None) -> "ExploreState":
        """The state the tab's controls show: a whole ``seed`` plus the ``walk`` towards the next seeds (a whole
        walk gives a whole seed), ``psi``, the direction values and a projected ``w``; validated."""
        seed = check_seed(seed)
        if isinstance(seed, float):
            raise ExploreError(f"The seed must be a whole number (got {seed:g}); use the walk slider for "
                               "fractional steps.")
        walk = float(walk)
        total = seed + int(walk) if walk.is_integer() else seed + walk
        return cls(model=model, seed=total, psi=psi, directions=[float(d) for d in directions], w=w).validate()

    def to_controls(self, n_directions: int) -> list:
        """The inverse of :meth:`from_controls`: [model, whole seed, walk, psi, n direction values, w]."""
        seed = self.seed
        base, walk = (seed, 0.0) if isinstance(seed, int) else (int(seed // 1), float(seed - seed // 1))
        dirs = (list(self.directions) + [0.0] * n_directions)[:n_directions]
        return [self.model, base, walk, self.psi, *dirs, self.w]

    def to_json(self) -> str:
        d = {"format": STATE_FORMAT, **asdict(self)}
        if d["w"] is None:
            del d["w"]
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str | dict) -> "ExploreState":
        try:
            d = json.loads(text) if isinstance(text, str) else dict(text)
        except (TypeError, ValueError) as e:
            raise ExploreError(f"The state is not valid JSON ({e}).") from None
        except RecursionError:
            raise ExploreError("The state is nested too deeply to be read; it must be a flat JSON object.") from None
        if not isinstance(d, dict):
            raise ExploreError("The state must be a JSON object like the one shown under the image.")
        d.pop("format", None)
        unknown = set(d) - {"model", "seed", "psi", "directions", "w"}
        if unknown:
            raise ExploreError(f"The state has unknown keys: {', '.join(sorted(unknown))}.")
        s = cls(**d)
        s.validate()
        return s

    def validate(self) -> "ExploreState":
        if not isinstance(self.model, str) or not self.model:
            raise ExploreError("The state must name a model.")
        self.seed = check_seed(self.seed)
        self.psi = _finite(self.psi, "ψ (truncation)", *PSI_RANGE)
        if not isinstance(self.directions, (list, tuple)):
            raise ExploreError("'directions' must be a list of numbers (one per slider).")
        self.directions = [_finite(v, f"direction {i + 1}", *SLIDER_RANGE) for i, v in enumerate(self.directions)]
        if self.w is not None:
            if not isinstance(self.w, (list, tuple)) or not self.w:
                raise ExploreError("'w' must be a list of numbers (a projected latent).")
            self.w = [_finite(v, "w", -1e4, 1e4) for v in self.w]
        return self


def _finite(v, what: str, lo: float, hi: float) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ExploreError(f"{what} must be a number, not {v!r}.") from None
    if not math.isfinite(f):
        raise ExploreError(f"{what} must be a finite number, not {v!r}.")
    if not lo <= f <= hi:
        raise ExploreError(f"{what} must be between {lo:g} and {hi:g} (got {f:g}).")
    return f


def check_seed(seed) -> float:
    """A seed as a float >= 0 (fractional = seed walk). Huge whole seeds are fine; NaN, negatives, text are not."""
    if isinstance(seed, bool):
        raise ExploreError("The seed must be a number.")
    if isinstance(seed, int):
        if seed < 0:
            raise ExploreError(f"The seed must be 0 or more (got {seed}).")
        return seed  # keep big ints exact
    try:
        f = float(seed)
    except (TypeError, ValueError, OverflowError):
        raise ExploreError(f"The seed must be a whole number of 0 or more, not {seed!r}.") from None
    if not math.isfinite(f) or f < 0:
        raise ExploreError(f"The seed must be a finite number of 0 or more (got {seed!r}).")
    return int(f) if f.is_integer() else f


# ------------------------------------------------------------------------------------------------ latents
def z_for_seed(seed: int, dim: int) -> np.ndarray:
    return np.random.default_rng(int(seed)).standard_normal(dim).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    cos = np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0)
    omega = math.acos(cos)
    if omega < 1e-6:
        return ((1 - t) * a64 + t * b64).astype(np.float32)
    out = (math.sin((1 - t) * omega) * a64 + math.sin(t * omega) * b64) / math.sin(omega)
    return out.astype(np.float32)


def z_for_walk(seed: float, dim: int) -> np.ndarray:
    """Whole seeds give their own latent exactly; fractional ones slerp between floor and floor + 1."""
    seed = check_seed(seed)
    if isinstance(seed, int):
        return z_for_seed(seed, dim)
    lo = int(math.floor(seed))
    t = seed - lo
    return slerp(z_for_seed(lo, dim), z_for_seed(lo + 1, dim), t)


# ------------------------------------------------------------------------------------------------ model
class _Synthesis(torch.nn.Module):
    """w -> uint8-ready images in 0..255 (the part worth exporting to ONNX)."""

    def __init__(self, g):
        super().__init__()
        self.g = g

    def forward(self, w):
        return (self.g(w) + 1) * 127.5


class SynthesisRunner(ModelRunner):
    """A generator's synthesis, a batch of w (N, w_dim) -> images (N, 3, size, size) on 0..255, through the
    one runner layer (ONNX Runtime on CPU with a variable batch, PyTorch under autocast elsewhere)."""

    what = "generator"
    input_names = ("w",)
    dynamic_axes = {"w": {0: "n"}, "out": {0: "n"}}

    def __init__(self, generator: torch.nn.Module, backend: str | None = None):
        self.w_dim = generator.config.w_dim
        super().__init__(_Synthesis(generator).eval(), backend)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(2, self.w_dim),)


class Explorer:
    """A loaded generator with its directions; renders states. Stateless per call (safe to share)."""

    def __init__(self, module: torch.nn.Module, name: str = DEFAULT_MODEL, backend: str | None = None,
                 encoder: torch.nn.Module | None = None):
        self.module, self.name = module, name
        self.encoder = encoder  # image -> w for a GAN (a VAE encodes with its own encoder)
        self.device = next(module.parameters()).device
        cfg = module.config
        self.z_dim, self.w_dim = cfg.z_dim, cfg.w_dim
        self.size = module.resolution
        self.w_avg = module.w_avg.detach().float().cpu().numpy()
        self.dirs = module.directions.detach().float().cpu().numpy()
        self.std = module.direction_std.detach().float().cpu().numpy()
        self.synthesis = SynthesisRunner(module, backend)

    @property
    def backend(self) -> str:
        return self.synthesis.backend

    @property
    def family(self) -> str:
        """"VAE" for a model that encodes pictures itself, else "GAN"."""
        return "VAE" if hasattr(self.module, "encode") else "GAN"

    @property
    def can_encode(self) -> bool:
        return self.encoder is not None or self.family == "VAE"

    def encode(self, images_u8: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) uint8 -> (N, w_dim): the encoder's w (a VAE's posterior mean) in one pass."""
        if not self.can_encode:
            raise ExploreError(f"Model {self.name} has no encoder; project with optimisation steps instead.")
        x = ModelRunner.batch_tensor(images_u8, 1 / 127.5, -1.0)
        with torch.inference_mode():
            x = x.to(self.device)
            w = self.module.encode(x)[0] if self.encoder is None else self.encoder(x)
        return w.float().cpu().numpy()

    @property
    def n_directions(self) -> int:
        return int((self.std > 0).sum()) or len(self.std)

    # -- latents
    def mapping(self, z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module.mapping(torch.from_numpy(np.atleast_2d(z)).to(self.device)).float().cpu().numpy()

    def w_for(self, state: ExploreState) -> np.ndarray:
        """The state's final w (w_dim,): projected w or truncated mapping(z(seed)), plus slider offsets."""
        state.validate()
        if state.w is not None:
            w = np.asarray(state.w, np.float32)
            if w.shape != (self.w_dim,):
                raise ExploreError(f"The state's w has {w.size} numbers; model {self.name} needs {self.w_dim}.")
        else:
            w = self.w_avg + state.psi * (self.mapping(z_for_walk(state.seed, self.z_dim))[0] - self.w_avg)
        return (w + self.offset(state.directions)).astype(np.float32)

    def offset(self, values) -> np.ndarray:
        v = np.zeros(len(self.std), np.float32)
        vals = np.asarray(values, np.float32)[: len(v)]
        v[: len(vals)] = vals
        return (v * self.std) @ self.dirs

    # -- images
    def render(self, ws: np.ndarray) -> np.ndarray:
        """(N, w_dim) -> (N, size, size, 3) uint8."""
        ws = np.ascontiguousarray(np.atleast_2d(ws), np.float32)
        return to_uint8(self.synthesis.run(torch.from_numpy(ws)).numpy()).transpose(0, 2, 3, 1)

    def image(self, state: ExploreState) -> np.ndarray:
        return self.render(self.w_for(state)[None])[0]

    def variations(self, state: ExploreState, n: int = 16, spread: float = 1.0, seed: int = 0) -> np.ndarray:
        """The current image first, then ``n - 1`` neighbours: random offsets along the directions (in σ)."""
        n = int(np.clip(n, 1, 64))
        spread = _finite(spread, "spread", 0.0, 5.0)
        base = self.w_for(state)
        rng = np.random.default_rng(int(seed))
        offs = rng.standard_normal((n - 1, len(self.std))).astype(np.float32) * spread
        ws = np.concatenate([base[None], base[None] + (offs * self.std) @ self.dirs])
        return self.render(ws)

    def interpolate(self, seed_a, seed_b, frames: int = 48, psi: float = 0.7, directions=()) -> np.ndarray:
        """Frames of the slerp from seed A's latent to seed B's (both ends exactly the seeds' images)."""
        frames = int(_finite(frames, "frames", 2, MAX_FRAMES))
        psi = _finite(psi, "ψ (truncation)", *PSI_RANGE)
        za, zb = z_for_walk(seed_a, self.z_dim), z_for_walk(seed_b, self.z_dim)
        zs = np.stack([slerp(za, zb, t) for t in np.linspace(0.0, 1.0, frames)])
        zs[0], zs[-1] = za, zb
        ws = self.w_avg + psi * (self.mapping(zs) - self.w_avg) + self.offset(directions)
        return np.concatenate([self._render_checked(ws[i:i + 32]) for i in range(0, len(ws), 32)])

    def _render_checked(self, ws: np.ndarray) -> np.ndarray:
        checkpoint()  # a cancelled request stops between chunks of frames
        return self.render(ws)

    # -- projection
    def project(self, image, steps: int = 150, lr: float = 0.05, progress: Progress | None = None,
                seed: int = 0, use_encoder: bool = True) -> tuple[ExploreState, np.ndarray, dict]:
        """Find w whose image matches ``image`` (any picture: centre-cropped to a square, resized).

        Starts from the encoder's guess when the model has one (else from w_avg), then ``steps`` of Adam on w
        against pixel MSE at full and half resolution (0 steps = the encoder's guess alone). Returns (state
        with w, the target as the model sees it (size, size, 3) uint8, report: start, errors, PSNR).
        """
        steps = int(_finite(steps, "steps", 0, 2000))
        target_u8 = to_model_input(image, self.size)
        target = ModelRunner.batch_tensor(target_u8[None], 1 / 127.5, -1.0).to(self.device)
        start = "encoder" if use_encoder and self.can_encode else "average"
        w0 = self.encode(target_u8[None]) if start == "encoder" else self.w_avg[None]
        w = torch.tensor(w0, device=self.device, requires_grad=True)
        # no optimiser for 0 steps (the encoder's guess alone): the first Adam of a process imports seconds of
        # torch's compiler stack
        opt = torch.optim.Adam([w], lr=lr) if steps else None

        def loss_of(img):
            return (torch.nn.functional.mse_loss(img, target)
                    + torch.nn.functional.mse_loss(torch.nn.functional.avg_pool2d(img, 2),
                                                   torch.nn.functional.avg_pool2d(target, 2)))
        with torch.enable_grad():
            first = best = None
            best_w = w.detach().clone()
            for i in range(steps):
                checkpoint()  # a cancelled request stops between steps
                loss = loss_of(self.module(w))
                val = float(loss.detach())
                first = val if first is None else first
                if best is None or val < best:
                    best, best_w = val, w.detach().clone()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if progress:
                    progress(i + 1, steps)
        with torch.inference_mode():
            final = float(loss_of(self.module(w.detach())))
        if best is None or final < best:
            best, best_w = final, w.detach().clone()
        first = final if first is None else first
        state = ExploreState(model=self.name, seed=0, psi=1.0, directions=[0.0] * self.n_directions,
                             w=[float(v) for v in best_w[0].cpu().numpy()])
        recon = self.render(best_w.cpu().numpy())[0]
        mse = float(np.mean((recon.astype(np.float64) - target_u8) ** 2))
        return state, target_u8, {"loss_start": first, "loss_end": best, "steps": steps, "start": start,
                                  "psnr": 10 * math.log10(255 ** 2 / max(mse, 1e-10))}


def to_model_input(image, size: int) -> np.ndarray:
    """Any picture -> (size, size, 3) uint8: alpha composited on white, centre square crop, area resize."""
    img = open_image(image) if not isinstance(image, np.ndarray) else Image.fromarray(image)
    rgba = np.asarray(img.convert("RGBA"), np.float32)
    rgb = rgba[..., :3] * (rgba[..., 3:] / 255) + 255 * (1 - rgba[..., 3:] / 255)
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    crop = rgb[y:y + s, x:x + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return to_uint8(cv2.resize(crop, (size, size), interpolation=interp))


ENCODER_TASK = "explore-encoder"     # registry task of image -> w encoders; config "generator" names their GAN


def encoder_name(generator: str) -> str | None:
    """The registry name of the encoder trained for ``generator``, if one is installed."""
    from ..store import entries_for_task
    return next((e.name for e in entries_for_task(ENCODER_TASK) if (e.config or {}).get("generator") == generator),
                None)


def get_explorer(name: str = DEFAULT_MODEL, device: str | None = None) -> Explorer:
    """The explorer of the registered generator ``name`` (with its encoder, when one is registered), kept by
    the store as long as it keeps the generator."""
    from ..store import default_store

    def build(module) -> Explorer:
        enc = encoder_name(name)
        return Explorer(module, name, encoder=default_store().load(enc, device=device) if enc else None)
    return default_store().runner(name, device, build, "explorer")


def compare(explorers: list[Explorer], seed: int, psi: float, n: int = 8) -> list[np.ndarray]:
    """One strip per model: seeds seed .. seed + n - 1 at truncation/temperature ``psi``, no direction offsets.
    The same seed draws the same z for every model, so a GAN's and a VAE's strips show the two families'
    answers to the same latent draws."""
    seed = check_seed(seed)
    if isinstance(seed, float):
        raise ExploreError(f"The seed must be a whole number (got {seed:g}).")
    n = int(_finite(n, "n", 1, 32))
    strips = []
    for ex in explorers:
        ws = [ex.w_for(ExploreState(model=ex.name, seed=seed + i, psi=psi)) for i in range(n)]
        strips.append(tile(ex.render(np.stack(ws)), cols=n))
    return strips


# ------------------------------------------------------------------------------------------------ output
def upscale(img: np.ndarray, size: int = DISPLAY_SIZE) -> Image.Image:
    """Crisp (nearest-neighbour) enlargement to ``size`` px (an integer factor when possible)."""
    pil = Image.fromarray(img)
    factor = max(1, int(size) // pil.width)
    return pil.resize((pil.width * factor, pil.height * factor), Image.NEAREST)


def tile(images: np.ndarray, cols: int | None = None, gap: int = 2) -> np.ndarray:
    n, h, w, c = images.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), 255, np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = im
    return out


def save_png(img: Image.Image, path: str | Path, state: ExploreState | None = None) -> Path:
    info = PngImagePlugin.PngInfo()
    if state is not None:
        info.add_text(STATE_KEY, state.to_json())
    img.save(path, format="PNG", pnginfo=info)
    return Path(path)


def state_from_png(path: str | Path) -> ExploreState:
    with Image.open(path) as im:
        text = (getattr(im, "text", None) or {}).get(STATE_KEY)
    if not text:
        raise ExploreError("This PNG carries no explorer state (it was not saved by imgen's Explore tab).")
    return ExploreState.from_json(text)


def save_gif(frames: np.ndarray, path: str | Path, fps: float = 24, size: int = DISPLAY_SIZE) -> Path:
    ims = []
    for f in frames:
        checkpoint()
        ims.append(upscale(f, size))
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=int(round(1000 / fps)), loop=0,
                optimize=False, disposal=1)
    return Path(path)


def frame_strip(frames: np.ndarray, n: int = 8) -> np.ndarray:
    idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    return tile(frames[idx], cols=len(idx))
