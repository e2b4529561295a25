"""Inpaint: editor masks, mask preparation, paste-back exactness, modes/alpha, the mask generator, the trainer
(2 steps + exact resume + export), the ONNX path, the CLI (single, batch, eval) and the tab's handler.

Everything runs on tiny untrained networks and small images; no shipped checkpoint is needed.
"""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from imgen import store as store_mod
from imgen.models import build_model
from imgen.models.inpaint_net import irfft2, rfft2
from imgen.tasks import inpaint as task
from imgen.tasks.inpaint import (NetworkInpainter, crop_regions, feather_weight, inpaint_image, load_mask,
                                 merge_masks, prepare_mask)
from imgen.ui.editor import mask_from_editor
from imgen.training import train_inpaint
from imgen.training.loop import load_checkpoint
from imgen.datasets.masks import MaskGenerator

TINY = {"widths": [8, 16, 32], "blocks": 1}
TINY_JSON = json.dumps(TINY)
PLACES = "eval/inpaint/places2_256_freeform"


def photo(h=120, w=160, seed=0) -> np.ndarray:
    """A smooth, photo-like uint8 RGB image."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3)).astype(np.uint8)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(img + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)


def blobs(h=120, w=160) -> np.ndarray:
    """A disc near the top-left corner and a stroke near the bottom-right one."""
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (30, 30), 9, 1, -1)
    cv2.line(m, (w - 70, h - 40), (w - 20, h - 20), 1, 7)
    return m.astype(bool)


@pytest.fixture(scope="module")
def tiny_net():
    torch.manual_seed(0)
    return build_model("inpaint_net", TINY).eval()


# ------------------------------------------------------------------------------------------ editor masks
def test_mask_from_editor_numpy_layers_union():
    bg = np.dstack([photo(40, 50), np.full((40, 50), 255, np.uint8)])
    l1, l2 = np.zeros((40, 50, 4), np.uint8), np.zeros((40, 50, 4), np.uint8)
    l1[5:10, 5:10] = (0, 0, 0, 255)
    l2[20:25, 30:40, 3] = 1                   # faint anti-aliased paint still counts
    m = mask_from_editor({"background": bg, "layers": [l1, l2], "composite": None})
    assert m.dtype == bool and m.shape == (40, 50)
    assert m.sum() == 25 + 50 and m[5:10, 5:10].all() and m[20:25, 30:40].all()


def test_mask_from_editor_pil_paths_and_filedata(tmp_path):
    bg = Image.fromarray(photo(30, 40)).convert("RGBA")
    layer = Image.new("RGBA", (40, 30))
    layer.paste((0, 0, 0, 255), (10, 5, 20, 15))
    assert mask_from_editor({"background": bg, "layers": [layer], "composite": None}).sum() == 100
    bg.save(tmp_path / "bg.png")
    layer.save(tmp_path / "layer.png")
    v = {"background": str(tmp_path / "bg.png"), "layers": [{"path": str(tmp_path / "layer.png")}]}
    assert mask_from_editor(v).sum() == 100   # "composite" missing altogether is fine too
    small = layer.resize((20, 15), Image.Resampling.NEAREST)   # a layer of another size is resized to fit
    up = mask_from_editor({"background": bg, "layers": [small], "composite": None})
    assert up.shape == (30, 40) and up[6:14, 11:19].all() and not up[:4].any()


def test_mask_from_editor_composite_fallback_and_none():
    bg = np.dstack([photo(30, 40), np.full((30, 40), 255, np.uint8)])
    comp = bg.copy()
    comp[3:8, 4:9, :3] = 0
    m = mask_from_editor({"background": bg, "layers": [], "composite": comp})
    assert m.sum() == 25 and m[3:8, 4:9].all()
    assert not mask_from_editor({"background": bg, "layers": [], "composite": None}).any()
    empty_layer = np.zeros((30, 40, 4), np.uint8)
    assert mask_from_editor({"background": bg, "layers": [empty_layer], "composite": comp}).sum() == 25
    with pytest.raises(ValueError, match="Upload a photo"):
        mask_from_editor({"background": None, "layers": [], "composite": None})


def test_mask_from_gradio_image_mask_preprocess(tmp_path):
    gr = pytest.importorskip("gradio")
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData
    Image.fromarray(photo(30, 40)).save(tmp_path / "bg.png")
    layer = Image.new("RGBA", (40, 30))
    layer.paste((0, 0, 0, 255), (0, 0, 8, 4))
    layer.save(tmp_path / "m.png")
    v = gr.ImageMask(type="numpy", image_mode="RGBA").preprocess(EditorData(
        background=FileData(path=str(tmp_path / "bg.png"), orig_name="bg.png"),
        layers=[FileData(path=str(tmp_path / "m.png"), orig_name="m.png")], composite=None))
    assert mask_from_editor(v).sum() == 32


# ----------------------------------------------------------------------------------------- mask preparation
def test_load_mask_threshold_alpha_and_resize(tmp_path):
    gray = np.array([[0, 100, 127, 128, 200, 255]], np.uint8).repeat(4, 0)
    m, notes = load_mask(Image.fromarray(gray, "L"), size=(6, 4))
    assert m[0].tolist() == [False, False, False, True, True, True] and notes == []
    alpha_only = np.zeros((4, 6, 4), np.uint8)
    alpha_only[:, 3:, 3] = 255                # black paint on transparent: the alpha is the mask
    assert load_mask(alpha_only)[0][0].tolist() == [False] * 3 + [True] * 3
    white_on_clear = np.zeros((4, 6, 4), np.uint8)
    white_on_clear[:, :2] = 255
    assert load_mask(white_on_clear)[0][0].tolist() == [True] * 2 + [False] * 4
    Image.fromarray(gray, "L").convert("RGB").save(tmp_path / "m.jpg", quality=100)
    assert load_mask(tmp_path / "m.jpg")[0][0].tolist() == [False] * 3 + [True] * 3
    big, notes = load_mask(Image.fromarray(gray.repeat(2, 0).repeat(2, 1), "L"), size=(6, 4))
    assert big.shape == (4, 6) and len(notes) == 1 and "resized" in notes[0]
    res = inpaint_image(photo(40, 60), Image.fromarray(blobs(20, 30).astype(np.uint8) * 255), model="telea")
    assert res.image.size == (60, 40) and any("resized" in n for n in res.notes)


def test_grow_shrink_invert():
    hole = np.zeros((60, 80), bool)
    cv2.circle(hole.view(np.uint8), (40, 30), 10, 1, -1)
    grown, shrunk = prepare_mask(hole, grow=3), prepare_mask(hole, grow=-3)
    assert (grown >= hole).all() and grown.sum() > hole.sum()
    assert (shrunk <= hole).all() and 0 < shrunk.sum() < hole.sum()
    assert grown[30, 40 + 12] and not grown[30, 40 + 15]         # ~3 px more along the axis
    inv = prepare_mask(hole, invert=True)
    assert (inv == ~hole).all()
    edge = np.zeros((20, 20), bool)
    edge[:, :5] = True                       # shrinking a hole that touches the border keeps it there
    assert prepare_mask(edge, grow=-2)[:, :3].all() and not prepare_mask(edge, grow=-2)[:, 3:].any()
    assert not prepare_mask(np.zeros((5, 5), bool), grow=4).any()


def test_feather_is_continuous():
    hole = np.zeros((80, 100), bool)
    hole[30:50, 40:60] = True
    f = 8
    w = feather_weight(hole, f)
    assert w.dtype == np.float32 and (w[hole] == 1).all()
    assert (w[:22] == 0).all() and w[22, 50] == 0 and 0 < w[23, 50] < w[27, 50] < 1    # 0 from `f` px outside
    jumps = max(np.abs(np.diff(w, axis=0)).max(), np.abs(np.diff(w, axis=1)).max())
    assert jumps < 2.2 / f, jumps
    assert (feather_weight(hole, 0) == hole).all()


# ---------------------------------------------------------------------------------------- paste-back
@pytest.mark.parametrize("mode", ["crop", "resize"])
@pytest.mark.parametrize("method", ["net", "telea"])
def test_unmasked_pixels_are_bit_identical(mode, method, tiny_net):
    img, hole = photo(240, 320), blobs(240, 320)
    model = tiny_net if method == "net" else "telea"
    for feather, max_side in ((0, 512), (4, 48)):          # full resolution, and forced down-scaling
        res = inpaint_image(img, hole, model=model, mode=mode, max_side=max_side, grow=2, feather=feather)
        out = np.asarray(res.image)
        weight = feather_weight(prepare_mask(hole, 2), feather)
        assert out.shape == img.shape and res.image.mode == "RGB"
        assert np.array_equal(out[weight == 0], img[weight == 0])
        assert (out[hole] != img[hole]).any()
        if mode == "crop":
            assert res.regions == 2    # two far-apart regions, each with its own crop


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_size_mode_and_alpha_preserved(mode, tiny_net):
    rgb = Image.fromarray(photo(37, 53))
    img = rgb.convert(mode)
    if mode == "RGBA":
        img.putalpha(Image.fromarray((np.arange(37 * 53).reshape(37, 53) % 256).astype(np.uint8)))
    hole = blobs(37, 53) | (np.arange(53)[None, :] > 45)
    for model in (tiny_net, "telea", "ns"):
        out = inpaint_image(img, hole, model=model).image
        assert out.size == img.size and out.mode == mode
        if mode == "RGBA":
            assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(img.getchannel("A")))
        a, b = np.asarray(out), np.asarray(img)
        assert np.array_equal(a[~hole], b[~hole])


def test_empty_and_full_masks(tiny_net):
    img = Image.fromarray(photo(30, 40))
    res = inpaint_image(img, np.zeros((30, 40), bool), model=tiny_net)
    assert np.array_equal(np.asarray(res.image), np.asarray(img)) and "empty" in res.notes[0]
    res = inpaint_image(img, np.ones((30, 40), bool), model=tiny_net)
    assert res.image.size == (40, 30) and any("whole image is masked" in n for n in res.notes)
    res = inpaint_image(img, np.zeros((30, 40), bool), model="telea", invert=True)   # inverted empty = full
    assert np.all(np.asarray(res.image) == 128) and any("whole image" in n for n in res.notes)


def test_crop_mode_works_only_around_the_mask():
    """A large photo with a small stroke: the model only ever sees crops of at most max_side px."""
    calls = []

    def spy(arr, hole):
        calls.append(arr.shape)
        return np.zeros(arr.shape, np.float32)

    img = np.full((1500, 2000, 3), 90, np.uint8)
    hole = np.zeros((1500, 2000), bool)
    cv2.line(hole.view(np.uint8), (300, 300), (900, 500), 1, 30)
    res = inpaint_image(img, hole, model=spy, max_side=256)
    assert len(calls) == 1 and max(calls[0][:2]) <= 256
    assert res.regions == 1 and any("reduced scale" in n for n in res.notes)
    out = np.asarray(res.image)
    assert (out[hole] == 0).all() and (out[~hole] == 90).all()
    boxes = crop_regions(blobs(240, 320))
    assert len(boxes) == 2 and not task._overlap(*boxes)
    near = np.zeros((100, 100), bool)
    near[40:45, 40:45] = near[50:55, 60:65] = True
    assert len(crop_regions(near)) == 1


@pytest.mark.parametrize("decoder", [{}, {"upsample": "bilinear", "refine": 1}], ids=["nearest", "bilinear-refine"])
def test_fft_matches_torch_and_onnx_equals_eager(tiny_net, decoder):
    torch.manual_seed(0)
    for h, w in ((8, 8), (7, 12)):
        x = torch.randn(2, 3, h, w)
        ref = torch.fft.rfft2(x, norm="ortho")
        yr, yi = rfft2(x)
        torch.testing.assert_close(yr, ref.real, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(yi, ref.imag, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(irfft2(ref.real, ref.imag, w), torch.fft.irfft2(ref, s=(h, w), norm="ortho"),
                                   atol=1e-5, rtol=1e-5)
    img, hole = photo(45, 70), blobs(45, 70)
    onnx = NetworkInpainter(build_model("inpaint_net", {**TINY, **decoder}).eval(), backend="onnx")
    eager = NetworkInpainter(build_model("inpaint_net", {**TINY, **decoder}).eval(), backend="torch")
    eager.module.load_state_dict(onnx.module.state_dict())
    assert onnx.backend == "onnxruntime"
    assert np.abs(onnx(img, hole) - eager(img, hole)).max() < 1e-2      # 0..255 units, two sizes of graph
    assert np.abs(onnx(img[:40, :48], hole[:40, :48]) - eager(img[:40, :48], hole[:40, :48])).max() < 1e-2


# ------------------------------------------------------------------------------------------ masks for training
def test_mask_generator_properties():
    rng = np.random.default_rng(0)
    for kind in ("mixed", "thin", "medium", "thick", "box"):
        gen = MaskGenerator(kind)
        for h, w in ((64, 64), (96, 128), (24, 40)):
            m = gen(h, w, rng)
            assert m.shape == (h, w) and m.dtype == bool
            assert 0.05 <= m.mean() <= 0.5, (kind, h, w, m.mean())
    a = MaskGenerator()(100, 120, np.random.default_rng(5))
    b = MaskGenerator()(100, 120, np.random.default_rng(5))
    c = MaskGenerator()(100, 120, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError):
        MaskGenerator("blob")


# ------------------------------------------------------------------------------------------------ trainer
@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for sub, n in (("cbsd432", 10), ("urban80", 2)):
        d = root / "photos" / sub
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(photo(80, 96, seed=i)).save(d / f"{i:03d}.jpg", quality=90)
    return root


def trainer_args(data: Path, out: Path, steps: int) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--steps", str(steps), "--batch", "2", "--crop-min", "32",
            "--crop-max", "64", "--config", TINY_JSON, "--disc-config", '{"width": 8}', "--adv-start", "1",
            "--r1-every", "2", "--val-every", "2", "--ckpt-every", "2", "--log-every", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained_run(fake_data, tmp_path_factory):
    """A 2-step run resumed to 4, and a straight 4-step run (in-process, one thread)."""
    threads = torch.get_num_threads()
    env = {k: os.environ.pop(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK") if k in os.environ}
    tmp = tmp_path_factory.mktemp("runs")
    try:
        train_inpaint.main(trainer_args(fake_data, tmp / "resumed", 2))
        first = load_checkpoint(tmp / "resumed" / "ckpt.pt")
        train_inpaint.main(trainer_args(fake_data, tmp / "resumed", 4))
        train_inpaint.main(trainer_args(fake_data, tmp / "straight", 4))
    finally:
        torch.set_num_threads(threads)
        os.environ.update(env)
    return tmp, first


@pytest.mark.slow
def test_trainer_runs_and_resumes_exactly(trained_run):
    tmp, first = trained_run
    assert first["step"] == 2
    a, b = load_checkpoint(tmp / "resumed" / "ckpt.pt"), load_checkpoint(tmp / "straight" / "ckpt.pt")
    assert a["step"] == b["step"] == 4
    for key in ("model", "disc", "ema"):
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], msg=f"{key}.{k}")
    assert a["rng"] == b["rng"] and set(a) >= {"opt", "opt_d", "config", "disc_config", "cpu_seconds"}
    rows = [json.loads(line) for line in (tmp / "resumed" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2, 3, 4]
    assert all(np.isfinite(r[k]) for r in losses for k in ("loss", "l1_hole", "l1_known", "fft"))
    assert all(np.isfinite(r[k]) for r in losses[1:] for k in ("adv_g", "fm", "loss_d"))   # D from step 2
    assert any("r1" in r for r in losses)
    val = [r for r in rows if "val_psnr" in r]
    assert [r["step"] for r in val] == [2, 4] and all(r["val_psnr"] > 5 for r in val)
    with Image.open(tmp / "resumed" / "samples" / "step000004.png") as im:   # 4 rows x (input | output | target)
        assert im.size[0] == 3 * im.size[1] // 4


@pytest.fixture(scope="module")
def exported(trained_run, shared_data, tmp_path_factory):
    """The resumed run exported to a temporary weights dir + registry, with telea metrics and the sheet."""
    from imgen.evaluation.inpaint import evaluate_inpaint
    tmp, _ = trained_run
    weights = tmp_path_factory.mktemp("weights")
    registry = weights / "registry.json"
    registry.write_text(json.dumps({"models": {}}))
    report = evaluate_inpaint(shared_data / PLACES, model="telea", limit=2, progress=False)
    store_mod.set_default_store(store_mod.Store(weights_dir=weights, registry_path=registry))
    try:
        sha = train_inpaint.export(tmp / "resumed", weights, metrics={"reports": [report], "command": "x"})
    finally:
        store_mod.set_default_store(None)
    return weights, registry, sha, report


@pytest.mark.slow
def test_export_card_sheet_registry(exported):
    weights, registry, sha, report = exported
    entry = json.loads(registry.read_text())["models"]["inpaint-net"]
    assert entry["task"] == "inpaint" and entry["arch"] == "inpaint_net" and entry["sha256"] == sha
    card = (weights / "inpaint-net.md").read_text()
    assert "non-commercial" in card and "| telea |" in card and "inpaint-net-sheet.png" in card
    with Image.open(weights / "inpaint-net-sheet.png") as im:
        assert im.size[0] > im.size[1] > 0
    store = store_mod.Store(weights_dir=weights, registry_path=registry)
    model = store.load("inpaint-net", "cpu")
    res = inpaint_image(photo(40, 50), blobs(40, 50), model=model)
    assert res.image.size == (50, 40)
    for k in ("task", "model", "psnr", "ssim", "seconds_per_image", "n", "psnr_hole", "bins"):
        assert k in report
    assert report["n"] == 2 and report["task"] == "inpaint" and 10 < report["psnr"] < 60


# -------------------------------------------------------------------------------------------------- CLI
def run_cli(*args, env=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "imgen", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.slow
def test_cli_single_and_batch(tmp_path, exported):
    weights, registry, _, _ = exported
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir(), masks.mkdir()
    for i, (h, w) in enumerate(((60, 80), (50, 40), (30, 30))):
        Image.fromarray(photo(h, w, seed=i)).save(src / f"p{i}.png")
        if i < 2:
            Image.fromarray(blobs(h, w).astype(np.uint8) * 255).save(masks / f"p{i}.png")
    Image.fromarray(photo(50, 40)).convert("L").save(src / "p1.png")     # a gray one
    r = run_cli("inpaint", str(src / "p0.png"), str(masks / "p0.png"), "-o", str(tmp_path / "one.png"),
                "--model", "telea", "--grow", "2", "--feather", "2")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "one.png").size == (80, 60)
    env = {"IMGEN_WEIGHTS_DIR": str(weights), "IMGEN_REGISTRY": str(registry)}
    r = run_cli("inpaint", str(src), "--masks", str(masks), "-o", str(tmp_path / "out"), "--quiet",
                "--model", "net-patchmatch", env=env)                             # the exported network runs
    assert r.returncode == 1 and "p2" in r.stderr and "no mask" in r.stderr     # p2 has no mask: reported
    a, b = Image.open(tmp_path / "out" / "p0.png"), Image.open(tmp_path / "out" / "p1.png")
    assert a.size == (80, 60) and a.mode == "RGB" and b.size == (40, 50) and b.mode == "L"
    assert "onnxruntime" in r.stdout
    r = run_cli("inpaint", str(src / "p2.png"), "--masks", str(masks / "p0.png"), "-o", str(tmp_path / "all"),
                "--model", "ns", "--quiet")                                       # one mask for all (resized)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "all" / "p2.png").size == (30, 30) and "resized" in r.stdout


@pytest.mark.slow
def test_cli_eval_json(tmp_path, shared_data):
    out = tmp_path / "r.json"
    r = run_cli("eval", "inpaint", "--data", str(shared_data / PLACES), "--model", "telea", "--limit", "2",
                "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert {"task", "model", "psnr", "ssim", "seconds_per_image", "n", "psnr_hole", "bins", "grad_ratio",
            "texture_swd"} <= set(rep)
    assert 0 < rep["grad_ratio"] < 1 and rep["texture_swd"] > 50        # Telea: a smooth fill
    assert rep["task"] == "inpaint" and rep["model"] == "telea" and rep["n"] == 2
    assert "PSNR" in r.stdout


@pytest.mark.slow
def test_shipped_model_beats_telea_on_eval_images(shared_data):
    """Smoke test of the real checkpoint (weights/): on the 16 places2_256 pairs, as `eval inpaint` runs it (a few
    seconds), the network beats OpenCV Telea: measured 23.09 vs 21.54 dB, SSIM 0.7940 vs 0.7924 (not loosened for
    the test but for other machines' last digits). Runs once a network is registered."""
    from imgen.evaluation.inpaint import evaluate_inpaint
    real = store_mod.Store()                     # the real registry, whatever the default store is now
    names = [e.name for e in real.entries_for_task("inpaint")]
    if not names:
        pytest.skip("no trained inpainting network registered yet")
    data = shared_data / PLACES
    net = evaluate_inpaint(data, model=real.load(names[0], "cpu"), progress=False)
    telea = evaluate_inpaint(data, model="telea", progress=False)
    assert net["n"] == telea["n"] == 16
    assert net["psnr"] > telea["psnr"] + 1.0, (net["psnr"], telea["psnr"])
    assert net["ssim"] > telea["ssim"], (net["ssim"], telea["ssim"])


def test_truth_blur_yardstick_orders_by_sigma_and_is_benchmark_only(tmp_path):
    """The yardstick reads the truth: sigma -> 0 gives a perfect fill, more blur scores lower; the task refuses it."""
    from imgen.evaluation.inpaint import evaluate_inpaint
    rng = np.random.default_rng(3)
    (tmp_path / "images").mkdir(), (tmp_path / "masks").mkdir()
    for i in range(2):
        img = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8), (0, 0), 1.5)
        mask = np.zeros((64, 64), np.uint8)
        mask[16:44, 10 + i:50] = 255
        Image.fromarray(img).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    reports = {s: evaluate_inpaint(tmp_path, model=f"truth-blur:{s}", progress=False) for s in (0.3, 2, 8)}
    assert reports[0.3]["psnr"] > 40 and reports[0.3]["ssim"] > 0.99
    assert reports[0.3]["psnr"] > reports[2]["psnr"] > reports[8]["psnr"]
    assert reports[0.3]["ssim"] > reports[2]["ssim"] > reports[8]["ssim"]
    assert "yardstick" in reports[2]["backend"]
    with pytest.raises(SystemExit, match="sigma > 0"):
        evaluate_inpaint(tmp_path, model="truth-blur:0", progress=False)
    with pytest.raises(Exception):       # not a model the app or the inpaint command knows
        inpaint_image(Image.open(tmp_path / "images" / "0.png"), tmp_path / "masks" / "0.png", model="truth-blur:2")


# ---------------------------------------------------------------------------------------------- the tab
def test_tab_handler_and_examples(monkeypatch, tmp_path):
    gr = pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    from imgen.ui import inpaint_tab
    rows = inpaint_tab.example_values("OpenCV Telea (classical)")
    assert len(rows) == len(inpaint_tab.EXAMPLE_LABELS)
    editor = {k: v for k, v in rows[1][0].items()}
    bg = np.asarray(Image.open(editor["background"]).convert("RGBA"))
    value = {"background": bg, "layers": [np.asarray(Image.open(editor["layers"][0]))], "composite": None}
    (before, after), download, used, report = inpaint_tab.inpaint(value, None, 4, 3, False,
                                                                  next(iter(inpaint_tab.PROCESSING)), 512,
                                                                  "OpenCV Telea (classical)")
    a, m = np.asarray(Image.open(after)), np.asarray(Image.open(used))
    assert download == after and a.shape == bg[:, :, :3].shape and Image.open(after).mode == "RGB"
    assert np.array_equal(a[m == 0], bg[:, :, :3][m == 0]) and (m > 0).any()
    assert report.startswith("**OpenCV Telea (classical)**: ") and re.search(r"in \*\*\d+\.\d+ s\*\*", report)
    assert inpaint_tab.COPIED_HINT not in report                  # the hint is the default's only
    assert re.search(r"\d+ region\(s\) processed", report)
    with pytest.raises(gr.Error, match="Upload a photo first"):
        inpaint_tab.inpaint(None)
    with pytest.raises(gr.Error, match="Unknown method"):
        inpaint_tab.inpaint(value, None, 0, 0, False, "Only the masked area at full resolution", 512, "bogus")
    choices = inpaint_tab.model_choices()
    assert ("Trained network alone (inpaint-net)" in choices) == bool(store_mod.default_store().entries_for_task("inpaint"))
    # no method given: the report names the one used (the first choice), not "None"
    *_, report = inpaint_tab.inpaint(value, None, 4, 3, False, next(iter(inpaint_tab.PROCESSING)), 512, None)
    assert report.startswith(f"**{next(iter(choices))}**: ")
    # the default's report says what to try when it copied something in (when that choice is in the menu)
    assert (inpaint_tab.COPIED_HINT in report) == (inpaint_tab.TEXTURE_LABEL in choices)
    assert choices["PatchMatch: copy the photo's own patches (classical)"] == "patchmatch"
    # the measured order: the default (from the surroundings) first, the library it builds on next, then the
    # network ones, then the classical ones
    assert list(choices.values())[:2] == ["context-fill", "pypatchmatch"]
    if "Trained network alone (inpaint-net)" in choices:
        assert list(choices.values())[2:4] == ["net-patchmatch", "inpaint-net"]
    (_, after), _, _, report = inpaint_tab.inpaint(value, None, 4, 3, False, next(iter(inpaint_tab.PROCESSING)), 512,
                                                   "PatchMatch: copy the photo's own patches (classical)")
    assert report.startswith("**PatchMatch") and "PatchMatch exemplar copy" in report and " s**" in report


def test_merge_masks_takes_the_union_of_its_sources():
    """inpaint_image takes a list of mask sources (the tab's painted layer and an uploaded mask file) and merges
    them itself: None entries skipped, a source of another size resized with one note."""
    a = np.zeros((30, 40), bool)
    a[2:8, 3:9] = True
    b = Image.fromarray((np.pad(np.ones((4, 4), np.uint8), ((10, 1), (20, 0))) * 255).astype(np.uint8))  # 15 x 24
    hole, notes = merge_masks([a, None, b], size=(40, 30))
    assert hole.shape == (30, 40) and hole[2:8, 3:9].all()
    assert hole[20:28, 33:40].any() and len(notes) == 1 and "resized" in notes[0]
    assert np.array_equal(merge_masks(a, size=(40, 30))[0], a)
    res = inpaint_image(photo(30, 40), [a, None], model="telea")
    assert np.array_equal(np.asarray(res.mask_used) > 0, a)
