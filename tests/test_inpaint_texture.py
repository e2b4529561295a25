"""Inpaint texture: the two measures (gradient ratio, texture SWD) on synthetic cases, the object-mask set, the
PatchMatch field and exemplar fill, pixels outside the mask for the texture methods, and a smoke test of the
default method (the network + the photo's texture) against OpenCV Telea on real evaluation images."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from imgen.evaluation.texture import TextureStats
from imgen.models import build_model
from imgen.tasks.inpaint import TextureInpainter, get_inpainter, inpaint_image
from imgen.tasks.patchmatch import exemplar_fill, patchmatch
from imgen.datasets.masks import SILHOUETTES, object_dev_mask, object_mask

PLACES = "eval/inpaint/places2_512_freeform"


def texture(h=96, w=128, seed=0) -> np.ndarray:
    """A textured photo: fine noise on smooth colour."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(rng.integers(40, 220, (4, 4, 3)).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.normal(0, 30, (h, w, 3)).astype(np.float32), (0, 0), 0.8)
    return np.clip(coarse + fine, 0, 255).astype(np.uint8)


def box_hole(h=96, w=128) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[30:70, 40:90] = True
    return m


def measure(ref, out, hole):
    st = TextureStats()
    st.add(ref, out, hole)
    return st.grad_ratio(), st.swd()[0]


def test_measures_on_synthetic_fills():
    ref, hole = texture(), box_hole()
    g, s = measure(ref, ref.copy(), hole)                      # filled with its own pixels
    assert g == pytest.approx(1.0) and s == pytest.approx(0.0, abs=1e-6)
    blurred = np.where(hole[:, :, None], cv2.GaussianBlur(ref, (0, 0), 3), ref)
    g, s = measure(ref, blurred, hole)                         # filled with its own blur
    assert g < 0.5 and s > 150                                 # (measured 0.44 / 206)
    low = cv2.GaussianBlur(ref, (0, 0), 3)                     # its own detail, shifted: right in kind, not in place
    other = np.clip(low + np.roll(ref.astype(np.float32) - low, (7, 5), (0, 1)), 0, 255).astype(np.uint8)
    g2, s2 = measure(ref, np.where(hole[:, :, None], other, ref), hole)
    assert 0.85 < g2 < 1.15 and s2 < 0.5 * s                   # (measured 0.98 / 49)


def test_object_masks_are_fixed_and_in_range():
    """5-30 % of the photo, every kind drawn, about a third run into the border and the rest lie inside."""
    touching = 0
    for k in range(48):
        m = object_dev_mask(k, 256, 320)
        assert m.shape == (256, 320) and 0.05 <= m.mean() <= 0.31, (k, m.mean())
        assert np.array_equal(m, object_dev_mask(k, 256, 320))
        touching += bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
    assert 0.25 * 48 <= touching <= 0.8 * 48, touching
    assert not np.array_equal(object_dev_mask(0, 256, 320), object_dev_mask(1, 256, 320))
    for kind in SILHOUETTES:
        m = object_mask(120, 160, np.random.default_rng(3), 0.1, 0.2, kind=kind, border=0.0)
        assert 0.08 <= m.mean() <= 0.22, (kind, m.mean())
        if kind != "pole":                   # a pole may need the frame's full height for its area
            assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()), kind


def test_patchmatch_finds_a_periodic_copy():
    """A periodic texture with a hole: guided by the truth, the field maps hole pixels onto known pixels of the
    same phase and the exemplar copy restores the hole almost exactly; guided by a smooth (Telea) fill it still
    brings the texture's contrast into the hole, which the smooth fill lacks."""
    yy, xx = np.mgrid[0:120, 0:160]
    img = (127 + 60 * np.sin(xx * 2 * np.pi / 12) * np.cos(yy * 2 * np.pi / 10))[:, :, None].repeat(3, 2)
    img = img.astype(np.float32)
    hole = np.zeros((120, 160), bool)
    hole[40:80, 50:110] = True
    guide = cv2.inpaint(img.astype(np.uint8), hole.astype(np.uint8), 5, cv2.INPAINT_TELEA).astype(np.float32)
    out = exemplar_fill(img, hole, img, output="copy", scale=1)
    err = np.abs(out[hole] - img[hole]).mean()
    assert err < 3, err
    assert np.abs(guide[hole] - img[hole]).mean() > 5 * err
    textured = exemplar_fill(img, hole, guide, output="copy")
    assert textured[hole].std() > 0.8 * img[hole].std() > 1.5 * guide[hole].std()
    sy, sx, cost = patchmatch(img, img, hole, ~cv2.dilate(hole.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool))
    ty, tx = np.nonzero(hole)
    assert np.all(~hole[sy, sx]) and np.abs(img[sy, sx] - img[ty, tx]).mean() < 3


@pytest.mark.parametrize("mode", ["crop", "resize"])
def test_texture_methods_leave_outside_pixels_alone(mode):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = build_model("inpaint_net", {"widths": [8, 16, 32], "blocks": 1}).eval()
    ref = texture(150, 200, seed=3)
    hole = np.zeros((150, 200), bool)
    cv2.circle(hole.view(np.uint8), (60, 70), 20, 1, -1)
    cv2.line(hole.view(np.uint8), (120, 20), (180, 120), 1, 9)
    for model in (TextureInpainter(get_inpainter(net)), "patchmatch"):
        for grow, feather in ((0, 0), (3, 4)):
            res = inpaint_image(Image.fromarray(ref), hole, model=model, mode=mode, grow=grow, feather=feather)
            out, weight = np.asarray(res.image), np.asarray(res.mask_used)
            assert out.shape == ref.shape
            assert np.array_equal(out[weight == 0], ref[weight == 0])
            assert not np.array_equal(out[hole], ref[hole])


@pytest.mark.slow
def test_default_beats_telea_on_both_measures(shared_data):
    """Smoke test on the first 4 places2_512 photos, free-form and object masks (a few seconds): the default method
    (the shipped network + the photo's texture) has more detail and a closer texture than Telea (measured on these
    four: free-form 0.720 / 77 vs 0.239 / 142, objects 0.621 / 78 vs 0.257 / 139). PSNR only loosely (free-form
    25.07 vs 25.84 dB on these four, large holes; on all 20, 22.92 vs 22.77 dB: the bar is checked there)."""
    from imgen.evaluation.inpaint import evaluate_inpaint
    from imgen.store import Store
    if not any(e.name == "inpaint-net" for e in Store().entries_for_task("inpaint")):
        pytest.skip("no trained inpainting network registered")
    for masks in (None, "objects"):
        ours = evaluate_inpaint(shared_data / PLACES, model="net-patchmatch", limit=4, progress=False, masks=masks)
        telea = evaluate_inpaint(shared_data / PLACES, model="telea", limit=4, progress=False, masks=masks)
        assert ours["grad_ratio"] > max(0.5, 2 * telea["grad_ratio"]), (masks, ours["grad_ratio"], telea["grad_ratio"])
        assert ours["texture_swd"] < 0.7 * telea["texture_swd"], (masks, ours["texture_swd"], telea["texture_swd"])
        assert ours["psnr"] > telea["psnr"] - 1.0, (masks, ours["psnr"], telea["psnr"])
