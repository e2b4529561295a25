"""A registry of model architectures (timm-style): name -> (module class, config dataclass).

Checkpoints store the architecture name and its config, so :func:`build_model` can rebuild the module
without any code knowing the hyper-parameters.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Callable

from torch import nn


class ModelConfig:
    """Base for config dataclasses: a JSON-friendly dict (tuples as lists) and back, unknown keys refused."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise KeyError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(getattr(cls, k, None), tuple) else v for k, v in d.items()})

_ARCHITECTURES: dict[str, tuple[type[nn.Module], Any]] = {}


def register(name: str, config_cls: Any) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        _ARCHITECTURES[name] = (cls, config_cls)
        return cls
    return deco


def architectures() -> list[str]:
    _import_all()
    return sorted(_ARCHITECTURES)


def build_model(arch: str, config: dict | None = None) -> nn.Module:
    """Build an (untrained) module from an architecture name and a config dict."""
    _import_all()
    if arch not in _ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(sorted(_ARCHITECTURES))}")
    cls, config_cls = _ARCHITECTURES[arch]
    return cls(config_cls.from_dict(config or {}))


def _import_all() -> None:
    from . import denoise_unet  # noqa: F401  (registers itself)
    from . import inpaint_net  # noqa: F401
    from . import latent_gan  # noqa: F401
    from . import latent_vae  # noqa: F401
    from . import latent_encoder  # noqa: F401
    from . import label_classifier  # noqa: F401
    from . import stylize_net  # noqa: F401
    from . import patch_texture  # noqa: F401
