"""Explorer speed on this machine: one sample, a 16-image grid (the task module, median of many runs), and a
slider change answered through the running app (gradio_client on 127.0.0.1; p50/p95 over many requests).

    python -m benchmarks.explore_speed [--model kaokore-gan] [--repeats 50]
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np


def _times(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _summary(ts: list[float]) -> dict:
    ts = sorted(ts)
    return {"median_ms": round(1000 * statistics.median(ts), 2),
            "p95_ms": round(1000 * ts[min(len(ts) - 1, int(round(0.95 * (len(ts) - 1))))], 2), "n": len(ts)}


def task_speed(model: str = "kaokore-gan", repeats: int = 50) -> dict:
    from imgen.tasks.explore import ExploreState, get_explorer
    ex = get_explorer(model, device="cpu")
    rng = np.random.default_rng(0)
    n_dirs = len(ex.std)

    def one():
        ex.image(ExploreState(model=model, seed=int(rng.integers(1 << 30)), psi=0.7,
                              directions=list(rng.uniform(-2, 2, n_dirs))))

    def grid():
        ex.variations(ExploreState(model=model, seed=int(rng.integers(1 << 30)), psi=0.7), n=16)
    return {"backend": ex.backend, "one_sample": _summary(_times(one, repeats)),
            "grid_16": _summary(_times(grid, repeats))}


def app_speed(model: str = "kaokore-gan", requests: int = 50) -> dict:
    """Slider changes through the HTTP API: each request moves one direction slider to a new value."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import app
    from gradio_client import Client
    from imgen.ui.explore_tab import N_SLIDERS
    demo = app.build_demo()
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", server_port=None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            c = Client(url, verbose=False, analytics_enabled=False, download_files=tmp)
            rng = np.random.default_rng(1)
            dirs = [0.0] * N_SLIDERS
            c.predict(model, 3, 0, 0.7, *dirs, api_name="/sample")  # warm-up
            ts = []
            for i in range(requests):
                dirs[i % 8] = round(float(rng.uniform(-3, 3)), 1)
                t0 = time.perf_counter()
                c.predict(model, 3, 0, 0.7, *dirs, api_name="/sample")
                ts.append(time.perf_counter() - t0)
            c.close()
    finally:
        demo.close()
    return {"slider_change_via_api": _summary(ts)}


def bench(model: str = "kaokore-gan", repeats: int = 50) -> dict:
    return {"model": model, **task_speed(model, repeats), **app_speed(model, repeats)}


if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="python -m benchmarks.explore_speed",
                                 description="one sample, a 16-grid and slider changes, in-process and through the app")
    ap.add_argument("--model", default="kaokore-gan")
    ap.add_argument("--repeats", type=int, default=50)
    a = ap.parse_args()
    print(json.dumps(bench(a.model, repeats=a.repeats), indent=2))
