"""Numbers from users (UI, API, CLI) checked before a task uses them: a sentence, never a traceback."""
from __future__ import annotations

from typing import Any

import numpy as np


def finite_number(value: Any, what: str) -> float:
    """``value`` as a finite float, or a ValueError whose message is a sentence for the user."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {str(value)[:40]!r}.") from None
    if not np.isfinite(v):
        raise ValueError(f"{what} must be a finite number, not {v}.")
    return v
