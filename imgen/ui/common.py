"""Helpers shared by the tabs: output files, user-facing errors, progress, example images, GPU decorator."""
from __future__ import annotations

import functools
import inspect
import os
import tempfile
import uuid
from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np
from gradio.components.image_editor import EditorData
from gradio.data_classes import FileData, ImageData
from gradio.utils import get_upload_folder
from PIL import Image
from pydantic import ValidationError

from ..image_io import ImageInputError, load_image
from ..store import StoreError

try:  # Hugging Face Spaces (ZeroGPU): must be imported before anything initialises CUDA
    import spaces
    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_):
        return fn if callable(fn) else (lambda f: f)


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _checked(model: type, expected: str) -> type:
    """``model`` (a component's data model) whose validation failure is a sentence for the user.

    Gradio validates an API payload against the data model before any preprocessing or handler runs; a
    string or number sent where a file is expected then reached the client as the generic "the upstream
    Gradio app has raised an exception" message. The JSON schema (``view_api``) is unchanged.
    """
    def model_validate(cls, obj, *args, **kwargs):
        try:
            return model.model_validate(obj, *args, **kwargs)
        except ValidationError:
            raise gr.Error(f"Expected {expected}, not {_short(obj)}.") from None
    return type(model.__name__, (model,), {"model_validate": classmethod(model_validate),
                                           "__module__": model.__module__})


def uploaded_path(path) -> str:
    """``path`` if it is a file uploaded to this app (inside Gradio's upload folder), else a gr.Error.

    A payload without Gradio's file marker skips Gradio's own check, so ``{"path": "/etc/passwd"}`` sent to
    the API used to reach the handler, which read the server's file and returned its pixels.
    """
    if not path:
        raise gr.Error("The image must be uploaded as a file.")
    try:
        inside = Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise gr.Error("The image must be a file uploaded to this app; paths on the server are not accepted.")
    return str(path)


class ImageUpload(gr.Image):
    """A ``gr.Image`` whose handler gets the uploaded file's path, undecoded.

    Gradio's own preprocessing would decode the file and fail with a generic error on a corrupt upload or a
    decompression bomb; here :mod:`imgen.image_io` reads it (EXIF, every mode, size limits, clear messages).
    Only files uploaded to the app are accepted (see :func:`uploaded_path`).
    """

    is_template = True  # render with the stock Image frontend
    data_model = _checked(ImageData, "an uploaded image file")

    def __init__(self, **kwargs):
        super().__init__(type="filepath", image_mode=None, **kwargs)

    def preprocess(self, payload):
        return None if payload is None else uploaded_path(payload.path)

    def get_config(self, cls=None):
        # Gradio builds the props sent to the browser from the parameters of ``cls.__init__``; ours takes only
        # **kwargs, so without this the frontend got no label, sources, buttons, ... and threw
        # "Cannot read properties of undefined (reading 'some')" on ``props.buttons`` when the tab was rendered.
        return super().get_config(cls or gr.Image)


class MaskEditor(gr.ImageEditor):
    """A ``gr.ImageEditor`` (use it with ``gr.ImageMask``'s settings) whose images are decoded by
    :mod:`imgen.image_io`: clear messages for corrupt files and size limits (the pixel limit is checked before
    decoding), EXIF orientation applied, 16-bit / CMYK / palette images converted correctly (Gradio's own
    ``convert("RGBA")`` clipped 16-bit PNGs to white).
    """

    is_template = True  # render with the stock ImageEditor frontend
    data_model = _checked(EditorData, 'an image editor value {"background": file, "layers": [files], '
                                      '"composite": file or null}')

    def convert_and_format_image(self, file, flatten_on_white: bool = False):
        if file is None:
            return None
        src = file.path if isinstance(file, FileData) else bytes(file)
        mode = self.image_mode if self.image_mode in ("RGBA", "RGB", "L", "LA") else None
        try:
            img = load_image(src, mode=mode)
        except ImageInputError as e:
            raise gr.Error(str(e)) from None
        if self.type == "numpy":
            return np.asarray(img)
        if self.type == "pil":
            return img
        path = Path(get_upload_folder()) / "imgen-editor" / f"{uuid.uuid4().hex}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        return str(path)


class NumberSlider(gr.Slider):
    """A ``gr.Slider`` whose API input must be a finite number: a string, null or NaN sent to the API is a
    sentence for the user (Gradio's range check raised a TypeError there, which reached the client as the
    generic "the upstream Gradio app has raised an exception" message, or let NaN through)."""

    is_template = True  # render with the stock Slider frontend

    def preprocess(self, payload):
        if isinstance(payload, bool) or not isinstance(payload, (int, float)) or not np.isfinite(payload):
            raise gr.Error(f"“{self.label or 'value'}” must be a number from {self.minimum:g} to "
                           f"{self.maximum:g}, not {_short(payload)}.")
        return super().preprocess(payload)


def chosen(value: str | None, choices: dict[str, str], what: str) -> str:
    """A dropdown or radio value (its label, or the name behind a label; None: the first) as the name behind it.
    Anything else is a ``gr.Error`` that lists the labels."""
    value = value or next(iter(choices))
    name = choices.get(value, value)
    if name not in choices.values():
        raise gr.Error(f"Unknown {what} {value!r}; choose one of: {', '.join(choices)}.")
    return name


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


def _user_error(e: Exception) -> Exception:
    """The gr.Error a package exception becomes, or ``e`` itself when it is not the user's to see."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, (ImageInputError, StoreError)):
        return gr.Error(str(e))
    if isinstance(e, ValueError):
        return gr.Error(f"Invalid input: {e}")
    if isinstance(e, MemoryError):
        return gr.Error("Out of memory for this image: try a smaller image or processing size.")
    return e


def user_errors(fn: Callable) -> Callable:
    """Turn the package's user-facing exceptions into gr.Error (a sentence in the UI, AppError in the client).
    Works for handlers that return and for handlers that yield (streamed results)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, MemoryError, ImageInputError, StoreError) as e:
                raise _user_error(e) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, MemoryError, ImageInputError, StoreError) as e:
            raise _user_error(e) from None
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
