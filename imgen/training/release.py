"""Shipping a training run: its EMA weights as ``.safetensors``, a model card, and the registry entry.

A trainer's export gathers the facts of its run (what the model is, its data and licence, how it was trained,
its measured figures and sheets) into a :class:`Release`; :func:`publish` does the rest the same way for
every model. :func:`load_run` reads a run folder as every trainer writes it (``ckpt.pt`` + ``args.json``).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .export import write_model_card
from .loop import load_checkpoint



def weights_folder(weights_dir: str | Path | None = None) -> Path:
    """Where an export writes: ``weights_dir``, else the store's folder (``weights/``, or ``IMGEN_WEIGHTS_DIR``)."""
    if weights_dir is not None:
        return Path(weights_dir)
    from ..store import default_store
    return default_store().weights_dir


def export_parser(task: str, run: str, name: str) -> argparse.ArgumentParser:
    """The arguments every ``python -m imgen export TASK`` takes: ``--run`` (default ``run``), ``--name``
    (default ``name``) and ``--weights`` (default: the store's folder); an export adds its own."""
    ap = argparse.ArgumentParser(prog=f"python -m imgen export {task}")
    ap.add_argument("--run", type=Path, default=Path(run))
    ap.add_argument("--name", default=name)
    ap.add_argument("--weights", type=Path, default=None, help="default: weights/ (or IMGEN_WEIGHTS_DIR)")
    return ap


def card_section(name: str, heading: str, weights_dir: str | Path | None = None) -> str:
    """The text under ``## heading`` in store model ``name``'s card ("" when the model, card or section is
    missing: cards are documentation, an export goes on without them)."""
    from ..store import StoreError, entry
    try:
        e = entry(name)
        card = (weights_folder(weights_dir) / e.card).read_text() if e.card else ""
    except (StoreError, OSError):
        return ""
    mark = f"\n## {heading}\n"
    return card.split(mark, 1)[1].split("\n## ", 1)[0].strip() if mark in card else ""


@dataclass
class Run:
    """A finished (or stopped) training run: its checkpoint, arguments, and the EMA model built from them."""
    ckpt: dict
    args: dict
    config: dict
    model: nn.Module

    @property
    def budget(self) -> str:
        """The run's budget as its command line gave it: ``--minutes M`` or ``--steps N``."""
        if float(self.args.get("minutes") or 0):
            return f"--minutes {self.args['minutes']}"
        return f"--steps {self.args.get('steps')}"


def load_run(run_dir: str | Path, arch: str) -> Run:
    """The run in ``run_dir`` with its EMA weights loaded into a fresh ``arch`` module (eval mode)."""
    from ..models import build_model
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir / "ckpt.pt")
    if ckpt is None:
        raise SystemExit(f"no checkpoint in {run_dir}")
    config = json.loads(ckpt["config"])
    model = build_model(arch, config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["ema"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    buffers = {name for name, _ in model.named_buffers()}
    if unexpected or set(missing) - buffers:  # buffers an export computes (e.g. a VAE's sampling basis) may be new
        raise SystemExit(f"{run_dir}: the checkpoint does not fit {arch} (missing {missing}, unexpected {unexpected})")
    args_file = run_dir / "args.json"
    args = json.loads(args_file.read_text()) if args_file.exists() else {}
    return Run(ckpt, args, config, model.eval().requires_grad_(False))


@dataclass
class Release:
    """Everything the weights file, the card and the registry entry say about one model."""
    name: str
    task: str
    arch: str
    model: nn.Module
    title: str
    summary: str
    licence: str                    # the card's licence id (e.g. "other", "cc-by-sa-4.0")
    registry_licence: str           # the registry's words on it
    data: str                       # the registry's training-data line
    datasets: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)   # extra .safetensors metadata (e.g. the step)
    config: dict | None = None      # the registry's config (default: the model's)


def publish(release: Release, weights_dir: str | Path | None = None) -> str:
    """Write ``<weights_dir>/<name>.safetensors`` and ``<name>.md`` and update the registry; returns the sha256."""
    from ..store import export_safetensors, update_entry
    weights_dir = weights_folder(weights_dir)
    file = f"{release.name}.safetensors"
    sha = export_safetensors(release.model, release.arch, weights_dir / file, extra=release.metadata)
    write_model_card(weights_dir / f"{release.name}.md", {
        "title": release.title, "licence": release.licence, "tags": release.tags, "datasets": release.datasets,
        "summary": release.summary, "sections": release.sections})
    config = release.config if release.config is not None else release.model.config.to_dict()
    update_entry(release.name, task=release.task, arch=release.arch, config=config, file=file, sha256=sha,
                 licence=release.registry_licence, data=release.data, card=f"{release.name}.md")
    return sha
