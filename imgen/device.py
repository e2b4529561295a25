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


def use_half(device: torch.device) -> bool:
    """Half precision is used on CUDA when IMGEN_HALF=1 (off by default: it costs quality at low sigma)."""
    return device.type == "cuda" and os.environ.get("IMGEN_HALF", "0") == "1"
