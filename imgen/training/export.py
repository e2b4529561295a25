"""A trained module's model card (the weights themselves are written by :func:`imgen.store.export_safetensors`)."""
from __future__ import annotations

from pathlib import Path


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
