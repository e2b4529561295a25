"""Export a trained module to ``weights/<name>.safetensors`` with its config, and write its model card."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from safetensors.torch import save_file
from torch import nn


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_safetensors(model: nn.Module, arch: str, path: str | Path, extra: dict | None = None) -> str:
    """Write the model's state dict (fp32, contiguous) with ``arch`` and ``config`` in the metadata.

    ``extra`` entries (and any tensors a model carries besides its parameters, e.g. latent directions)
    are stored too. Returns the file's sha256.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().cpu() if v.dtype.is_floating_point else v.detach().contiguous().cpu()
             for k, v in model.state_dict().items()}
    meta = {"format": "imgen/1", "arch": arch, "config": json.dumps(model.config.to_dict())}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return sha256_file(path)


def write_model_card(path: str | Path, card: dict) -> None:
    """A Markdown model card with a YAML-ish front matter (the Hub's model card format).

    ``card`` keys: title, licence, datasets (list), summary, and free sections in ``sections`` (title -> text).
    """
    lines = ["---", f"license: {card['licence']}", "library_name: pytorch", "tags:"]
    lines += [f"- {t}" for t in card.get("tags", [])]
    lines += ["datasets:"] + [f"- {d}" for d in card.get("datasets", [])]
    lines += ["---", "", f"# {card['title']}", "", card.get("summary", ""), ""]
    for title, text in card.get("sections", {}).items():
        lines += [f"## {title}", "", text.rstrip(), ""]
    Path(path).write_text("\n".join(lines))
