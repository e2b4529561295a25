"""The trainers and their exports by task name: what ``python -m imgen train TASK`` / ``export TASK`` run.

Each trainer module keeps its own ``main(argv)`` (and stays runnable as ``python -m imgen.training.train_X``);
this table only names them, so the CLI imports a trainer (and torch's training code) when one is asked for.
"""
from __future__ import annotations

import importlib
import sys

# task: (trainer module, its export module and function), modules relative to imgen.training
TRAINERS: dict[str, tuple[str, str, str]] = {
    "denoise": ("train_denoise", "train_denoise", "export_cli"),
    "inpaint": ("train_inpaint", "train_inpaint", "export_cli"),
    "gan": ("train_gan", "export_gan", "cli"),
    "stylize": ("train_stylize", "train_stylize", "export_cli"),
    "stylize-texture": ("fit_texture", "fit_texture", "export_cli"),
    "stylize-distill": ("distill_stylize", "distill_stylize", "export_cli"),
    "vae": ("train_vae", "export_explore", "vae_cli"),
    "encoder": ("train_encoder", "export_explore", "encoder_cli"),
}


def _function(module: str, name: str):
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def train(task: str, argv: list[str]):
    """Run TASK's trainer with its own arguments ``argv``; returns what its ``main`` returns (the last step)."""
    main = _function(TRAINERS[task][0], "main")
    program, sys.argv[0] = sys.argv[0], f"python -m imgen train {task}"   # argparse's usage line
    try:
        return main(argv)
    finally:
        sys.argv[0] = program


def export(task: str, argv: list[str]) -> None:
    """Export a run of TASK's trainer (weights, card, registry entry) with the export's own arguments."""
    _, module, name = TRAINERS[task]
    _function(module, name)(argv)
