"""Explore: latents from seeds, directions, slerp, JSON state, projection, CLI (a tiny untrained generator)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from imgen.models import build_model
from imgen.tasks import explore as task
from imgen.tasks.explore import ExploreError, ExploreState, Explorer
from imgen.training.export_gan import compute_directions

TINY = {"z_dim": 16, "w_dim": 16, "widths": [32, 16, 16, 8, 8], "n_directions": 6}


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = build_model("latent_gan", TINY)
    with torch.no_grad():  # make every block depend on w (style layers start at zero in training)
        for b in g.blocks:
            b.style.weight.normal_(0, 0.3)
    compute_directions(g, n=2000)
    return g.eval().requires_grad_(False)


@pytest.fixture(params=["torch", "onnx"])
def explorer(generator, request):
    if request.param == "onnx":
        pytest.importorskip("onnxruntime")
    return Explorer(generator, "tiny", backend=request.param)


def state(**kw):
    return ExploreState(model="tiny", **{"seed": 3, "psi": 0.7, "directions": [0.0] * 6, **kw})


def test_same_seed_same_image_bitwise(explorer):
    a, b = explorer.image(state()), explorer.image(state())
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, explorer.image(state(seed=4)))


def test_batch_does_not_change_an_image(explorer):
    ws = np.stack([explorer.w_for(state(seed=s)) for s in range(5)])
    batch = explorer.render(ws)
    assert np.abs(batch[2].astype(int) - explorer.image(state(seed=2))).max() <= 1  # same up to float rounding


def test_seed_latent_is_platform_independent_numpy():
    z = task.z_for_seed(123, 8)
    assert np.array_equal(z, np.random.default_rng(123).standard_normal(8).astype(np.float32))
    assert task.z_for_seed(10 ** 30, 8).shape == (8,)            # huge seeds are fine


def test_directions_change_the_image_and_reset_restores_it(explorer):
    base = explorer.image(state())
    moved = explorer.image(state(directions=[2.0, 0, 0, 0, 0, 0]))
    assert np.abs(moved.astype(int) - base).mean() > 1
    other = explorer.image(state(directions=[0, 2.0, 0, 0, 0, 0]))
    assert not np.array_equal(moved, other)
    assert np.array_equal(explorer.image(state(directions=[0.0] * 6)), base)


def test_directions_are_orthonormal_principal_components(generator):
    d = generator.directions.double()
    assert torch.allclose(d @ d.T, torch.eye(len(d), dtype=torch.float64), atol=1e-4)
    std = generator.direction_std
    assert (std[:-1] >= std[1:]).all() and (std > 0).all()       # ordered by variance


def test_slerp_endpoints_are_the_seeds_images(explorer):
    frames = explorer.interpolate(5, 9, frames=7, psi=0.7)
    assert frames.shape == (7, 64, 64, 3)
    # the same latents; ONNX Runtime may round a batch of 7 differently from a batch of 1 (seen: 1/255)
    assert np.abs(frames[0].astype(int) - explorer.image(state(seed=5))).max() <= 1
    assert np.abs(frames[-1].astype(int) - explorer.image(state(seed=9))).max() <= 1
    steps = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(6)]
    assert max(steps) < np.abs(frames[-1].astype(int) - frames[0]).mean()   # a path, not a jump


def test_seed_walk_blends_neighbours_smoothly(explorer):
    a, b = explorer.image(state(seed=7)), explorer.image(state(seed=8))
    mid = explorer.image(state(seed=7.5))
    near = explorer.image(state(seed=7.01))
    assert not np.array_equal(mid, a) and not np.array_equal(mid, b)
    assert np.abs(near.astype(int) - a).mean() < np.abs(mid.astype(int) - a).mean()
    assert np.array_equal(explorer.image(state(seed=8.0)), b)


def test_slerp_keeps_norm_between_unit_vectors():
    a, b = np.array([1, 0], np.float32), np.array([0, 1], np.float32)
    m = task.slerp(a, b, 0.5)
    assert np.isclose(np.linalg.norm(m), 1, atol=1e-6) and np.allclose(m, [2 ** -0.5, 2 ** -0.5], atol=1e-6)


def test_state_json_round_trips_and_reproduces_the_image(explorer, tmp_path):
    s = state(seed=12345678901234567890, psi=0.55, directions=[0.5, -1.25, 0, 0, 3, 0])
    s2 = ExploreState.from_json(s.to_json())
    assert s2 == s
    img = explorer.image(s)
    path = task.save_png(task.upscale(img), tmp_path / "x.png", s)
    s3 = task.state_from_png(path)
    assert s3 == s and np.array_equal(explorer.image(s3), img)
    w = explorer.w_for(s)
    s4 = ExploreState.from_json(state(w=[float(v) for v in w]).to_json())
    assert np.array_equal(explorer.w_for(s4), w)                      # a projected w survives JSON exactly


@pytest.mark.parametrize("bad, match", [
    ('{"model": "tiny", "seed": -1}', "0 or more"),
    ('{"model": "tiny", "seed": "abc"}', "whole number"),
    ('{"model": "tiny", "psi": "NaN"}', "finite"),
    ('{"model": "tiny", "psi": 7}', "between"),
    ('{"model": "tiny", "directions": [1e9]}', "between"),
    ('{"model": "tiny", "colour": 1}', "unknown keys"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
])
def test_bad_states_are_refused_with_a_sentence(bad, match):
    with pytest.raises(ExploreError, match=match):
        ExploreState.from_json(bad)


def test_png_without_state_is_a_clear_error(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    with pytest.raises(ExploreError, match="no explorer state"):
        task.state_from_png(tmp_path / "plain.png")


@pytest.mark.slow
def test_projection_beats_a_random_latent(generator, tmp_path):
    ex = Explorer(generator, "tiny", backend="torch")
    target = ex.image(state(seed=21, psi=1.0))
    Image.fromarray(target).resize((128, 128), Image.NEAREST).save(tmp_path / "t.png")
    calls = []
    s, seen, rep = ex.project(tmp_path / "t.png", steps=60, progress=lambda i, n: calls.append((i, n)))
    assert calls[-1] == (60, 60) and seen.shape == (64, 64, 3)
    err = lambda img: float(np.mean((img.astype(float) - seen) ** 2))  # noqa: E731
    recon = ex.image(s)
    random_errs = [err(ex.image(state(seed=k, psi=1.0))) for k in range(100, 105)]
    assert rep["loss_end"] < rep["loss_start"]
    assert err(recon) < min(random_errs) / 2


def test_variations_start_with_the_current_image(explorer):
    v = explorer.variations(state(), n=9, spread=1.0, seed=1)
    assert v.shape == (9, 64, 64, 3)
    assert np.abs(v[0].astype(int) - explorer.image(state())).max() <= 1
    assert len({v[i].tobytes() for i in range(9)}) == 9


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def tiny_store(generator, tmp_path, monkeypatch):
    from imgen.store import Store, set_default_store
    from imgen.store import export_safetensors
    store = Store(weights_dir=tmp_path / "w", registry_path=tmp_path / "w" / "registry.json")
    sha = export_safetensors(generator, "latent_gan", tmp_path / "w" / "tiny.safetensors")
    store.update_entry("tiny", task="explore", arch="latent_gan", file="tiny.safetensors", sha256=sha,
                       config=generator.config.to_dict())
    set_default_store(store)
    yield store
    set_default_store(None)


def test_cli_sample_and_interpolate_write_valid_files(tiny_store, tmp_path):
    from imgen.cli import main
    assert main(["sample", "--model", "tiny", "--seed", "3", "--psi", "0.7", "-o", str(tmp_path / "one.png")]) == 0
    one = Image.open(tmp_path / "one.png")
    assert one.size == (256, 256)
    st = task.state_from_png(tmp_path / "one.png")
    assert st.seed == 3 and st.psi == 0.7
    assert main(["sample", "--model", "tiny", "--seed", "0", "--n", "16", "-o", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size == (4 * (4 * 64 + 6),) * 2
    assert main(["interpolate", "--model", "tiny", "--seeds", "1", "2", "--frames", "12",
                 "-o", str(tmp_path / "walk.gif")]) == 0
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 12 and gif.size == (256, 256)
    assert (tmp_path / "walk-strip.png").exists()


def test_cli_refuses_bad_seed_with_one_line(tiny_store, tmp_path):
    from imgen.cli import main
    with pytest.raises(SystemExit, match="0 or more"):
        main(["sample", "--model", "tiny", "--seed", "-3", "-o", str(tmp_path / "x.png")])


def test_state_from_and_to_the_tabs_controls():
    """The tab holds no seed arithmetic: the state converts to and from (seed, walk) itself."""
    st = task.ExploreState.from_controls("kaokore-gan", 7, 0.5, 0.7, [1.0, 0.0])
    assert st.seed == 7.5 and st.directions == [1.0, 0.0]
    assert task.ExploreState.from_controls("kaokore-gan", 7, 2.0, 0.7, []).seed == 9     # a whole walk: whole
    assert isinstance(task.ExploreState.from_controls("kaokore-gan", 7, 2.0, 0.7, []).seed, int)
    assert st.to_controls(3) == ["kaokore-gan", 7, 0.5, 0.7, 1.0, 0.0, 0.0, None]
    with pytest.raises(task.ExploreError, match="whole number"):
        task.ExploreState.from_controls("kaokore-gan", 7.5, 0, 0.7, [])
