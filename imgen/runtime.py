"""Fast CPU inference: run a loaded PyTorch module through ONNX Runtime.

The module (loaded from .safetensors) is exported to ONNX once, in-process, and cached on disk under
``IMGEN_CACHE`` (default ``~/.cache/imgen/onnx``) keyed by the weights' sha256, so later starts skip the
export. ONNX Runtime was 1.8-2x faster than PyTorch eager for our convnets on 2 CPU cores (measured; see
README). ``IMGEN_BACKEND=torch`` turns it off; on CUDA/MPS PyTorch is always used.
"""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import threading
import warnings
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .device import cpu_count

_LOCK = threading.Lock()


def onnx_wanted(device: torch.device) -> bool:
    if device.type != "cpu" or os.environ.get("IMGEN_BACKEND", "onnx") == "torch":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    return Path(os.environ.get("IMGEN_CACHE", Path.home() / ".cache" / "imgen")) / "onnx"


def _weights_key(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


class OnnxModule:
    """Callable like the module but on numpy float32 arrays: ``OnnxModule(m, inputs)(x, sigma) -> ndarray``.

    ``example_inputs`` are tensors used for the export; axes 2 and 3 of 4-D inputs (H, W) are dynamic unless
    ``dynamic_axes`` (torch.onnx.export's format, output named "out") says otherwise.
    """

    def __init__(self, module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], names: Sequence[str],
                 dynamic_axes: dict | None = None):
        import onnxruntime as ort

        self.names = list(names)
        path = cache_dir() / f"{module.__class__.__name__}-{_weights_key(module)}.onnx"
        with _LOCK:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                if dynamic_axes is not None:
                    dyn = dynamic_axes
                else:
                    dyn = {n: {2: "h", 3: "w"} for n, t in zip(self.names, example_inputs) if t.dim() == 4}
                    dyn["out"] = {2: "h", 3: "w"}
                fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
                os.close(fd)
                # a copy: the module may be the store's cached one, shared with callers on other devices
                export_module = copy.deepcopy(module).float().cpu().eval()
                torch.onnx.export(export_module, tuple(example_inputs), tmp, opset_version=17, dynamo=False,
                                  input_names=self.names, output_names=["out"], dynamic_axes=dyn)
                os.replace(tmp, path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(os.environ.get("IMGEN_THREADS", "0")) or cpu_count()
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ONNX Runtime's threads spin for a while after each run by default; on 2 cores that starves the PyTorch
        # or NumPy work that follows (e.g. the stylize brushwork pass). IMGEN_ORT_SPIN=1 turns spinning back on.
        so.add_session_config_entry("session.intra_op.allow_spinning", os.environ.get("IMGEN_ORT_SPIN", "0"))
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.path = path

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        feed = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.names, inputs)}
        return self.session.run(None, feed)[0]


def onnx_runner(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], names: Sequence[str], what: str,
                device: torch.device, backend: str | None = None, dynamic_axes: dict | None = None) -> "OnnxModule | None":
    """``module`` through ONNX Runtime when ``backend`` is "onnx" (default: when :func:`onnx_wanted` on ``device``),
    else None. A failed export is not fatal: it warns and returns None, and the caller runs PyTorch eager."""
    if (backend or ("onnx" if onnx_wanted(device) else "torch")) != "onnx":
        return None
    try:
        with warnings.catch_warnings():  # the TorchScript exporter is chatty about traced shapes
            warnings.simplefilter("ignore")
            return OnnxModule(module, example_inputs, names, dynamic_axes)
    except Exception as e:  # noqa: BLE001 - no onnx package, exporter change...: PyTorch still works, only slower
        warnings.warn(f"ONNX Runtime unavailable for the {what} ({e}); using PyTorch eager")
        return None


def backend_name(onnx: "OnnxModule | None", device: torch.device) -> str:
    """What a task wrapper runs on, for reports: "onnxruntime" or "torch (<device type>)"."""
    return "onnxruntime" if onnx is not None else f"torch ({device.type})"


class ModelRunner:
    """A loaded image module as a task runs it: ONNX Runtime on CPU (exported once, see :class:`OnnxModule`),
    PyTorch on CUDA/MPS (under autocast when ``IMGEN_PRECISION`` asks for it), inputs padded to the module's
    ``multiple`` (reflection) and ``min_side`` (replication) and the padding cropped off the output.

    A task's runner declares its inputs (``input_names``, :meth:`example_inputs`) and what it is called in
    messages (``what``); it calls :meth:`run` with NCHW float tensors. The module is never modified (it may be
    the store's cached one, shared by every caller).
    """

    input_names: tuple[str, ...] = ("x",)
    what = "model"
    default_multiple, default_min_side = 8, 1
    dynamic_axes: dict | None = None          # ONNX axes that vary between calls (e.g. a batch of latents)

    def __init__(self, module: torch.nn.Module, backend: str | None = None):
        from .device import autocast_dtype
        self.module = module
        self.device = next(module.parameters()).device
        self.multiple = getattr(module, "multiple", self.default_multiple)
        self.min_side = getattr(module, "min_side", self.default_min_side)
        self.onnx = onnx_runner(module, self.example_inputs(), self.input_names, self.what, self.device, backend,
                                dynamic_axes=self.dynamic_axes)
        self.autocast = autocast_dtype(self.device) if self.onnx is None else None

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return tuple(torch.zeros(1, 3, 64, 64) for _ in self.input_names)

    @property
    def backend(self) -> str:
        return backend_name(self.onnx, self.device)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) padded to the module's multiple and minimum side (crop back with ``[..., :h, :w]``)."""
        from .image_io import pad_to_multiple
        x, _ = pad_to_multiple(x, self.multiple)
        ph, pw = max(0, self.min_side - x.shape[-2]), max(0, self.min_side - x.shape[-1])
        if ph or pw:   # a strip a few px thin: reflection padding inside the network needs more
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
        return x

    def run(self, *inputs: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The module on ``inputs`` (CPU tensors, images already padded), float32 on the CPU, cropped to ``size``."""
        with torch.inference_mode():
            if self.onnx is not None:
                y = torch.from_numpy(self.onnx(*[t.numpy() for t in inputs]))
            else:
                with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                    y = self.module(*[t.to(self.device, non_blocking=True) for t in inputs]).float().cpu()
        return y if size is None else y[..., :size[0], :size[1]]

    @staticmethod
    def image_tensor(a: np.ndarray, scale: float = 1 / 255) -> torch.Tensor:
        """(H, W, C) or (H, W) array -> (1, C, H, W) float tensor times ``scale``."""
        a = np.asarray(a, np.float32)
        a = a[:, :, None] if a.ndim == 2 else a
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)) * scale)[None]

    @staticmethod
    def batch_tensor(a: np.ndarray, scale: float = 1 / 255, shift: float = 0.0) -> torch.Tensor:
        """(N, H, W, C) array -> (N, C, H, W) float tensor, ``a * scale + shift`` (e.g. 1/127.5, -1: [-1, 1])."""
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2))).float()
        return x.mul_(scale).add_(shift)

    @staticmethod
    def image_array(y: torch.Tensor, scale: float = 255.0) -> np.ndarray:
        """(1, C, H, W) tensor -> (H, W, C) float array times ``scale``."""
        return y[0].permute(1, 2, 0).numpy() * scale


class RunnerCache:
    """Task wrappers around models (an inpainter, a stylizer, ...), built by ``wrap(module)``: for a registered
    name, the store keeps one per (model, device) for as long as it keeps the model (:meth:`Store.runner`);
    a module passed in gets one for as long as the module lives; callables other than modules pass through."""

    def __init__(self, wrap, what: str):
        self.wrap, self.what = wrap, what
        self.by_module: "weakref.WeakKeyDictionary[torch.nn.Module, object]" = weakref.WeakKeyDictionary()

    def get(self, model, device: str | None = None):
        if isinstance(model, str):
            from .store import default_store
            return default_store().runner(model, device, self.wrap, self.what)
        if isinstance(model, torch.nn.Module):
            if model not in self.by_module:
                self.by_module[model] = self.wrap(model)
            return self.by_module[model]
        if callable(model):
            return model
        raise ValueError(f"Unknown {self.what} {model!r}.")
