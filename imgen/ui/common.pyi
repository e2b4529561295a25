"""Helpers shared by the tabs: output files, user-facing errors, progress, example images, GPU decorator."""
from __future__ import annotations

import functools
import os
import tempfile
import uuid
from pathlib import Path
from typing import Callable

import gradio as gr
from PIL import Image

from ..image_io import ImageInputError
from ..store import StoreError

try:  # Hugging Face Spaces (ZeroGPU): must be imported before anything initialises CUDA
    import spaces
    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_):
        return fn if callable(fn) else (lambda f: f)

from gradio.events import Dependency

class ImageUpload(gr.Image):
    """A ``gr.Image`` whose handler gets the uploaded file's path, undecoded.

    Gradio's own preprocessing would decode the file and fail with a generic error on a corrupt upload or a
    decompression bomb; here :mod:`imgen.image_io` reads it (EXIF, every mode, size limits, clear messages).
    """

    is_template = True  # render with the stock Image frontend

    def __init__(self, **kwargs):
        super().__init__(type="filepath", image_mode=None, **kwargs)

    def preprocess(self, payload):
        return None if payload is None else payload.path
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


def output_dir() -> Path:
    """Where result PNGs are written: Gradio's temp dir (cleaned by the app's delete_cache)."""
    d = Path(os.environ.get("GRADIO_TEMP_DIR", Path(tempfile.gettempdir()) / "gradio")) / "imgen-results"
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_png(img: Image.Image, stem: str) -> str:
    """Save losslessly (mode and alpha kept) and return the path, which Gradio serves as-is."""
    path = output_dir() / f"{stem}-{uuid.uuid4().hex[:10]}.png"
    img.save(path, format="PNG", compress_level=1)
    return str(path)


def user_errors(fn: Callable) -> Callable:
    """Turn the package's user-facing exceptions into gr.Error (a sentence in the UI, AppError in the client)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ImageInputError, StoreError) as e:
            raise gr.Error(str(e)) from None
        except ValueError as e:
            raise gr.Error(f"Invalid input: {e}") from None
        except MemoryError:
            raise gr.Error("Out of memory for this image: try a smaller image or processing size.") from None
    return wrapper


def progress_callback(progress: gr.Progress, desc: str) -> Callable[[int, int], None]:
    def cb(done: int, total: int) -> None:
        progress((done, total), desc=desc, unit="tiles")
    return cb


def sample_image(name: str) -> str:
    """Path of a sample photo that scikit-image ships (astronaut.png, coffee.png, camera.png, ...)."""
    import skimage.data
    path = Path(skimage.data.__file__).parent / name
    if not path.exists():
        raise FileNotFoundError(path)
    return str(path)