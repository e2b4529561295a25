"""The Explore tab through the HTTP API with the shipped generator (smoke): outputs checked, sessions isolated."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from imgen.tasks.explore import state_from_png  # noqa: E402
from imgen.ui.common import sample_image  # noqa: E402
from imgen.ui.explore_tab import N_SLIDERS, model_names  # noqa: E402

pytestmark = pytest.mark.skipif(not model_names(), reason="no explorer model registered")


@pytest.fixture(scope="module")
def module_client(app_url, tmp_path_factory):
    """One client for the module (closing one waits a second for its heartbeat thread)."""
    c = Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("dl")))
    yield c
    c.close()


@pytest.fixture
def client(module_client):
    """A fresh session for each test, as a new visitor gets (the tab keeps per-session state, e.g. a projected w)."""
    module_client.reset_session()
    return module_client


def _model():
    return model_names()[0]


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_endpoints_are_named(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/sample", "/variations", "/interpolate", "/project", "/apply_state", "/compare"} <= set(api)


@pytest.mark.slow
def test_project_shows_the_encoders_guess_first_then_refines(client):
    from imgen.tasks.explore import get_explorer
    name = next((m for m in model_names() if get_explorer(m).can_encode), None)
    if name is None:
        pytest.skip("no explorer model with an encoder is installed")
    job = client.submit(name, handle_file(sample_image("astronaut.png")), 10, api_name="/project")
    job.result(timeout=120)
    outs = job.outputs()
    assert len(outs) == 2
    assert "encoder's guess" in outs[0][2] and "from the encoder's guess" in outs[1][2]   # (session w not sent)
    assert json.loads(outs[0][1])["model"] == name and "w" in json.loads(outs[1][1])


def test_compare_shows_the_same_seeds_through_each_family(client):
    faces = [m for m in model_names() if m.startswith("kaokore")]
    gallery = client.predict(3, 0.7, api_name="/compare")
    captions = [item["caption"] for item in gallery]
    assert len(captions) == len(faces) and all(any(c.startswith(m + " (") for c in captions) for m in faces)
    for item in gallery:
        assert Image.open(item["image"]).size == (2 * (8 * 64 + 7 * 2), 2 * 64)


def test_sample_is_reproducible_and_carries_its_state(client):
    dirs = [0.0] * N_SLIDERS
    img, download, state = client.predict(_model(), 5, 0, 0.7, *dirs, api_name="/sample")
    again, _, _ = client.predict(_model(), 5, 0, 0.7, *dirs, api_name="/sample")
    assert np.array_equal(_pixels(img), _pixels(again))
    assert Image.open(img).size == (512, 512)
    s = json.loads(state)
    assert s["seed"] == 5 and s["psi"] == 0.7 and s["model"] == _model()
    assert state_from_png(download).seed == 5                      # the download embeds the state
    dirs[0] = 2.5
    moved, _, _ = client.predict(_model(), 5, 0, 0.7, *dirs, api_name="/sample")
    assert np.abs(_pixels(moved).astype(int) - _pixels(img)).mean() > 1


def test_state_json_reproduces_the_image(client):
    dirs = [0.0] * N_SLIDERS
    dirs[1] = -1.5
    img, _, state = client.predict(_model(), 11, 0.25, 0.8, *dirs, api_name="/sample")
    controls = client.predict(state, api_name="/apply_state")
    assert controls[0] == _model() and controls[1] == 11 and abs(controls[2] - 0.25) < 1e-9
    again, _, _ = client.predict(*controls[:4 + N_SLIDERS], api_name="/sample")
    assert np.array_equal(_pixels(img), _pixels(again))


def test_variations_and_interpolation(client):
    grid = client.predict(_model(), 2, 0, 0.7, 1.0, *[0.0] * N_SLIDERS, api_name="/variations")
    assert Image.open(grid).size[0] > 512
    gif, strip = client.predict(_model(), 1, 2, 8, 0.7, api_name="/interpolate")
    g = Image.open(gif)
    assert g.n_frames == 8
    first = np.asarray(g.convert("RGB"))
    one, _, _ = client.predict(_model(), 1, 0, 0.7, *[0.0] * N_SLIDERS, api_name="/sample")
    small = np.asarray(Image.open(one).convert("RGB").resize(g.size, Image.NEAREST))
    assert np.abs(first.astype(int) - small).mean() < 6       # the GIF starts at seed 1's image (GIF palette)
    s = _pixels(strip)
    # the lossless strip is seed 1's image (ONNX Runtime may round a batch 1/255 differently from one image)
    assert np.abs(s[:128, :128].astype(int) - _pixels(one)[::4, ::4]).max() <= 1
    assert Image.open(strip).size[0] > Image.open(strip).size[1]


@pytest.mark.slow
def test_projection_and_sessions_do_not_mix(app_url, tmp_path):
    a = Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "a"))
    b = Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "b"))
    try:
        pair, state, report = a.predict(_model(), handle_file(sample_image("astronaut.png")), 20, api_name="/project")
        assert "w" in json.loads(state) and "Reconstruction" in report and "dB" in report
        # the projected latent is session state: A's sliders now edit it, B's session is untouched
        _, _, sa = a.predict(_model(), 0, 0, 0.7, *[0.0] * N_SLIDERS, api_name="/sample")
        _, _, sb = b.predict(_model(), 0, 0, 0.7, *[0.0] * N_SLIDERS, api_name="/sample")
        assert "w" in json.loads(sa) and "w" not in json.loads(sb)
    finally:
        a.close()
        b.close()


def test_bad_inputs_are_sentences(client):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="must be|minimum"):
        client.predict(_model(), -4, 0, 0.7, *[0.0] * N_SLIDERS, api_name="/sample")
    with pytest.raises(AppError, match="JSON"):
        client.predict("{not json", api_name="/apply_state")
    ok, _, _ = client.predict(_model(), 10 ** 18, 0, 0.7, *[0.0] * N_SLIDERS, api_name="/sample")  # huge seed
    assert Image.open(ok).size == (512, 512)


def test_variations_take_a_huge_whole_seed():
    from imgen.ui import explore_tab
    path = explore_tab.variations(model_names()[0], 10 ** 400, 0, 0.7, 1.0, *[0.0] * N_SLIDERS)
    assert Image.open(path).size[0] > 64          # a grid, not an OverflowError


def test_a_page_load_renders_the_first_picture_once(app_server):
    """ui/explore_tab used to draw the first picture twice per page load (two load events on the image)."""
    demo = app_server[0]
    image = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "explore-image")
    on_load = [fn for fn in demo.fns.values()
               if any(event == "load" for _, event in fn.targets) and image in fn.outputs]
    assert len(on_load) == 1, [fn.name for fn in on_load]
