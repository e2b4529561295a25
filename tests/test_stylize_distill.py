"""Stylize distillation (issue #17's speed): the student config's padding, the teacher pairs, the loss, and a
tiny end-to-end run that gets closer to its teacher and exports a model the store loads."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from imgen.models import build_model
from imgen.image_io import at_long_side
from imgen.training.data import colour_change
from imgen.training.distill_stylize import TeacherPairs, distill_loss, student_from_teacher


def test_zero_padding_student_is_a_different_function_at_the_border_only():
    torch.manual_seed(0)
    a = build_model("stylize_net", {"ngf": 4, "n_blocks": 1, "norm": "none"}).eval()
    b = build_model("stylize_net", {"ngf": 4, "n_blocks": 1, "norm": "none", "pad": "zeros"}).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ya, yb = a(x), b(x)
    inner = (ya - yb)[..., 24:-24, 24:-24].abs().max()
    assert inner < 1e-6 < (ya - yb).abs().max()
    assert b.stem[0].padding_mode == "zeros"
    with pytest.raises(ValueError, match="pad"):
        build_model("stylize_net", {"pad": "circular"})


def test_old_configs_load_with_reflection_padding():
    m = build_model("stylize_net", {"ngf": 4, "n_blocks": 1, "norm": "instance"})
    assert m.config.pad == "reflect" and m.head.padding_mode == "reflect"


def test_a_student_starts_from_its_teachers_weights():
    torch.manual_seed(0)
    teacher = build_model("stylize_net", {"ngf": 4, "n_blocks": 6}).eval()
    same = student_from_teacher(teacher, {}).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(same(x), teacher(x))
    small = student_from_teacher(teacher, {"n_blocks": 3, "pad": "zeros"})
    assert small.config.n_blocks == 3 and small.config.pad == "zeros" and small.config.ngf == 4
    for i, j in enumerate((0, 2, 5)):                          # spread over the teacher's six
        assert torch.equal(small.blocks[i].body[0].weight, teacher.blocks[j].body[0].weight)
    assert torch.equal(small.head.weight, teacher.head.weight)
    with pytest.raises(SystemExit, match="init random"):
        student_from_teacher(teacher, {"norm": "none"})


def test_long_side_and_colour_change():
    rgb = np.random.default_rng(0).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    small = at_long_side(rgb, 64)
    assert small.shape == (44, 64, 3) and at_long_side(rgb, 130) is rgb
    changed = colour_change(rgb, np.random.default_rng(1))
    assert changed.shape == rgb.shape and changed.dtype == np.uint8
    assert np.abs(changed.astype(int) - rgb).mean() > 2


def test_pairs_crop_the_same_pixels_and_weigh_out_only_the_cut_sides():
    rng = np.random.default_rng(0)
    h, w = 40, 52
    x = np.zeros((h, w, 3), np.uint8)
    x[..., 0] = np.arange(h)[:, None] * 5                          # red: the row, green: the column
    x[..., 1] = np.arange(w)[None, :] * 4
    pairs = TeacherPairs([x], [255 - x])
    a, b, weight = pairs.sample(24, 32, rng, margin=4, edge=0.3)
    assert a.shape == b.shape == (24, 3, 32, 32) and weight.shape == (24, 1, 32, 32)
    assert torch.allclose(a + b, torch.ones_like(a))                 # the same window of input and target
    rows, cols = (a[:, 0] * 255 / 5).round(), (a[:, 1] * 255 / 4).round()
    for r, c, wt in zip(rows, cols, weight[:, 0]):
        assert bool(wt[:4, 4:-4].all()) == (r[0, 0] == 0)                # the photo's top edge counts, a cut does not
        assert bool(wt[-4:, 4:-4].all()) == (r[-1, 0] == h - 1)
        assert bool(wt[4:-4, :4].all()) == (c[0, 0] == 0)
        assert bool(wt[4:-4, -4:].all()) == (c[0, -1] == w - 1)
        assert float(wt[4:-4, 4:-4].min()) == 1
    assert {bool(wt[0, 0, 0]) for wt in weight} == {True, False}     # both kinds were drawn
    out, target = torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)
    out[..., :4, :] = 1                                              # wrong only along the top
    cut = torch.ones(1, 1, 32, 32)
    cut[..., :4, :] = 0
    assert distill_loss(out, target, cut, w_grad=1.0) == 0
    assert distill_loss(out, target, torch.ones(1, 1, 32, 32), w_grad=1.0) > 0


@pytest.mark.slow
def test_a_tiny_distillation_gets_closer_to_its_teacher_and_exports(tmp_path):
    from imgen import store as store_mod
    from imgen.store import export_safetensors, update_entry
    from imgen.training import distill_stylize
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "registry.json").write_text(json.dumps({"models": {}}))
    store = store_mod.Store(weights_dir=weights, registry_path=weights / "registry.json")
    store_mod.set_default_store(store)
    try:
        torch.manual_seed(0)
        teacher = build_model("stylize_net", {"ngf": 4, "n_blocks": 1})
        sha = export_safetensors(teacher, "stylize_net", weights / "tiny-teacher.safetensors")
        update_entry("tiny-teacher", task="stylize-teacher", arch="stylize_net", config=teacher.config.to_dict(),
                     file="tiny-teacher.safetensors", sha256=sha, licence="test", data="test", card=None)
        data = tmp_path / "data"
        rng = np.random.default_rng(0)
        for sub, n in (("photos/cbsd432", 12), ("photos/urban80", 1), ("paintings/titian", 3)):
            (data / sub).mkdir(parents=True)
            for i in range(n):
                base = rng.integers(0, 256, (3, 4, 3)).astype(np.uint8)
                img = np.asarray(Image.fromarray(base).resize((96, 72), Image.BICUBIC))
                Image.fromarray(img).save(data / sub / f"{i:03d}.png")
        run = tmp_path / "run"
        steps = distill_stylize.main(["--data", str(data), "--out", str(run), "--teacher", "tiny-teacher",
                                      "--config", '{"norm": "none", "pad": "zeros"}', "--init", "random",
                                      "--steps", "120", "--batch", "4", "--crop", "48", "--margin", "4",
                                      "--sides", "64", "--val-every", "120", "--lr", "3e-3", "--device", "cpu"])
        assert steps == 120 and (run / "teacher.npz").exists() and (run / "best.pt").exists()
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        watched = [r["val_psnr_to_teacher"] for r in rows if "val_psnr_to_teacher" in r]
        assert watched[0] == rows[0]["val_psnr_to_teacher"] and watched[-1] > watched[0] + 2, watched
        distill_stylize.export_cli(["--run", str(run), "--name", "tiny-student", "--weights", str(weights),
                                    "--sheet-data", str(data / "photos/cbsd432")])
        student = store_mod.load("tiny-student", device="cpu")
    finally:
        store_mod.set_default_store(None)
    assert student.config.pad == "zeros" and student.config.norm == "none"
    entry = json.loads((weights / "registry.json").read_text())["models"]["tiny-student"]
    assert entry["task"] == "stylize"
    card = (weights / "tiny-student.md").read_text()
    assert "python -m imgen train stylize-distill --teacher tiny-teacher" in card
    assert "tiny-student-sheet.png" in card and "(no brushwork pass)" in card
    for image in ("tiny-student-sheet.png", "tiny-student-detail.png"):
        with Image.open(weights / image) as im:
            assert im.size[0] > im.size[1] > 0
