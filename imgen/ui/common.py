"""Helpers shared by the tabs: output files, user-facing errors, progress, example images, GPU decorator."""
from __future__ import annotations

import contextlib
import functools
import html
import inspect
import os
import sys
import tempfile
import time
import traceback
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

from .. import cancel
from ..image_io import ImageInputError, declared_pixels, load_image, max_pixels, megapixels
from ..store import StoreError

try:  # Hugging Face Spaces (ZeroGPU): must be imported before anything initialises CUDA
    import spaces
    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_):
        return fn if callable(fn) else (lambda f: f)


MAX_LAYERS = 4             # ImageEditor layers per request (the Inpaint editor sends one)
EDITOR_PIXEL_SHARE = 3     # background + layers + composite: at most this many times the pixel limit together
MAX_MESSAGE = 400          # characters of an error message shown to the user


class UserError(gr.Error):
    """A ``gr.Error`` for the user's mistake: the message reaches the page or client, the server log gets no
    traceback (Gradio prints one for every ``gr.Error`` unless told otherwise; logs are for real faults)."""

    def __init__(self, message: str = "Error raised.", **kwargs):
        kwargs.setdefault("print_exception", False)
        super().__init__(message, **kwargs)


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def short_message(message) -> str:
    """An error message at most ``MAX_MESSAGE`` characters long (a 10 MB name is not echoed back whole)."""
    text = str(message)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 100] + " … " + text[-97:]


def escape_error_messages() -> None:
    """Make every error message the app sends HTML-escaped and short, Gradio's own included ("Value: … is not in
    the list of choices" echoes what the client sent). Gradio's toasts render a message as HTML, so a model name
    in a state PNG showed a working link and password form. Installed once, by the app (app.py)."""
    import gradio.queueing
    import gradio.utils
    original = gradio.utils.error_payload
    if getattr(original, "imgen_escapes", False):
        return

    def error_payload(error, show_error):
        content = original(error, show_error)
        if isinstance(content.get("error"), str):
            content["error"] = html.escape(short_message(content["error"]), quote=False)
        return content
    error_payload.imgen_escapes = True
    gradio.utils.error_payload = gradio.queueing.error_payload = error_payload


def max_upload_bytes() -> int:
    """The upload size limit: any 8-bit RGBA image at the pixel limit fits even uncompressed, plus 16 MiB for
    metadata (``IMGEN_MAX_UPLOAD_BYTES`` overrides it)."""
    return int(os.environ.get("IMGEN_MAX_UPLOAD_BYTES", 0)) or max_pixels() * 4 + (16 << 20)


def refuse_url_fetches() -> None:
    """Refuse, before any network call, a FileData whose path is a URL, for every component of the app: Gradio
    would resolve the host and download a public URL (with no size cap) into its cache before any handler ran,
    and an image app has no reason to fetch URLs. Installed once, by the app (app.py)."""
    from gradio.blocks import Block
    from gradio_client.utils import is_http_url_like
    if getattr(Block.move_resource_to_block_cache, "imgen_refuses_urls", False):
        return
    move, async_move = Block.move_resource_to_block_cache, Block.async_move_resource_to_block_cache

    def refuse(path) -> None:
        if isinstance(path, str) and (is_http_url_like(path) or "://" in path):
            raise UserError("Files must be uploaded to this app; URLs are not fetched.")

    def move_resource_to_block_cache(self, url_or_file_path):
        refuse(url_or_file_path)
        return move(self, url_or_file_path)

    async def async_move_resource_to_block_cache(self, url_or_file_path):
        refuse(url_or_file_path)
        return await async_move(self, url_or_file_path)
    move_resource_to_block_cache.imgen_refuses_urls = True
    Block.move_resource_to_block_cache = move_resource_to_block_cache
    Block.async_move_resource_to_block_cache = async_move_resource_to_block_cache


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
            raise UserError(f"Expected {expected}, not {_short(obj)}.") from None
    return type(model.__name__, (model,), {"model_validate": classmethod(model_validate),
                                           "__module__": model.__module__})


def uploaded_path(path) -> str:
    """``path`` if it is a file uploaded to this app (inside Gradio's upload folder), else a gr.Error.

    A payload without Gradio's file marker skips Gradio's own check, so ``{"path": "/etc/passwd"}`` sent to
    the API used to reach the handler, which read the server's file and returned its pixels.
    """
    if not path:
        raise UserError("The image must be uploaded as a file.")
    try:
        inside = Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise UserError("The image must be a file uploaded to this app; paths on the server are not accepted.")
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

    def preprocess(self, payload):
        """Bound the request before anything is decoded: at most ``MAX_LAYERS`` layers, and the declared sizes of
        all its images together at most ``EDITOR_PIXEL_SHARE`` times the pixel limit (each layer alone passes
        the limit, and Gradio decodes every one of them to RGBA before the handler runs)."""
        src = payload if payload is None or payload.id is None else self.blob_storage.get(payload.id)
        if src is not None:
            layers = src.layers or []
            if len(layers) > MAX_LAYERS:
                raise UserError(f"The image editor sent {len(layers)} layers; at most {MAX_LAYERS} are accepted.")
            total = sum(_declared_pixels(f) for f in [src.background, *layers, src.composite])
            limit = EDITOR_PIXEL_SHARE * max_pixels()
            if total > limit:
                raise UserError(f"The image editor's images hold {megapixels(total)} megapixels together; the limit "
                               f"is {megapixels(limit)}. Please downscale the photo first.")
        return super().preprocess(payload)

    def convert_and_format_image(self, file, flatten_on_white: bool = False):
        if file is None:
            return None
        src = file.path if isinstance(file, FileData) else bytes(file)
        mode = self.image_mode if self.image_mode in ("RGBA", "RGB", "L", "LA") else None
        try:
            img = load_image(src, mode=mode)
        except ImageInputError as e:
            raise UserError(str(e)) from None
        if self.type == "numpy":
            return np.asarray(img)
        if self.type == "pil":
            return img
        path = Path(get_upload_folder()) / "imgen-editor" / f"{uuid.uuid4().hex}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        return str(path)


def _declared_pixels(file) -> int:
    """Pixels an uploaded editor file (FileData or bytes) declares in its header; nothing is decoded."""
    if isinstance(file, FileData):
        file = file.path
    return declared_pixels(file) if file else 0


class NumberSlider(gr.Slider):
    """A ``gr.Slider`` whose API input must be a finite number: a string, null or NaN sent to the API is a
    sentence for the user (Gradio's range check raised a TypeError there, which reached the client as the
    generic "the upstream Gradio app has raised an exception" message, or let NaN through)."""

    is_template = True  # render with the stock Slider frontend

    def preprocess(self, payload):
        if isinstance(payload, bool) or not isinstance(payload, (int, float)) or not np.isfinite(payload):
            raise UserError(f"“{self.label or 'value'}” must be a number from {self.minimum:g} to "
                           f"{self.maximum:g}, not {_short(payload)}.")
        return super().preprocess(payload)


def chosen(value: str | None, choices: dict[str, str], what: str) -> str:
    """A dropdown or radio value (its label, or the name behind a label; None: the first) as the name behind it.
    Anything else is a ``gr.Error`` that lists the labels."""
    value = value or next(iter(choices))
    name = choices.get(value, value)
    if name not in choices.values():
        raise UserError(f"Unknown {what} {value!r}; choose one of: {', '.join(choices)}.")
    return name


def output_dir() -> Path:
    """Where result PNGs are written: Gradio's temp dir (cleaned by the app's delete_cache)."""
    d = Path(os.environ.get("GRADIO_TEMP_DIR", Path(tempfile.gettempdir()) / "gradio")) / "imgen-results"
    d.mkdir(parents=True, exist_ok=True)
    return d


def result_path(stem: str, suffix: str = ".png") -> Path:
    """A fresh file name for a result in :func:`output_dir`: ``<stem>-<10 hex digits><suffix>`` (the one naming
    of every file the tabs hand to Gradio)."""
    return output_dir() / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"


def save_png(img: Image.Image, stem: str) -> str:
    """Save losslessly (mode and alpha kept) and return the path, which Gradio serves as-is."""
    path = result_path(stem)
    img.save(path, format="PNG", compress_level=1)
    return str(path)


def request_gone() -> Callable[[], str | None] | None:
    """For a handler running in Gradio's queue: a function that says whether its request is over (cancelled,
    so the queue has dropped its event, or its client disconnected); None outside the queue."""
    from gradio.context import LocalContext
    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    if queue is None or not event_id or event_id not in queue.event_ids_to_events:
        return None

    def gone() -> str | None:
        event = queue.event_ids_to_events.get(event_id)
        if event is None:
            return "the request was cancelled"
        if not event.alive:
            return "the client went away"
        return None
    return gone


def _user_error(e: Exception, handler: str) -> gr.Error:
    """The sentence a handler's failure becomes (called while handling ``e``): a :class:`UserError`, so Gradio logs
    no traceback; an unexpected failure's own traceback is logged here, once."""
    if isinstance(e, gr.Error):
        return UserError(short_message(e.message), duration=e.duration, visible=e.visible, title=e.title)
    if isinstance(e, cancel.Cancelled):
        print(f"imgen: {handler} stopped: {e}", file=sys.stderr)
        return UserError(f"Stopped: {e}.")
    if isinstance(e, (ImageInputError, StoreError)):
        return UserError(short_message(e))
    if isinstance(e, ValueError):
        return UserError(short_message(f"Invalid input: {e}"))
    if isinstance(e, MemoryError):
        return UserError("Out of memory for this image: try a smaller image or processing size.")
    traceback.print_exc()  # a bug or a library failure: still a sentence, with the trace logged
    return UserError(f"The request failed unexpectedly ({type(e).__name__}). Please try another image or "
                    "setting; if it keeps happening, report it.")


def _watched(gone):
    return cancel.watching(gone) if gone is not None else contextlib.nullcontext()


def user_errors(fn: Callable) -> Callable:
    """Run a handler for a user: its user-facing exceptions become gr.Error (a sentence in the UI, AppError in the
    client), every message is shortened (:func:`short_message`; the app escapes them), anything unexpected is a
    sentence, and the work stops at the next checkpoint once the request is cancelled or its client goes away
    (:mod:`imgen.cancel`). Works for handlers that return and for handlers that yield (streamed results; each
    step is watched on its own, as Gradio may run the steps in different threads)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            gone = request_gone()
            steps = fn(*args, **kwargs)
            while True:
                try:
                    with _watched(gone):
                        item = next(steps)
                except StopIteration:
                    return
                except Exception as e:  # noqa: BLE001 - every failure becomes a sentence
                    raise _user_error(e, fn.__name__) from None
                yield item
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        gone = request_gone()
        try:
            with _watched(gone):
                return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure becomes a sentence
            raise _user_error(e, fn.__name__) from None
    return wrapper


def took(started: float, computed: float) -> str:
    """How long the user waited, for a report: the handler's wall time since ``started`` (``time.perf_counter()``
    when it began: reading the upload, the work, writing the results), with the compute time beside it."""
    waited = time.perf_counter() - started
    return f"**{waited:.2f} s**, {computed:.2f} s of it computing"


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
