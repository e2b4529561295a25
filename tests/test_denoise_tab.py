"""The Denoise tab's handler, called directly (the HTTP API is tested with the whole app)."""
import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from imgen.ui import denoise_tab  # noqa: E402
from imgen.ui.common import sample_image  # noqa: E402


def test_handler_try_it_reports_psnr_and_writes_full_size_png():
    img = Image.open(sample_image("astronaut.png"))
    (before, after), download, report = denoise_tab.denoise(img, "Auto", 25, True, 25)
    a, b = Image.open(before), Image.open(after)
    assert a.size == b.size == img.size and b.format == "PNG"
    assert download == after
    psnrs = [float(x.split(" dB")[0]) for x in report.split("PSNR **")[1:]]
    assert len(psnrs) == 2 and psnrs[1] > psnrs[0] + 5          # denoised beats noisy by a clear margin
    assert "Estimated noise level" in report


def test_handler_keeps_alpha_and_manual_sigma():
    img = Image.open(sample_image("logo.png"))
    assert img.mode == "RGBA"
    (_, after), _, report = denoise_tab.denoise(img, "Manual", 10, False, 25, "OpenCV non-local means (classical)")
    out = Image.open(after)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(img.getchannel("A")))
    assert "σ = 10" in report


def test_handler_errors_are_user_messages():
    with pytest.raises(gr.Error, match="Upload a photo first"):
        denoise_tab.denoise(None)
    with pytest.raises(gr.Error, match="Unknown model"):
        denoise_tab.denoise(Image.new("RGB", (8, 8)), "Auto", 25, False, 25, "bogus")


def test_reported_time_is_what_the_user_waited(monkeypatch):
    """The report gives the handler's wall time (reading, work, writing the PNGs), not only the model's compute."""
    import re
    import time
    slow_save = denoise_tab.save_png

    def save_png(img, stem):
        time.sleep(0.3)            # a slow disk: the user waits for it too
        return slow_save(img, stem)
    monkeypatch.setattr(denoise_tab, "save_png", save_png)
    img = Image.open(sample_image("camera.png"))
    _, _, report = denoise_tab.denoise(img, "Manual", 10, False, 25, "OpenCV non-local means (classical)")
    waited = float(re.search(r"px in \**([\d.]+) s", report).group(1))
    assert waited >= 0.6, report          # two PNGs written after the work
