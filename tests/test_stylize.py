"""Stylize: any size/mode, strength 0 exactness, reference colour transfer, capped processing with full-size
detail, ONNX = eager, errors, CLI (in process and one real subprocess), trainer (3 steps + exact resume),
export to a temporary weights dir + registry, evaluation, the tab's handler and the /stylize API.

A tiny untrained generator is registered in a temporary store; the real registry and weights/ are never
touched. The shipped-model smoke test runs only when a trained style is registered.
"""
from __future__ import annotations

import contextlib
import json
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
from imgen.tasks import stylize as task
from imgen.tasks.stylize import NetworkStylizer, stylize_image
from imgen.training import train_stylize
from imgen.training.loop import load_checkpoint

TINY = {"ngf": 4, "n_blocks": 1}
STYLE = "tiny-style"


def photo(h=60, w=80, seed=0) -> np.ndarray:
    """A smooth, colourful, photo-like uint8 RGB image with some texture."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, h // 12), max(2, w // 12), 3)).astype(np.uint8)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(img + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)


def warm(h=50, w=70) -> np.ndarray:
    """A reddish-brown 'painting' palette, far from :func:`photo`'s average colours."""
    a = photo(h, w, seed=9).astype(np.float32)
    a = a * np.array([0.5, 0.3, 0.15]) + np.array([110, 60, 20])
    return np.clip(a, 0, 255).astype(np.uint8)


def lab_mean(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab).reshape(-1, 3).mean(0)


@pytest.fixture(scope="module")
def tiny_gen():
    torch.manual_seed(0)
    return build_model("stylize_net", TINY).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def tiny_store(tiny_gen, tmp_path_factory):
    """The tiny generator registered as "tiny-style" (task stylize) in a temporary store."""
    from imgen.store import export_safetensors
    w = tmp_path_factory.mktemp("w")
    store = store_mod.Store(weights_dir=w, registry_path=w / "registry.json")
    sha = export_safetensors(tiny_gen, "stylize_net", w / "tiny.safetensors")
    store.update_entry(STYLE, task="stylize", arch="stylize_net", file="tiny.safetensors", sha256=sha, config=TINY)
    store_mod.set_default_store(store)
    yield store
    store_mod.set_default_store(None)


def as_mode(rgb: np.ndarray, mode: str) -> Image.Image:
    img = Image.fromarray(rgb)
    if mode == "RGBA":
        img = img.convert("RGBA")
        h, w = rgb.shape[:2]
        img.putalpha(Image.fromarray((np.arange(h * w).reshape(h, w) * 7 % 256).astype(np.uint8)))
        return img
    if mode == "I;16":
        return Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    return img.convert(mode)


# ------------------------------------------------------------------------------------------ any input
@pytest.mark.parametrize("style", [STYLE, "reference"])
@pytest.mark.parametrize("mode,size", [("RGB", (37, 53)), ("L", (31, 29)), ("RGBA", (40, 33)), ("LA", (21, 35)),
                                       ("P", (30, 41)), ("I;16", (19, 23)), ("RGB", (1, 1)), ("RGBA", (2, 3))])
def test_any_size_and_mode(tiny_store, style, mode, size):
    h, w = size
    img = as_mode(photo(h, w), mode)
    res = stylize_image(img, style, reference=warm(), strength=0.8)
    assert res.image.size == (w, h)
    expected = {"RGB": "RGB", "L": "L", "RGBA": "RGBA", "LA": "LA", "P": "RGB", "I;16": "L"}[mode]
    assert res.image.mode == expected
    if mode in ("RGBA", "LA"):
        assert np.array_equal(np.asarray(res.image.getchannel("A")), np.asarray(img.getchannel("A")))
    assert res.seconds >= 0 and res.backend


@pytest.mark.parametrize("style", [STYLE, "reference"])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_strength_zero_returns_the_input_bit_for_bit(tiny_store, style, mode):
    img = as_mode(photo(45, 67), mode)
    out = stylize_image(img, style, reference=warm(), strength=0).image
    assert out.mode == img.mode and np.array_equal(np.asarray(out), np.asarray(img))
    changed = stylize_image(img, style, reference=warm(), strength=1).image
    assert not np.array_equal(np.asarray(changed), np.asarray(img))


@pytest.mark.parametrize("method", ["reinhard", "histogram"])
def test_reference_moves_colour_statistics_towards_the_reference(method):
    src, ref = photo(90, 120, seed=1), warm(70, 50)
    dist = {}
    for s in (0.0, 0.5, 1.0):
        out = np.asarray(stylize_image(src, "reference", reference=ref, strength=s, method=method).image)
        dist[s] = float(np.linalg.norm(lab_mean(out) - lab_mean(ref)))
    assert dist[1.0] < dist[0.5] < dist[0.0]
    assert dist[1.0] < 0.1 * dist[0.0], dist
    out = np.asarray(stylize_image(src, "reference", reference=ref, strength=1, method=method).image)
    std_out, std_ref = out.reshape(-1, 3).std(0), ref.reshape(-1, 3).std(0)
    assert np.all(np.abs(std_out - std_ref) < np.abs(src.reshape(-1, 3).std(0) - std_ref) + 2)


def test_histogram_matching_equals_scikit_image():
    from skimage.exposure import match_histograms
    src, ref = photo(50, 60, seed=2), warm(40, 30)
    luts = task.histogram_luts(src, ref)
    mine = np.stack([luts[c][src[..., c]] for c in range(3)], -1)
    theirs = match_histograms(src.astype(np.float64), ref.astype(np.float64), channel_axis=-1)
    assert np.abs(mine - theirs).max() < 1e-6


def test_reference_ignores_transparent_pixels():
    src = np.dstack([photo(40, 40), np.full((40, 40), 255, np.uint8)])
    ref = np.dstack([warm(40, 40), np.full((40, 40), 255, np.uint8)])
    ref[:, 20:, :3] = (0, 255, 0)             # a green half that is fully transparent: must not count
    ref[:, 20:, 3] = 0
    out = np.asarray(stylize_image(Image.fromarray(src, "RGBA"), "reference", reference=Image.fromarray(ref, "RGBA"),
                                   strength=1).image)
    assert abs(lab_mean(out[..., :3])[1] - lab_mean(ref[:, :20, :3])[1]) < 3      # a*: no green pull


def test_capped_processing_keeps_full_size_detail():
    """The network runs at max_side; its change is upsampled and added, so the photo's fine detail stays."""
    src = photo(300, 420, seed=3)
    seen = []

    def warmer(rgb):                                       # a 'style' that only shifts colours
        seen.append(rgb.shape)
        return rgb.astype(np.float32) * 0.7 + np.array([70, 30, 0], np.float32)
    res = stylize_image(src, warmer, strength=1.0, max_side=100)
    out = np.asarray(res.image)
    assert seen == [(71, 100, 3)] and res.processed_size == (100, 71) and out.shape == src.shape
    assert res.notes and "100×71" in res.notes[0]
    hp = lambda a: cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)  # noqa: E731
    assert np.corrcoef(hp(src).ravel(), hp(out).ravel())[0, 1] > 0.9          # fine detail kept
    assert lab_mean(out)[2] > lab_mean(src)[2] + 5                            # and the change applied (warmer)
    assert "capped" in stylize_image(src, warmer, max_side=10 ** 6).notes[0]


def test_onnx_equals_eager(tiny_gen):
    pytest.importorskip("onnxruntime")
    a = photo(45, 61, seed=4)
    onnx, eager = NetworkStylizer(tiny_gen, backend="onnx"), NetworkStylizer(tiny_gen, backend="torch")
    assert onnx.backend == "onnxruntime" and eager.backend.startswith("torch")
    assert np.abs(onnx(a) - eager(a)).max() < 0.05          # 0..255 units
    assert onnx(a).shape == a.shape


def test_generator_is_fully_convolutional_and_encodes(tiny_gen):
    x = torch.rand(2, 3, 36, 52)
    with torch.no_grad():
        y = tiny_gen(x)
        feats = tiny_gen.encode(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert [f.shape[1] for f in feats] == tiny_gen.feature_channels()
    assert [f.shape[-1] for f in feats] == [52, 52, 26, 13, 13]


def test_user_errors(tiny_store):
    from imgen.store import StoreError
    with pytest.raises(ValueError, match="between 0 and 1"):
        stylize_image(photo(), STYLE, strength=1.5)
    with pytest.raises(ValueError, match="finite"):
        stylize_image(photo(), STYLE, strength=float("nan"))
    with pytest.raises(ValueError, match="reference image"):
        stylize_image(photo(), "reference")
    with pytest.raises(ValueError, match="method"):
        stylize_image(photo(), "reference", reference=warm(), method="bogus")
    with pytest.raises(ValueError, match="at least 16"):
        stylize_image(photo(), STYLE, max_side=3)
    with pytest.raises(StoreError):
        stylize_image(photo(), "no-such-style")
    assert task.trained_styles() == [STYLE] and task.default_style() == STYLE


@pytest.mark.slow
def test_shipped_model_changes_the_image_and_keeps_its_structure():
    """Runs only once a trained style is registered in the real registry (weights/)."""
    from imgen.evaluation.stylize import edge_ssim
    real = store_mod.Store()                     # the real registry, whatever the default store is now
    names = [e.name for e in real.entries_for_task("stylize")]
    if not names:
        pytest.skip("no trained stylize model registered yet")
    from imgen.ui.common import sample_image
    src = np.asarray(Image.open(sample_image("chelsea.png")).convert("RGB"))
    out = np.asarray(stylize_image(src, real.load(names[0], "cpu"), strength=1.0).image)
    assert out.shape == src.shape
    assert np.abs(out.astype(int) - src).mean() > 3            # it changes the image
    assert edge_ssim(src, out) > 0.3                            # and keeps its structure
    paintings = ROOT.parent / "shared/data/paintings/titian"
    if paintings.is_dir():  # and moves photos towards the paintings' statistics, on average (as `eval stylize`)
        from imgen.evaluation.stylize import StyleTarget
        target = StyleTarget(paintings, limit=32)
        before, after = {"colour_w1": [], "gram": []}, {"colour_w1": [], "gram": []}
        for name in ("astronaut.png", "chelsea.png", "coffee.png"):
            img = np.asarray(Image.open(sample_image(name)).convert("RGB"))
            for dist, x in ((before, img), (after, np.asarray(stylize_image(img, real.load(names[0], "cpu")).image))):
                for k, v in target.distances(x).items():
                    dist.get(k, []).append(v)
        for k in before:
            assert np.mean(after[k]) < np.mean(before[k]), (k, before[k], after[k])


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_in_process(tiny_store, tmp_path, capsys):
    from imgen.cli import main
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(30, 41)).save(src / "a.png")
    as_mode(photo(25, 19), "L").save(src / "b.jpg")
    as_mode(photo(20, 22), "RGBA").save(src / "c.png")
    Image.fromarray(warm()).save(tmp_path / "ref.png")
    assert main(["stylize", str(src / "a.png"), "-o", str(tmp_path / "one"), "--style", STYLE]) == 0
    assert Image.open(tmp_path / "one" / "a.png").size == (41, 30)
    assert main(["stylize", str(src), "-o", str(tmp_path / "all"), "--style", STYLE, "--strength", "0.5",
                 "--max-side", "32", "--quiet"]) == 0
    b, c = Image.open(tmp_path / "all" / "b.png"), Image.open(tmp_path / "all" / "c.png")
    assert b.mode == "L" and b.size == (19, 25) and c.mode == "RGBA" and c.size == (22, 20)
    assert main(["stylize", str(src / "a.png"), "-o", str(tmp_path / "ref"), "--reference", str(tmp_path / "ref.png"),
                 "--method", "histogram"]) == 0
    moved = np.asarray(Image.open(tmp_path / "ref" / "a.png"))
    assert np.linalg.norm(lab_mean(moved) - lab_mean(warm())) < np.linalg.norm(lab_mean(photo(30, 41)) - lab_mean(warm()))
    with pytest.raises(SystemExit, match="between 0 and 1"):
        main(["stylize", str(src), "-o", str(tmp_path / "x"), "--style", STYLE, "--strength", "2"])
    with pytest.raises(SystemExit, match="needs --reference"):
        main(["stylize", str(src), "-o", str(tmp_path / "x"), "--style", "reference"])
    with pytest.raises(SystemExit, match="--reference: .*not a readable image"):
        main(["stylize", str(src), "-o", str(tmp_path / "x"), "--reference", __file__])
    assert main(["stylize", str(src), "-o", str(tmp_path / "x"), "--style", "no-such-style"]) == 2
    assert "no-such-style" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_subprocess_round_trip_and_one_line_errors(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(30, 41)).save(src / "a.png")
    (src / "broken.png").write_bytes(b"not an image")
    Image.fromarray(warm()).save(tmp_path / "ref.png")
    r = subprocess.run([sys.executable, "-m", "imgen", "stylize", str(src), "-o", str(tmp_path / "out"),
                        "--reference", str(tmp_path / "ref.png"), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1                                   # one broken input -> non-zero, the other done
    assert "broken.png" in r.stderr and "not a readable image" in r.stderr and "Traceback" not in r.stderr
    assert Image.open(tmp_path / "out" / "a.png").size == (41, 30) and "reference" in r.stdout


# -------------------------------------------------------------------------------------------- trainer
@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for sub, n, make in (("photos/cbsd432", 10, photo), ("photos/urban80", 2, photo), ("paintings/titian", 4, warm),
                         ("eval/CBSD68", 3, photo)):
        d = root / sub
        d.mkdir(parents=True)
        for i in range(n):
            a = make(72, 96) if make is warm else make(72, 96, seed=i)
            Image.fromarray(a).save(d / f"{i:03d}.png")
    return root


def trainer_args(data: Path, out: Path, steps: int) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--steps", str(steps), "--crop", "64", "--config",
            json.dumps(TINY), "--disc-config", '{"ndf": 8}', "--num-patches", "32", "--long-side", "64", "96",
            "--paint-long-side", "64", "96", "--log-every", "1", "--val-every", "3", "--w-tex", "1",
            "--w-colour", "1", "--tex-crops", "2", "--tex-patches", "64", "--min-edge", "0", "--device", "cpu"]


@contextlib.contextmanager
def sigterm_after(step: int):
    """The trainer gets a SIGTERM right after logging ``step`` (as from ``kill``), from inside its own loop."""
    import signal
    from unittest import mock
    from imgen.training.loop import MetricLog
    real = MetricLog.log

    def log(self, **m):
        real(self, **m)
        if m.get("step") == step and "loss" in m:
            os.kill(os.getpid(), signal.SIGTERM)
    with mock.patch.object(MetricLog, "log", log):
        yield


@contextlib.contextmanager
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine a starved OpenMP thread stalls every op."""
    threads, env = torch.get_num_threads(), os.environ.get("IMGEN_THREADS")
    os.environ["IMGEN_THREADS"] = "1"
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if env is None:
            os.environ.pop("IMGEN_THREADS", None)
        else:
            os.environ["IMGEN_THREADS"] = env


@pytest.fixture(scope="module")
def trained_run(fake_data, tmp_path_factory):
    """A 5-step run stopped by SIGTERM after step 3 and resumed to 5; and a straight 5-step run (in-process)."""
    tmp = tmp_path_factory.mktemp("runs")
    with one_thread():
        with sigterm_after(3):
            assert train_stylize.main(trainer_args(fake_data, tmp / "resumed", 5)) == 3
        first = load_checkpoint(tmp / "resumed" / "ckpt.pt")
        train_stylize.main(trainer_args(fake_data, tmp / "resumed", 5))
        train_stylize.main(trainer_args(fake_data, tmp / "straight", 5))
    return tmp, first


@pytest.mark.slow
def test_trainer_runs_and_resumes_exactly(trained_run):
    tmp, first = trained_run
    assert first["step"] == 3
    a, b = load_checkpoint(tmp / "resumed" / "ckpt.pt"), load_checkpoint(tmp / "straight" / "ckpt.pt")
    assert a["step"] == b["step"] == 5
    for key in ("model", "disc", "head", "ema"):
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], msg=f"{key}.{k}")
    rows = [json.loads(line) for line in (tmp / "resumed" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(r[k]) for r in losses for k in ("loss", "gan_g", "nce", "loss_d", "tex", "colour"))
    val = [r for r in rows if "val_edge_ssim" in r]
    assert rows[0]["step"] == 0 and rows[0]["val_photo_edge_ssim"] == pytest.approx(1.0)
    assert [r["step"] for r in val] == [3, 5] and all(-1 <= r["val_edge_ssim"] <= 1 for r in val)
    assert all(r["val_texture_swd"] > 0 and r["val_colour_swd"] > 0 for r in val)
    assert (tmp / "resumed" / "samples" / "step000005.png").exists()
    assert a["seconds"] > first["seconds"] > 0
    best = load_checkpoint(tmp / "resumed" / "best.pt")            # the watched snapshot with the lowest SWD
    assert best["step"] in (3, 5) and set(best["ema"]) == set(a["ema"])


@pytest.mark.slow
def test_trainer_cut_mode_step(fake_data, tmp_path):
    with one_thread():
        train_stylize.main(trainer_args(fake_data, tmp_path / "cut", 1) + ["--mode", "cut", "--val-every", "10"])
    row = json.loads((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()[1])   # [0]: the step-0 baseline
    assert np.isfinite(row["nce_idt"]) and np.isfinite(row["nce"])


@pytest.mark.slow
def test_export_writes_a_loadable_model_card_sheet_and_registry(trained_run, fake_data, tmp_path):
    tmp, _ = trained_run
    weights = tmp_path / "weights"
    weights.mkdir()
    registry = weights / "registry.json"
    registry.write_text(json.dumps({"models": {}}))
    metrics = {"data": str(fake_data / "eval/CBSD68"), "strength": 1.0, "max_side": 768, "command": "x",
               "reports": [{"method": "photo (unstyled)", "edge_ssim": 1.0, "colour_w1": 30.0, "gram": 0.5,
                            "gram_gray": 0.4, "seconds_per_image": 0.0, "n": 3}]}
    previous = store_mod.default_store()
    store_mod.set_default_store(store_mod.Store(weights_dir=weights, registry_path=registry))
    try:
        sha = train_stylize.export(tmp / "resumed", weights, name="tiny-export", metrics=metrics,
                                   history="resumed at step 3 with --w-gan 2")
    finally:
        store_mod.set_default_store(previous)
    entry = json.loads(registry.read_text())["models"]["tiny-export"]
    assert entry["task"] == "stylize" and entry["arch"] == "stylize_net" and entry["sha256"] == sha
    card = (weights / "tiny-export.md").read_text()
    assert "non-commercial" in card and "public domain" in card and "steps: 5" in card
    assert "| photo (unstyled) |" in card and "tiny-export-sheet.png" in card
    assert "tiny-export-detail.png" in card and "history: resumed at step 3 with --w-gan 2" in card
    with Image.open(weights / "tiny-export-sheet.png") as im:
        assert im.size[0] > im.size[1] > 0
    with Image.open(weights / "tiny-export-detail.png") as im:      # photo | stylized, side by side
        pair = np.asarray(im.convert("RGB")).astype(int)
        half = (pair.shape[1] - 8) // 2
        assert pair.shape[1] > pair.shape[0] > 0 and np.abs(pair[:, :half] - pair[:, -half:]).mean() > 0
    model = store_mod.Store(weights_dir=weights, registry_path=registry).load("tiny-export", "cpu")
    assert stylize_image(photo(33, 47), model).image.size == (47, 33)
    assert not (ROOT / "weights" / "tiny-export.safetensors").exists()


# ----------------------------------------------------------------------------------------- evaluation
def test_detail_crop_stays_inside_a_portrait_photo(tiny_gen, tmp_path):
    """A portrait photo narrower than a quarter plus the crop: the crop moves left instead of running off it
    (the shipped cards' details had black bars)."""
    from imgen.evaluation.stylize import detail_crop
    folder = tmp_path / "photos"
    folder.mkdir()
    src = np.maximum(photo(90, 50), 1)                              # nowhere black
    Image.fromarray(src).save(folder / "p.png")
    path = detail_crop(tiny_gen, folder, tmp_path / "d.png", index=0, size=(44, 30), zoom=1)
    pair = np.asarray(Image.open(path).convert("RGB"))
    assert pair.shape == (30, 2 * 44 + 4, 3)
    assert (pair[:, :44] == src[22:52, 6:50]).all()                 # the photo's own pixels, inside it
    assert pair[:, 48:].min(axis=2).max() > 0 and (pair[:, 48:].max(axis=(0, 2)) > 0).all()



@pytest.mark.slow
def test_evaluation_and_eval_cli(tiny_store, fake_data, tmp_path):
    from imgen.cli import main
    from imgen.evaluation.stylize import edge_ssim, format_table
    a = photo(40, 50)
    assert edge_ssim(a, a) == pytest.approx(1.0)
    out = tmp_path / "r.json"
    assert main(["eval", "stylize", "--data", str(fake_data / "eval/CBSD68"), "--paintings",
                 str(fake_data / "paintings/titian"), "--model", STYLE, "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["task"] == "stylize" and rep["max_side"] == 768 and rep["n_paintings"] == 4
    methods = [r["method"] for r in rep["reports"]]
    assert methods[0].startswith("paintings") and methods[1].startswith("photo")
    assert methods[2].startswith("reference (Reinhard") and methods[3].startswith("reference (texture")
    assert methods[4] == STYLE
    floor, photo_row, ref_row, tex_row = rep["reports"][:4]
    assert photo_row["edge_ssim"] == pytest.approx(1.0) and ref_row["colour_w1"] < photo_row["colour_w1"]
    assert floor["n"] == 2 and floor["texture_swd"] >= 0 and "edge_ssim" not in floor
    rows = rep["reports"][1:]
    assert all(np.isfinite(r[k]) for r in rows for k in ("gram", "gram_gray", "seconds_per_image", "texture_swd",
                                                         "colour_swd"))
    assert ref_row["colour_swd"] < photo_row["colour_swd"]
    assert tex_row["ref_texture_swd"] < photo_row["ref_texture_swd"]
    assert all(r["n"] == 3 for r in rows) and "texture SWD" in format_table(rep)


def test_bench_child_reports_rss():
    from imgen.evaluation.stylize import _large_child
    r = _large_child(300, 200, None, "reference", 128)
    assert r["output_size"] == [300, 200] and r["peak_rss_mb"] > 0 and r["seconds"] >= 0


# ----------------------------------------------------------------------------------------------- tab
def test_tab_handler(tiny_store, monkeypatch, tmp_path):
    gr = pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    from imgen.ui import stylize_tab
    Image.fromarray(photo(50, 64)).save(tmp_path / "p.png")
    Image.fromarray(warm()).save(tmp_path / "r.png")
    choices = stylize_tab.style_choices()
    assert list(choices.values()) == [STYLE, "reference"]
    (before, after), download, report = stylize_tab.stylize(str(tmp_path / "p.png"), next(iter(choices)), None, 80,
                                                            256, next(iter(stylize_tab.METHODS)))
    assert download == after and Image.open(after).size == (64, 50) and "tiny-style" in report
    (before, after), _, report = stylize_tab.stylize(str(tmp_path / "p.png"), stylize_tab.REFERENCE_LABEL,
                                                     str(tmp_path / "r.png"), 100, 768, "Histogram matching (per channel)")
    assert np.array_equal(np.asarray(Image.open(before)), photo(50, 64)) and "reference" in report
    with pytest.raises(gr.Error, match="Upload a photo first"):
        stylize_tab.stylize(None)
    with pytest.raises(gr.Error, match="Unknown style"):
        stylize_tab.stylize(str(tmp_path / "p.png"), "bogus")
    with pytest.raises(gr.Error, match="reference image"):
        stylize_tab.stylize(str(tmp_path / "p.png"), stylize_tab.REFERENCE_LABEL, None)
    with pytest.raises(gr.Error, match="between 0 and 1"):
        stylize_tab.stylize(str(tmp_path / "p.png"), next(iter(choices)), None, 150)
    import app
    assert "stylize" in [tab_id for _, tab_id, _ in app.available_tabs()]


def test_api_reference_mode(tiny_store, tmp_path):
    gr = pytest.importorskip("gradio")
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file
    from imgen.ui import stylize_tab
    from imgen.ui.common import sample_image
    with gr.Blocks() as demo:       # the tab alone, launched as app.py launches the whole app
        stylize_tab.build()
    demo.queue(max_size=8, default_concurrency_limit=1)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", server_port=None)
    try:
        c = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
        assert "/stylize" in c.view_api(print_info=False, return_format="dict")["named_endpoints"]
        src, ref = sample_image("chelsea.png"), sample_image("coffee.png")
        (before, after), download, report = c.predict(handle_file(src), stylize_tab.REFERENCE_LABEL,
                                                      handle_file(ref), 100, 768, "Reinhard (Lab mean and spread)",
                                                      api_name="/stylize")
        a, o, r = (np.asarray(Image.open(p).convert("RGB")) for p in (src, after, ref))
        assert o.shape == a.shape and Image.open(download).size == Image.open(src).size
        assert np.linalg.norm(lab_mean(o) - lab_mean(r)) < 0.2 * np.linalg.norm(lab_mean(a) - lab_mean(r))
        assert "s" in report
        c.close()
    finally:
        demo.close()
