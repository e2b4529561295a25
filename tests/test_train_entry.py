"""`python -m imgen train/export/data pack`: time budgets that end annealed, SIGTERM checkpoints that resume,
loader workers, the GAN trainer's loop, and data packs that give a trainer the same tensors as the folders."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from imgen.cli import main as cli
from imgen.datasets import faces
from imgen.training import loop, packs, train_inpaint
from imgen.datasets.folders import list_images
from imgen.image_io import fit_max_side
from imgen.training.data import PatchSampler
from imgen.training.loop import RunClock, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY_DENOISE = '{"widths": [8, 16], "blocks": 1}'
TINY_GAN = '{"z_dim": 16, "w_dim": 16, "mapping_layers": 1, "widths": [16, 16, 8, 8, 8], "n_directions": 4}'
TINY_DISC = '{"widths": [8, 8, 16, 16]}'


def _image(rng, h, w, gray=False):
    coarse = rng.integers(0, 256, (max(1, h // 16), max(1, w // 16), 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR), np.int16)
    img = np.clip(img + rng.integers(-10, 11, img.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(img).convert("L") if gray else Image.fromarray(img)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A small copy of the shared data's layout: photos, gray crops, paintings, KaoKore-named faces, emoji."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    folders = {"photos/cbsd432": (8, 96, 128, "jpg"), "photos/urban80": (2, 200, 900, "jpg"),
               "photos/gray400": (3, 64, 64, "png"), "paintings/titian": (3, 300, 700, "jpg")}
    for folder, (n, h, w, ext) in folders.items():
        (root / folder).mkdir(parents=True)
        for i in range(n):
            _image(rng, h, w, gray="gray" in folder).save(root / folder / f"{i:03d}.{ext}", quality=92)
    (root / "faces/kaokore128").mkdir(parents=True)
    for i, split in enumerate(["train", "train", "train", "dev", "test"]):
        _image(rng, 128, 128).save(root / "faces/kaokore128" / f"{split}_x_{i:04d}.jpg", quality=92)
    (root / "emoji/noto72").mkdir(parents=True)
    for i in range(10):
        rgba = np.dstack([np.asarray(_image(rng, 72, 72)), rng.integers(0, 256, (72, 72), dtype=np.uint8)])
        Image.fromarray(rgba, "RGBA").save(root / "emoji/noto72" / f"emoji_u{i:04x}.png")
    return root


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------------ the clock
def test_time_budget_schedule_ends_at_its_final_value():
    clock = RunClock(steps=None, minutes=1.0)
    clock.budget.t0 -= 30                      # half the budget spent
    clock.tick(10)
    assert not clock.stopping and clock.progress == pytest.approx(0.5, abs=0.01)
    assert clock.lr(10, 1.0, warmup_steps=5) == pytest.approx(0.01 + 0.99 * 0.5, abs=0.01)
    assert clock.lr(2, 1.0, warmup_steps=5) == pytest.approx(3 / 5 * clock.lr(10, 1.0, 5))   # warm-up counts steps
    clock.budget.t0 -= 31
    clock.tick(11)
    assert clock.stopping and clock.ckpt_due and clock.lr(11, 1.0, 5) == pytest.approx(0.01)
    assert clock.lr(2, 1.0, warmup_steps=500) < 0.01       # a budget too short for its warm-up still ends low
    clock.close()


def test_step_budget_keeps_the_old_schedule_and_checkpoints_by_steps_and_minutes():
    clock = RunClock(steps=100, minutes=None, ckpt_every=10, ckpt_minutes=1.0)
    for step in (0, 50, 99):
        assert clock.lr(step, 2.0, 10) == loop.cosine_lr(step, 100, 2.0, 10)
    clock.tick(9)
    assert not clock.ckpt_due
    clock.tick(10)
    assert clock.ckpt_due and not clock.stopping
    clock._t_ckpt -= 61
    clock.tick(11)
    assert clock.ckpt_due                      # a minute since the last one
    clock.tick(100)
    assert clock.stopping and clock.ckpt_due
    clock.close()


# ------------------------------------------------------------------------------------------------ trainers
def denoise_args(data: Path, out: Path, *budget: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), *budget, "--batch", "4", "--patch", "32", "--config",
            TINY_DENOISE, "--val-every", "100000", "--ckpt-every", "100000", "--log-every", "5", "--warmup", "3",
            "--device", "cpu"]


@pytest.mark.slow
def test_minutes_run_ends_on_time_annealed_with_a_checkpoint(data, tmp_path, one_process):
    out = tmp_path / "run"
    t = time.time()
    assert cli(["train", "denoise", *denoise_args(data, out, "--minutes", str(4 / 60))]) == 0
    took = time.time() - t
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert 4 <= ckpt["seconds"] < 4 + 2, ckpt["seconds"]            # stopped by the clock, within a step or two
    assert took < 4 + 15                                            # (+ data loading and the final validation)
    assert ckpt["step"] > 3 and ckpt["lr"] == pytest.approx(1e-3 * 0.01, rel=0.05)   # annealed to 1 %
    final = _rows(out)[-1]
    assert final["final"] and final["progress"] >= 1.0
    assert json.loads((out / "args.json").read_text())["hardware"].endswith("(no GPU)")


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_that_resumes(data, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "IMGEN_THREADS": "1"}
    env = {k: v for k, v in env.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    proc = subprocess.Popen([sys.executable, "-m", "imgen", "train", "denoise",
                             *denoise_args(data, out, "--minutes", "10")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:                         # wait until it is training (the first loss line)
            if line.startswith("time=") and "loss=" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    assert "saving a checkpoint" in rest
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["step"] >= 5 and ckpt["seconds"] < 60
    step = ckpt["step"]
    r = subprocess.run([sys.executable, "-m", "imgen", "train", "denoise",
                        *denoise_args(data, out, "--steps", str(step + 2))],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resumed from step {step}" in r.stdout
    assert load_checkpoint(out / "ckpt.pt")["step"] == step + 2


def inpaint_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--batch", "2", "--crop-min", "32", "--crop-max", "64",
            "--config", '{"widths": [8, 16, 32], "blocks": 1}', "--disc-config", '{"width": 8}',
            "--adv-start", "1", "--val-every", "100000", "--log-every", "1", "--device", "cpu", *extra]


@pytest.mark.slow
def test_inpaint_trainer_with_loader_workers(data, tmp_path, one_process):
    out = tmp_path / "run"
    assert cli(["train", "inpaint", *inpaint_args(data, out, "--steps", "3", "--workers", "2")]) == 0
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["step"] == 3
    rows = [r for r in _rows(out) if "loss" in r]
    assert len(rows) == 3 and all(np.isfinite(r["loss"]) and r["crop"] in (32, 64) for r in rows)


def test_training_batches_workers_draw_different_streams(data):
    sampler = train_inpaint.CropSampler(list_images([data / "photos/cbsd432"]), 32)
    batches = train_inpaint.TrainingBatches(sampler, train_inpaint.MaskGenerator(), [32], 2, (0.7, 1.5), (0, 0, 0))
    a = batches.draw(np.random.default_rng(1))
    b = batches.draw(np.random.default_rng(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])       # the main-process path is the caller's rng
    stream = train_inpaint.batch_stream(batches, 2, np.random.default_rng(1))
    got = [next(stream) for _ in range(4)]
    assert all(x[0].shape == (2, 3, 32, 32) and x[1].shape == (2, 1, 32, 32) for x in got)
    assert not torch.equal(got[0][0], got[1][0])                   # two workers, two streams


def test_loader_workers_start_after_the_parent_used_opencvs_threads(data):
    """Loader workers forked from a process whose OpenCV thread pool has run must still draw batches (calling
    cv2.setNumThreads in such a worker deadlocked: the not-slow suite hung here after the stylize tests)."""
    cv2.GaussianBlur(np.random.default_rng(0).random((1500, 1500, 3), np.float32), (0, 0), 3)   # the pool runs
    sampler = train_inpaint.CropSampler(list_images([data / "photos/cbsd432"]), 32)
    batches = train_inpaint.TrainingBatches(sampler, train_inpaint.MaskGenerator(), [32], 2, (0.7, 1.5), (0, 0, 0))
    stream = train_inpaint.batch_stream(batches, 2, np.random.default_rng(1))
    assert all(next(stream)[0].shape == (2, 3, 32, 32) for _ in range(3))


def gan_args(data: Path, out: Path, *budget: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), *budget, "--batch", "2", "--config", TINY_GAN,
            "--disc-config", TINY_DISC, "--log-every", "1", "--sample-every", "100000", "--snapshot-every", "2",
            "--ckpt-every", "100000", "--r1-every", "2", "--device", "cpu"]


@pytest.mark.slow
def test_gan_trainer_loop_runs_resumes_and_exports(data, tmp_path, one_process, capsys):
    out = tmp_path / "run"
    assert cli(["train", "gan", *gan_args(data, out, "--steps", "2")]) == 0
    assert load_checkpoint(out / "ckpt.pt")["step"] == 2
    capsys.readouterr()
    assert cli(["train", "gan", *gan_args(data, out, "--steps", "3")]) == 0
    assert "resumed from step 2" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["step"] == 3 and ckpt["lr"] == 5e-4                     # constant LR by default
    rows = [r for r in _rows(out) if "loss_g" in r]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss_d"]) for r in rows)
    assert (out / "snapshots" / "step000002.safetensors").exists()
    assert (out / "samples" / "step000003.png").exists()

    # what a GPU session brings back: the checkpoint without resume state, fp16 EMA; the export takes it
    small = tmp_path / "small"
    small.mkdir()
    (small / "args.json").write_bytes((out / "args.json").read_bytes())
    assert loop.strip_checkpoint(out / "ckpt.pt", small / "ckpt.pt", half=True) < (out / "ckpt.pt").stat().st_size / 4
    stripped = load_checkpoint(small / "ckpt.pt")
    assert "opt" not in stripped and "model" not in stripped and "disc" not in stripped and stripped["step"] == 3
    assert all(v.dtype == torch.float16 for v in stripped["ema"].values() if v.is_floating_point())

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "registry.json").write_text(json.dumps({"models": {}}))
    from imgen import store as store_mod
    store_mod.set_default_store(store_mod.Store(weights_dir=weights, registry_path=weights / "registry.json"))
    try:
        assert cli(["export", "gan", "--run", str(small), "--name", "tiny-gan", "--weights", str(weights)]) == 0
        exported = store_mod.load("tiny-gan", device="cpu")
    finally:
        store_mod.set_default_store(None)
    for k, v in exported.named_parameters():       # the EMA weights, within fp16 rounding (buffers such as
        torch.testing.assert_close(v, ckpt["ema"][k].float(), atol=1e-2, rtol=1e-2)   # w_avg: computed on export)
    card = (weights / "tiny-gan.md").read_text()
    assert "python -m imgen train gan" in card and "--steps 3" in card and "(no GPU)" in card
    assert "tiny-gan" in json.loads((weights / "registry.json").read_text())["models"]


# ------------------------------------------------------------------------------------------------ data packs
def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pack_gives_the_denoise_trainer_the_same_pixels(data, tmp_path):
    assert cli(["data", "pack", "denoise", "-o", str(tmp_path / "pack"), "--data", str(data)]) == 0
    pack = tmp_path / "pack"
    manifest = json.loads((pack / "pack.json").read_text())
    assert set(manifest["files"].values()) == {"copied"} and not manifest["dropped"]
    assert not (pack / "paintings").exists() and not (pack / "faces").exists()    # only what the trainer reads
    for folder, mode in (("photos/cbsd432", "RGB"), ("photos/urban80", "RGB"), ("photos/gray400", "L")):
        a = PatchSampler(list_images([data / folder]), 32, mode).images
        b = PatchSampler(list_images([pack / folder]), 32, mode).images
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_gan_pack_is_the_training_set_at_64px_and_deterministic(data, tmp_path):
    for name in ("kaokore", "emoji"):
        one, two = tmp_path / f"{name}1", tmp_path / f"{name}2"
        packs.build_pack("gan", data, one, data_set=name)
        packs.build_pack("gan", data, two, data_set=name)
        assert _tree(one) == _tree(two)                                  # deterministic, byte for byte
        a = faces.load_set(faces.training_files(data, name))
        b = faces.load_set(faces.training_files(one, name))
        assert torch.equal(a, b)
    assert len(list((tmp_path / "kaokore1/faces/kaokore128").iterdir())) == 3     # dev_/test_ left out


def test_stylize_pack_stores_photos_shrunk_as_the_trainer_keeps_them(data, tmp_path):
    manifest = packs.build_pack("stylize", data, tmp_path / "pack")
    assert manifest["files"]["photos/urban80/000.png"] == "resized (PNG)"
    assert manifest["files"]["paintings/titian/000.png"] == "resized (PNG)"     # 700 px > the 640 kept
    assert manifest["files"]["photos/cbsd432/000.jpg"] == "copied"               # small enough as it is
    from imgen.image_io import load_image
    src = np.asarray(load_image(data / "photos/urban80/000.jpg", mode="RGB"))
    got = np.asarray(load_image(tmp_path / "pack/photos/urban80/000.png", mode="RGB"))
    assert got.shape == (171, 768, 3) and np.array_equal(got, fit_max_side(src, 768))


def test_pack_over_budget_reencodes_then_drops_and_says_so(data, tmp_path, capsys):
    full = packs.build_pack("inpaint", data, tmp_path / "full")["bytes"]
    tight = packs.build_pack("inpaint", data, tmp_path / "tight", max_mb=full * 0.8 / 1e6)
    assert tight["bytes"] <= full * 0.8
    assert any(h.startswith("re-encoded (JPEG") for h in tight["files"].values())
    tiny = full * 0.3 / 1e6
    assert cli(["data", "pack", "inpaint", "-o", str(tmp_path / "tiny"), "--data", str(data),
                "--max-mb", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert "dropped to fit" in out
    manifest = json.loads((tmp_path / "tiny/pack.json").read_text())
    assert manifest["dropped"] and manifest["bytes"] <= tiny * 1e6
    (tmp_path / "other").mkdir()
    (tmp_path / "other/keep.txt").write_text("not a pack")
    assert cli(["data", "pack", "inpaint", "-o", str(tmp_path / "other"), "--data", str(data)]) == 1
    assert (tmp_path / "other/keep.txt").exists()
