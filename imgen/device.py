"""Pick the compute device and thread counts. CUDA -> MPS -> CPU, overridable by IMGEN_DEVICE / --device."""
from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` (e.g. "cpu", "cuda", "cuda:1", "mps") or IMGEN_DEVICE, else the best available."""
    name = requested or os.environ.get("IMGEN_DEVICE") or ""
    if name and name != "auto":
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise RuntimeError(f"device {name!r} is not a device name (try cpu, cuda, cuda:1 or mps)") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was asked for, but CUDA is not available here")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {name!r} was asked for, but this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {name!r} was asked for, but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_count() -> int:
    """CPUs this process may use (respects affinity / container limits where the OS reports them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def configure_threads(n: int | None = None) -> int:
    """Intra-op threads = usable CPUs (or IMGEN_THREADS), inter-op 1; also OpenCV's pool."""
    n = n or int(os.environ.get("IMGEN_THREADS", "0")) or cpu_count()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    try:
        import cv2
        cv2.setNumThreads(n)
    except ImportError:
        pass
    return n


PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision CUDA inference runs in under autocast: ``IMGEN_PRECISION=fp16`` or ``bf16``
    (``IMGEN_HALF=1`` is ``fp16``); None (full fp32, the default: half costs quality at low sigma) otherwise,
    and always on CPU/MPS. The modules' weights stay fp32 (cached modules are shared; nothing is converted)."""
    if device.type != "cuda":
        return None
    name = os.environ.get("IMGEN_PRECISION") or ("fp16" if os.environ.get("IMGEN_HALF", "0") == "1" else "fp32")
    if name not in PRECISIONS:
        raise RuntimeError(f"IMGEN_PRECISION={name!r}: use one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


def whole_image_fits(device: torch.device, pixels: int, bytes_per_pixel: int, free_bytes: int | None = None) -> bool:
    """Whether a GPU has the memory to run an image of ``pixels`` in one piece (peak ``bytes_per_pixel`` per
    input pixel, measured per model) with room to spare; never on CPU, where tiles keep the peak RSS low."""
    if device.type != "cuda":
        return False
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return pixels * bytes_per_pixel < 0.7 * free_bytes
