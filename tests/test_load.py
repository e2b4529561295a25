"""Load (issue #8): concurrent API users mixing every tab, then a burst past the queue's max_size.

The small run always runs (4 users x 2 requests, a queue of 4 and a burst of 12); the full 16-user run with
app.py's queue (max_size 32, a burst of 48) is opt-in: ``IMGEN_LOAD_TEST=1 python -m pytest tests/test_load.py -s``.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from benchmarks.load_test import format_report, run_load_test  # noqa: E402
from imgen.ui.explore_tab import model_names  # noqa: E402

TINY_GAN = {"z_dim": 16, "w_dim": 16, "widths": [32, 16, 16, 8, 8], "n_directions": 6}


@pytest.fixture
def explorer_installed(tmp_path):
    """The registered explorer model, or (none registered yet) a tiny untrained one beside the real
    registry's models, so that the Explore endpoints are exercised too."""
    if model_names():
        yield model_names()[0]
        return
    import torch

    from imgen.models import build_model
    from imgen.store import default_store, Store, set_default_store
    from imgen.tasks import explore
    from imgen.store import export_safetensors
    from imgen.training.export_gan import compute_directions
    real = default_store()
    w = tmp_path / "weights"
    w.mkdir()
    shutil.copy(real.registry_path, w / "registry.json")
    for e in real.entries():
        path, _ = real.locate(e.name)
        if path is not None:
            (w / e.file).symlink_to(path)
    torch.manual_seed(0)
    g = build_model("latent_gan", TINY_GAN)
    with torch.no_grad():
        for b in g.blocks:
            b.style.weight.normal_(0, 0.3)
    compute_directions(g, n=500)
    store = Store(weights_dir=w, registry_path=w / "registry.json")
    sha = export_safetensors(g.eval(), "latent_gan", w / "tiny.safetensors")
    store.update_entry("tiny", task="explore", arch="latent_gan", file="tiny.safetensors", sha256=sha,
                       config=g.config.to_dict())
    set_default_store(store)
    try:
        yield "tiny"
    finally:
        set_default_store(None)


def _check(report: dict) -> None:
    load, burst = report["load"], report["burst"]
    assert load["errors"] == 0, load["error_samples"]
    assert burst["errors"] == 0, burst["error_samples"]
    assert report["errors"] == 0
    assert load["sent"] == load["planned"] and not load["hit_time_limit"]
    assert not report["endpoints_not_exercised"]
    assert all(s["ok"] >= 1 for s in load["per_endpoint"].values())
    assert burst["queue_full"] >= 1                        # refused politely (gradio_client's QueueError)
    assert burst["completed"] + burst["queue_full"] == burst["submitted"]
    assert burst["after_burst"]["ok"], burst["after_burst"]  # and the app still answers afterwards
    assert report["passed"]
    assert report["rss_mb"]["peak"] >= report["rss_mb"]["before"] > 0


def test_small_load_and_queue_overflow(explorer_installed):
    import app
    demo = app.build_demo()
    demo.queue(max_size=4, default_concurrency_limit=1)
    report = run_load_test(users=4, requests_per_user=2, timeout_s=60, demo=demo, burst=12, burst_clients=3)
    print(format_report(report))
    assert report["queue_max_size"] == 4
    assert {"/denoise", "/inpaint", "/sample", "/variations", "/interpolate", "/project"} <= set(report["endpoints"])
    _check(report)


@pytest.mark.skipif(os.environ.get("IMGEN_LOAD_TEST") != "1", reason="the full load test is opt-in: IMGEN_LOAD_TEST=1")
def test_full_load():
    report = run_load_test(users=16, requests_per_user=6, timeout_s=300)
    print(format_report(report))
    print(json.dumps(report, indent=2))
    assert report["queue_max_size"] == 32 and report["burst"]["submitted"] == 48
    _check(report)
