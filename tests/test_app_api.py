"""The whole app on 127.0.0.1, driven through its HTTP API with gradio_client (outputs checked, not just calls)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from imgen.ui.common import sample_image  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory, app_url):
    tmp = tmp_path_factory.mktemp("client-downloads")
    c = Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp))
    yield c
    c.close()


def test_named_endpoints_are_documented(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/denoise", "/inpaint"} <= set(api)


def test_api_reference_lists_every_endpoint(client):
    from conftest import ROOT
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    doc = (ROOT / "docs" / "api.md").read_text()
    assert [e for e in api if f"`{e}`" not in doc] == []


def test_denoise_endpoint(client):
    src = sample_image("chelsea.png")
    (before, after), download, report = client.predict(handle_file(src), "Manual", 20, True, 20,
                                                       "Trained U-Net (imgen)", False, api_name="/denoise")
    clean = np.asarray(Image.open(src).convert("RGB"), np.float64)
    noisy, out = np.asarray(Image.open(before), np.float64), np.asarray(Image.open(after), np.float64)
    assert out.shape == clean.shape
    err = lambda a: np.mean((a - clean) ** 2)  # noqa: E731
    assert err(out) < err(noisy) / 4              # > 6 dB better than the noisy input
    assert "PSNR" in report and Image.open(download).size == Image.open(src).size


def test_inpaint_endpoint_with_editor_mask_layer(client, tmp_path):
    src = Image.open(sample_image("astronaut.png")).convert("RGB")
    layer = np.zeros((src.height, src.width, 4), np.uint8)
    layer[200:240, 150:330] = (0, 0, 0, 255)           # a black brush stroke, as the ImageMask draws it
    Image.fromarray(layer, "RGBA").save(tmp_path / "layer.png")
    src.save(tmp_path / "bg.png")
    editor = {"background": handle_file(str(tmp_path / "bg.png")), "layers": [handle_file(str(tmp_path / "layer.png"))],
              "composite": None}
    (before, after), download, used, report = client.predict(
        editor, None, 0, 0, False, "Only the masked area at full resolution", 512, "OpenCV Telea (classical)", api_name="/inpaint")
    a, b = np.asarray(src), np.asarray(Image.open(after).convert("RGB"))
    hole = layer[..., 3] > 0
    assert a.shape == b.shape
    assert np.array_equal(a[~hole], b[~hole])          # outside the stroke: bit for bit the input
    assert np.abs(a[hole].astype(int) - b[hole]).mean() > 1   # inside: repainted
    assert np.array_equal(np.asarray(Image.open(used).convert("L")) > 127, hole)


def test_errors_reach_the_client_as_sentences(client):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="not a readable image"):
        client.predict(handle_file(__file__), "Auto", 25, False, 25, "Trained U-Net (imgen)", False,
                       api_name="/denoise")


def test_user_errors_leave_no_traceback_in_the_server_log(client, capfd):
    """A user's mistake is a sentence for them, not a traceback in the log (kept for real faults)."""
    from gradio_client.exceptions import AppError
    capfd.readouterr()
    with pytest.raises(AppError, match="not a readable image"):      # raised by the handler
        client.predict(handle_file(__file__), "Auto", 25, False, 25, "Trained U-Net (imgen)", False,
                       api_name="/denoise")
    with pytest.raises(AppError, match="must be a number"):           # raised while reading the inputs
        client.predict(handle_file(sample_image("chelsea.png")), "Auto", "lots", False, 25,
                       "Trained U-Net (imgen)", False, api_name="/denoise")
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[-2000:]


def test_api_page_lists_only_named_endpoints_with_named_parameters(app_url):
    """The API page (/gradio_api/info) shows the app's actions by name with named parameters: no initial-value
    /lambda_N endpoints, no param_N, no internal events."""
    import json
    import re
    import urllib.request
    with urllib.request.urlopen(app_url.rstrip("/") + "/gradio_api/info", timeout=30) as r:
        info = json.load(r)
    named = info["named_endpoints"]
    assert not info.get("unnamed_endpoints"), list(info["unnamed_endpoints"])
    assert not [e for e in named if re.match(r"/(lambda|fn|load_example)", e)], list(named)
    unnamed_params = {e: [p["parameter_name"] for p in v["parameters"]
                          if re.fullmatch(r"param_\d+", p["parameter_name"] or "")] for e, v in named.items()}
    assert not any(unnamed_params.values()), unnamed_params
    expected = {"/denoise", "/inpaint", "/stylize"}
    from imgen.ui.explore_tab import model_names
    if model_names():
        expected |= {"/sample", "/variations", "/interpolate", "/project", "/apply_state", "/compare"}
    assert set(named) == expected, sorted(named)
